"""Speed against fer on this CPU: the classifier alone, and the whole photo-to-emotions pipeline.

    python bench/speed.py                   # medians of 7 runs after 2 warm-up runs
    python bench/speed.py --runs 3 --quick  # a quick look (fewer images per timed run)

Classifier: images/s and ms/image at batch 1 and batch 256 for our bundled ONNX models (fp32 and
int8, onnxruntime, 48x48 grey input, normalisation inside the graph) and for fer's classifiers
(its default TFLite model, which `FER()` runs one face per invoke, and its Keras .hdf5), on the
same FER-2013 faces, already prepared as each expects (fer's resize to 64x64 and scaling are not
timed). Each library runs with its own default thread settings, as a user gets it.

Pipeline: frames/s on 640x480 photos with 1 and with 5 faces, built from the sample photos in
emodetect/assets/samples: ours `EmotionDetector().detect(image)` vs fer's
`FER().detect_emotions(image)`, with face detection timed alone too (classification and the rest
= total - detection). The number of faces each found is recorded: a detector that misses faces
also skips their classification.

Figures on this shared 2-core machine are noisy: compare ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (FER2013_CSV, REPO, default_label, goal, machine_info, markdown_table,  # noqa: E402
                    median, our_face_models, timed_runs, write_json)

ASSETS = REPO / "emodetect" / "assets"
SAMPLES = ASSETS / "samples"
FER_MODELS = {"fer (TFLite, default)": "tflite", "fer (Keras .hdf5)": "keras"}
BATCHES = (1, 256)
FRAME_W, FRAME_H = 640, 480


def load_bench_faces(n: int = 256) -> np.ndarray:
    """Real faces (speed does not depend on content, but nothing odd should hide in random noise)."""
    from emodetect.vision.data import read_fer_csv

    if FER2013_CSV.exists():
        return read_fer_csv(FER2013_CSV, "PrivateTest")[0].images[:n]
    return np.random.default_rng(0).integers(0, 256, (n, 48, 48), dtype=np.uint8)


def make_frames() -> dict[int, np.ndarray]:
    """640x480 RGB frames with 1 and 5 faces of 70 to 160 px, pasted from the sample photos.

    Faces are kept >= 70 px so that fer's Haar detector (minimum face 50 px) can find them all:
    otherwise fer would be timed on fewer faces than ours.
    """
    from PIL import Image

    boxes = json.loads((SAMPLES / "labels.json").read_text())

    def head(name: str, face_px: int, mirror: bool = False) -> Image.Image:
        """The photo around its face box (1.2 box widths margin), scaled so the face is face_px wide."""
        image = Image.open(SAMPLES / name).convert("RGB")
        x, y, w, h = boxes[name][0]
        m = 1.2
        # Clamped to the photo: no black bars for a detector to trip on.
        crop = image.crop((max(0, int(x - m * w)), max(0, int(y - m * h * 0.8)),
                           min(image.width, int(x + w + m * w)), min(image.height, int(y + h + m * h * 0.8))))
        k = face_px / w
        crop = crop.resize((max(1, int(crop.width * k)), max(1, int(crop.height * k))), Image.Resampling.LANCZOS)
        return crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if mirror else crop

    def canvas() -> Image.Image:
        # A soft grey gradient: some texture, no face-like structure.
        ramp = np.linspace(90, 170, FRAME_W, dtype=np.float32)[None, :] + np.linspace(0, 30, FRAME_H)[:, None]
        return Image.fromarray(np.repeat(ramp[..., None], 3, axis=2).astype(np.uint8))

    one = canvas()
    tile = head("grace_hopper.jpg", 160)
    one.paste(tile, ((FRAME_W - tile.width) // 2, (FRAME_H - tile.height) // 2))
    five = canvas()
    layout = [("grace_hopper.jpg", 90, 10, 10, False), ("astronaut.jpg", 90, 230, 10, False),
              ("cameraman.png", 80, 450, 10, False), ("astronaut.jpg", 80, 90, 250, True),
              ("grace_hopper.jpg", 80, 360, 250, True)]
    for name, px, left, top, mirror in layout:
        tile = head(name, px, mirror)
        tile = tile.crop((0, 0, min(tile.width, 210), min(tile.height, 225)))
        five.paste(tile, (left, top))
    return {1: np.asarray(one), 5: np.asarray(five)}


def classifier_ours(faces: np.ndarray, runs: int, warmup: int, min_images: int) -> dict[str, Any]:
    from emodetect.runtime import OnnxModel

    out = {}
    for name, path in our_face_models().items():
        model = OnnxModel(path)
        rows = {}
        for batch in BATCHES:
            x = np.resize(faces, (batch, *faces.shape[1:]))[:, None].astype(np.float32)
            reps = max(1, min_images // batch)
            times = timed_runs(lambda: [model.predict(x) for _ in range(reps)], runs, warmup)
            rows[str(batch)] = {"seconds_per_batch": [t / reps for t in times], "reps_per_run": reps}
        out[name] = rows
    return out


def classifier_fer(faces: np.ndarray, runs: int, warmup: int, min_images: int) -> dict[str, Any]:
    from fer_env import run_fer

    out = {}
    for name, kind in FER_MODELS.items():
        res = run_fer("speed_classifier", faces, model=kind, batches=list(BATCHES), runs=runs,
                      warmup=warmup, min_images=min_images)
        out[name] = {b: {k: v for k, v in row.items() if k != "median_s"} for b, row in res["batches"].items()}
    return out


def pipeline_ours(frames: dict[int, np.ndarray], runs: int, warmup: int, model: Path | None = None) -> dict[str, Any]:
    """`EmotionDetector().detect` as a user calls it (model None = the default), on RGB arrays."""
    from emodetect import EmotionDetector

    detector = EmotionDetector(model)
    out = {"detector": detector.detector_name, "model": str(model or detector.model_name), "frames": {}}
    for n, rgb in frames.items():
        total = timed_runs(lambda: detector.detect(rgb), runs, warmup)
        detect = timed_runs(lambda: detector.face_detector.detect(rgb), runs, warmup)
        found = detector.detect(rgb)
        out["frames"][str(n)] = {"total_s": total, "detect_s": detect, "faces": len(found.faces),
                                 "boxes": [list(map(int, (f.box.x, f.box.y, f.box.width, f.box.height)))
                                           for f in found.faces]}
    return out


def pipeline_fer(frames: dict[int, np.ndarray], runs: int, warmup: int) -> dict[str, Any]:
    from fer_env import run_fer

    bgr = np.stack([np.ascontiguousarray(f[..., ::-1]) for f in frames.values()])
    res = run_fer("pipeline", bgr, model="tflite", runs=runs, warmup=warmup)
    return {"detector": "haar (OpenCV cascade)", "model": "fer TFLite",
            "frames": {str(n): row for n, row in zip(frames, res["frames"])}}


def summarise(payload: dict[str, Any]) -> dict[str, Any]:
    """Medians, rates and the ours/fer ratios, all from this run's numbers."""
    cls = {}
    for name, rows in payload["classifier"].items():
        cls[name] = {}
        for batch, row in rows.items():
            sec = median(row["seconds_per_batch"])
            cls[name][batch] = {"images_per_s": int(batch) / sec, "ms_per_image": 1000 * sec / int(batch)}
    fer_names = [n for n in cls if n.startswith("fer")]
    ratios = {}
    for batch in map(str, BATCHES):
        fer_best = max((cls[n][batch]["images_per_s"] for n in fer_names), default=None)
        fer_default = cls.get("fer (TFLite, default)", {}).get(batch, {}).get("images_per_s")
        for ours in [n for n in cls if not n.startswith("fer")]:
            if fer_best:
                ratios[f"{ours} / fastest fer, batch {batch}"] = cls[ours][batch]["images_per_s"] / fer_best
            if fer_default:
                ratios[f"{ours} / fer default, batch {batch}"] = cls[ours][batch]["images_per_s"] / fer_default
    pipe = {}
    for who, res in payload["pipeline"].items():
        pipe[who] = {}
        for n, row in res["frames"].items():
            total, detect = median(row["total_s"]), median(row["detect_s"])
            pipe[who][n] = {"frames_per_s": 1 / total, "ms_total": 1000 * total, "ms_detect": 1000 * detect,
                            "ms_rest": 1000 * max(0.0, total - detect), "faces_found": row["faces"]}
    pipe_ratio: dict[str, dict[str, float]] = {}
    if "fer" in pipe:
        for who in [w for w in pipe if w != "fer"]:
            pipe_ratio[who] = {n: pipe[who][n]["frames_per_s"] / pipe["fer"][n]["frames_per_s"] for n in pipe[who]}
    goals = {}
    # The default model first, then every other bundled face model (the realtime one is made for speed).
    ours = [payload["default_model"]] + [n for n in cls if not n.startswith("fer") and n != payload["default_model"]]
    for model in ours:
        key = f"{model} / fastest fer, batch 256"
        if key in ratios:
            goals[f"classifier >= 3x fer at batch 256 ({model} vs fer's faster classifier)"] = {
                "ratio": ratios[key], "status": goal(ratios[key] >= 3)}
    for model in ours:
        if model in pipe_ratio:
            worst = min(pipe_ratio[model].values())
            goals[f"pipeline >= 10x fer's frames/s, 1 and 5 faces ({model})"] = {
                "ratio": worst, "status": goal(worst >= 10)}
    return {"classifier": cls, "classifier_ratios": ratios, "pipeline": pipe, "pipeline_ratios": pipe_ratio,
            "goals": goals}


