"""Runs `fer` code inside the fer venv (see bench/fer_env.py); never imported by emodetect.

    python fer_worker.py TASK --inputs in.npy --out out.json --options '{"model": "tflite"}'

Tasks:
  versions             library versions and thread settings of this venv
  classify             N x 48 x 48 uint8 grey faces -> N x 7 probabilities (out.npz "probs")
  speed_classifier     images/s of fer's classifier call at the given batch sizes
  pipeline             per-frame time of FER().detect_emotions on N x H x W x 3 BGR frames, and
                       of its face detection alone

Faces are prepared exactly as `FER.detect_emotions` prepares a face crop: `cv2.resize` to the
model's input size (64 x 64, default interpolation), then x / 255, then (x - 0.5) * 2; the
classifier is fer's own `FER._classify_emotions`, so its TFLite path runs one face per invoke as
fer does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _patch_tflite(tf) -> str:
    """fer calls tf.lite.Interpreter; where TensorFlow dropped it, use the LiteRT package instead."""
    try:
        tf.lite.Interpreter  # noqa: B018
        return "tf.lite"
    except AttributeError:
        pass
    from ai_edge_litert.interpreter import Interpreter

    class _Lite:  # the attribute fer reads, nothing else
        pass

    _Lite.Interpreter = Interpreter
    tf.lite = _Lite
    return "ai_edge_litert"


def make_fer(model: str):
    """fer's FER with its Haar detector and the chosen classifier ('tflite' default, or 'keras')."""
    import tensorflow as tf

    from fer.fer import FER  # fer 25.10.3 no longer re-exports FER from its __init__

    backend = _patch_tflite(tf) if model == "tflite" else "keras"
    detector = FER(use_tflite=(model == "tflite"))
    return detector, backend


def prepare(faces: np.ndarray, size: tuple[int, int] = (64, 64)) -> np.ndarray:
    """What detect_emotions does to each grey crop before classifying (see module docstring)."""
    import cv2

    out = np.array([cv2.resize(face, size) for face in faces], dtype="float32")
    out = out / 255.0
    return (out - 0.5) * 2.0


def classify(detector, x: np.ndarray, model: str) -> np.ndarray:
    if model == "keras":
        # fer passes N x 64 x 64; Keras 3 wants the channel axis spelled out.
        return np.asarray(detector._classify_emotions(x[..., None]))
    return np.asarray(detector._classify_emotions(x))


def _times(fn, runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def versions() -> dict:
    import cv2
    import tensorflow as tf

    import fer

    info = {"python": platform.python_version(), "fer": fer.__version__, "tensorflow": tf.__version__,
            "opencv": cv2.__version__, "numpy": np.__version__,
            "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads()}
    try:
        import keras

        info["keras"] = keras.__version__
    except ImportError:
        pass
    try:
        from importlib.metadata import version

        info["ai_edge_litert"] = version("ai-edge-litert")
    except Exception:  # noqa: BLE001 - optional package
        pass
    return info


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("task", choices=["versions", "classify", "speed_classifier", "pipeline"])
    parser.add_argument("--inputs", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--options", default="{}")
    args = parser.parse_args(argv)
    opts = json.loads(args.options)
    model = opts.get("model", "tflite")
    result: dict = {"task": args.task}
    arrays: dict[str, np.ndarray] = {}

    if args.task == "versions":
        result.update(versions())
    elif args.task == "classify":
        faces = np.load(args.inputs)
        detector, backend = make_fer(model)
        x = prepare(faces)
        batch = int(opts.get("batch", 256))
        probs = np.concatenate([classify(detector, x[i:i + batch], model)
                                for i in range(0, len(x), batch)])
        arrays["probs"] = probs.astype(np.float32)
        result.update(model=model, backend=backend, n=len(faces))
    elif args.task == "speed_classifier":
        faces = np.load(args.inputs)
        detector, backend = make_fer(model)
        runs, warmup = int(opts.get("runs", 5)), int(opts.get("warmup", 1))
        table = {}
        for batch in opts.get("batches", [1, 256]):
            # Repeat faces to reach the batch size, so every batch is full.
            x = prepare(np.resize(faces, (batch, *faces.shape[1:])))
            # Enough calls per timed run that tiny batches are not all timer noise.
            reps = max(1, int(opts.get("min_images", 256)) // batch)
            times = _times(lambda: [classify(detector, x, model) for _ in range(reps)], runs, warmup)
            per_call = [t / reps for t in times]
            table[str(batch)] = {"seconds_per_batch": per_call, "reps_per_run": reps}
        result.update(model=model, backend=backend, batches=table)
    elif args.task == "pipeline":
        frames = np.load(args.inputs)
        detector, backend = make_fer(model)
        runs, warmup = int(opts.get("runs", 5)), int(opts.get("warmup", 1))
        per_frame = []
        for frame in frames:
            total = _times(lambda: detector.detect_emotions(frame), runs, warmup)
            import cv2

            grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            detect = _times(lambda: detector.find_faces(frame, bgr=True, gray_img=grey), runs, warmup)
            found = detector.detect_emotions(frame)
            per_frame.append({"total_s": total, "detect_s": detect, "faces": len(found),
                              "boxes": [list(map(int, f["box"])) for f in found]})
        result.update(model=model, backend=backend, frames=per_frame)

    for key in ("batches",):
        if key in result:
            for row in result[key].values():
                row["median_s"] = statistics.median(row["seconds_per_batch"])
    args.out.write_text(json.dumps(result, indent=1))
    if arrays:
        np.savez(args.out.with_suffix(".npz"), **arrays)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
