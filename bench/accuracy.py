"""Accuracy of our bundled face models against fer's classifier, on the same 48x48 FER-2013 crops.

    python bench/accuracy.py                       # PrivateTest, FER-2013 and FER+ labels
    python bench/accuracy.py --limit 500 --out /tmp/acc.json   # a quick look

Scored on FER-2013 PrivateTest with its own labels and with the FER+ majority labels of the same
images (rows FER+ marks as not a face or unknown are left out, as `load_faces` does). fer's
classifiers (the TFLite model `FER()` uses by default, and the Keras .hdf5 it ships too) run in
their own venv (bench/fer_env.py) on the very same crops, prepared as fer prepares a face.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (FER2013_CSV, FERPLUS_CSV, REPO, default_label, goal, machine_info,  # noqa: E402
                    markdown_table, our_face_models, write_json)

from emodetect.evaluate import classification_report  # noqa: E402
from emodetect.labels import EMOTIONS  # noqa: E402
from emodetect.runtime import OnnxModel  # noqa: E402
from emodetect.vision.data import load_faces  # noqa: E402

FER_MODELS = {"fer (TFLite, default)": "tflite", "fer (Keras .hdf5)": "keras"}
SHORT = {"angry": "ang", "disgust": "dis", "fear": "fea", "happy": "hap", "sad": "sad",
         "surprise": "sur", "neutral": "neu"}


def predict_ours(path: Path, images: np.ndarray, batch: int = 256) -> np.ndarray:
    model = OnnxModel(path)
    if list(model.labels) != list(EMOTIONS):
        raise ValueError(f"{path}: labels {model.labels} are not in the order {EMOTIONS}")
    x = images[:, None].astype(np.float32)
    return np.concatenate([model.predict(x[i:i + batch]) for i in range(0, len(x), batch)])


def predict_fer(kind: str, images: np.ndarray, use_cache: bool = True) -> np.ndarray:
    """fer's probabilities, cached by (fer version, classifier, exact pixels): fer's answers never
    change, so a rerun for a new model of ours costs only our own inference."""
    import hashlib

    from fer_env import FER_VERSION, cache_dir, run_fer

    key = hashlib.sha256(images.tobytes() + repr(images.shape).encode()).hexdigest()[:20]
    path = cache_dir() / "predictions" / f"fer-{FER_VERSION}-{kind}-{key}.npy"
    if use_cache and path.exists():
        return np.load(path)
    probs = run_fer("classify", images, model=kind)["arrays"]["probs"]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, probs)
    return probs


def score(name: str, probs: np.ndarray, labels: np.ndarray, data: str) -> dict[str, Any]:
    report = classification_report(labels, probs.argmax(1), EMOTIONS, model=name, data=data)
    return {"accuracy": report.accuracy, "macro_f1": report.macro_f1, "n": report.n,
            "recall": {c.label: c.recall for c in report.per_class},
            "confusion": report.confusion}


def run(data: Path, ferplus: Path, split: str, limit: int, with_fer: bool, use_cache: bool = True) -> dict[str, Any]:
    sets = {"FER-2013": load_faces(data, split)}
    if ferplus.exists():
        sets["FER+"] = load_faces(data, split, ferplus)
    if limit:
        sets = {k: v.subset(np.arange(min(limit, len(v)))) for k, v in sets.items()}
    ours_models = our_face_models()
    predictors = {name: (lambda x, p=path: predict_ours(p, x)) for name, path in ours_models.items()}
    fer_versions: dict[str, str] = {}
    if with_fer:
        from fer_env import ensure_fer_env, fer_versions as read_versions

        ensure_fer_env()
        fer_versions = read_versions()
        predictors |= {name: (lambda x, k=kind: predict_fer(k, x, use_cache)) for name, kind in FER_MODELS.items()}
    results: dict[str, dict[str, Any]] = {}
    for name, predict in predictors.items():
        results[name] = {}
        for label_set, ds in sets.items():
            results[name][label_set] = score(name, predict(ds.images), ds.labels, ds.source)
    ours = results[default_label(ours_models)]["FER-2013"]["accuracy"]
    fer_best = max((results[n]["FER-2013"]["accuracy"] for n in FER_MODELS if n in results), default=None)
    return {
        "benchmark": "accuracy", "split": split, "limit": limit, "fer_answers_cached": use_cache,
        "sets": {k: {"source": v.source, "n": len(v)} for k, v in sets.items()},
        "models": {**{k: str(v.relative_to(REPO)) for k, v in ours_models.items()},
                   **{k: f"fer {fer_versions.get('fer', '?')} {v}" for k, v in FER_MODELS.items()}},
        "results": results,
        "goal": {"text": "accuracy above fer's (best of its two classifiers) on PrivateTest, FER-2013 labels",
                 "model": default_label(ours_models),
                 "ours": ours, "fer": fer_best,
                 "status": None if fer_best is None else goal(ours > fer_best)},
        "machine": machine_info(fer_versions),
    }


def tables(payload: dict[str, Any]) -> str:
    sets = list(payload["sets"])
    header = ["model"] + [f"{s} {m}" for s in sets for m in ("acc", "macro-F1")]
    rows = [[name] + [f"{res[s][m]:.4f}" for s in sets for m in ("accuracy", "macro_f1")]
            for name, res in payload["results"].items()]
    out = [f"Accuracy on {payload['split']} (n = " + ", ".join(f"{s}: {v['n']}" for s, v in payload['sets'].items()) + ")",
           "", markdown_table(header, rows)]
    for s in sets:
        header = ["recall, " + s] + [SHORT[e] for e in EMOTIONS]
        rows = [[name] + [f"{res[s]['recall'][e]:.3f}" for e in EMOTIONS]
                for name, res in payload["results"].items()]
        out += ["", markdown_table(header, rows)]
    g = payload["goal"]
    if g["status"]:
        out += ["", f"Goal: {g['text']}: ours {g['ours']:.4f} vs fer {g['fer']:.4f} -> **{g['status']}**"]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=FER2013_CSV)
    parser.add_argument("--ferplus", type=Path, default=FERPLUS_CSV)
    parser.add_argument("--split", default="PrivateTest")
    parser.add_argument("--limit", type=int, default=0, help="first N faces only (quick runs)")
    parser.add_argument("--no-fer", action="store_true", help="score our models only")
    parser.add_argument("--no-cache", action="store_true", help="rerun fer instead of reusing its cached answers")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default bench/results/accuracy.json)")
    args = parser.parse_args(argv)
    payload = run(args.data, args.ferplus, args.split, args.limit, not args.no_fer, not args.no_cache)
    print(tables(payload))
    path = write_json(args.out.name if args.out else "accuracy.json", payload,
                      args.out.parent if args.out else None)
    print(f"\nwrote {path}")
    return payload


if __name__ == "__main__":
    main()