def tables(payload: dict[str, Any]) -> str:
    s = payload["summary"]
    contended = " (CONTENDED: the CPU was shared with a training run)" if payload["machine"]["contended"] else ""
    rows = []
    for name, by_batch in s["classifier"].items():
        rows.append([name] + [f"{by_batch[str(b)][k]:.4g}" for b in BATCHES for k in ("images_per_s", "ms_per_image")])
    header = ["classifier"] + [f"b{b} {k}" for b in BATCHES for k in ("img/s", "ms/img")]
    out = [f"Classifier throughput, median of {payload['runs']} runs{contended}", "", markdown_table(header, rows), ""]
    out += [f"- {k}: {v:.2f}x" for k, v in s["classifier_ratios"].items()]
    rows = []
    for who, by_n in s["pipeline"].items():
        for n, r in by_n.items():
            rows.append([who, n, r["faces_found"], f"{r['frames_per_s']:.3g}", f"{r['ms_total']:.1f}",
                         f"{r['ms_detect']:.1f}", f"{r['ms_rest']:.1f}"])
    out += ["", f"Whole pipeline on a {FRAME_W}x{FRAME_H} photo, median of {payload['runs']} runs{contended}", "",
            markdown_table(["pipeline", "faces in photo", "faces found", "frames/s", "ms total", "ms detect",
                            "ms classify + rest"], rows), ""]
    out += [f"- {who} / fer frames/s, {n} face(s): {r:.2f}x"
            for who, by_n in s["pipeline_ratios"].items() for n, r in by_n.items()]
    out += [""] + [f"Goal: {k}: {v['ratio']:.2f}x -> **{v['status']}**" for k, v in s["goals"].items()]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per figure (median); >= 5 for reports")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="fewer images per timed run (development)")
    parser.add_argument("--no-fer", action="store_true")
    parser.add_argument("--no-pipeline", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default bench/results/speed.json)")
    args = parser.parse_args(argv)
    min_images = 32 if args.quick else 256
    faces = load_bench_faces()
    fer_versions: dict[str, str] = {}
    machine_before = machine_info()
    payload: dict[str, Any] = {"benchmark": "speed", "runs": args.runs, "warmup": args.warmup,
                               "min_images_per_timed_run": min_images, "frame_size": [FRAME_W, FRAME_H],
                               "default_model": default_label(our_face_models())}
    payload["classifier"] = classifier_ours(faces, args.runs, args.warmup, min_images)
    if not args.no_fer:
        from fer_env import ensure_fer_env, fer_versions as read_versions

        ensure_fer_env()
        fer_versions = read_versions()
        payload["classifier"] |= classifier_fer(faces, args.runs, args.warmup, min_images)
    if not args.no_pipeline:
        frames = make_frames()
        # The default first exactly as a user gets it, then every other bundled face model.
        payload["pipeline"] = {payload["default_model"]: pipeline_ours(frames, args.runs, args.warmup)}
        for name, path in our_face_models().items():
            if name != payload["default_model"]:
                payload["pipeline"][name] = pipeline_ours(frames, args.runs, args.warmup, path)
        if not args.no_fer:
            payload["pipeline"]["fer"] = pipeline_fer(frames, args.runs, args.warmup)
    else:
        payload["pipeline"] = {}
    payload["summary"] = summarise(payload)
    machine = machine_info(fer_versions)
    # Contended if the training run was there at the start or at the end of the measurements.
    machine["contended"] = machine["contended"] or machine_before["contended"]
    machine["load_average_1m_at_start"] = machine_before["load_average_1m"]
    payload["machine"] = machine
    print(tables(payload))
    path = write_json(args.out.name if args.out else "speed.json", payload, args.out.parent if args.out else None)
    print(f"\nwrote {path}")
    return payload


if __name__ == "__main__":
    main()
