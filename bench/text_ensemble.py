"""Text ensembles on validation: the joint heads' figures of two models averaged at several weights
(and of any single candidates), to choose an ensemble's weights on the validation splits only.

    python docs/training/text_shared/make_data.py ../shared/data/text runs/text_joint/joint.csv
    python bench/text_ensemble.py runs/text_joint/joint.csv --members default minilm-int8 \
        --weights 0 0.2 0.3 0.4 0.5 1 [--models run.onnx ...]

Figures per weight of the first member (the second gets the rest): the GoEmotions head's 28-label
macro-F1 at per-label thresholds tuned on the same split (as export and `emodetect ensemble` tune
them: optimistic for every row alike), the dair and ISEAR heads' accuracy, and MELD's weighted F1
in the shared labels (the main head); the mean of the four is what `accurate`'s weights were chosen
on. Beside them, the honest GoEmotions figure that `emodetect ensemble` now tunes by: macro-F1 on
held-out halves of the split, thresholds pulled towards a common one by the shrink that did best
there (evaluate.cross_fitted_thresholds); the GoEmotions head's own weight was chosen on it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, markdown_table, write_json  # noqa: E402

FIGURES = ("goemotions macro-F1", "dair accuracy", "isear accuracy", "meld weighted F1")
HELD_OUT = ("goemotions held-out macro-F1", "shrink")


def head_figures(probs: np.ndarray, reader, data) -> dict[str, float]:
    """The four figures of one model's (or average's) probabilities on the split's rows."""
    from emodetect.metrics import cross_fitted_thresholds, f1_table, multilabel_predictions, tune_thresholds
    from emodetect.heads import segments

    segs = {s.name or "main": s for s in segments(reader.labels, reader.multilabel, reader.head_specs)}

    def labelled(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows labelled in head `name`, their targets and the model's probabilities there."""
        known, targets = data.labelled_in(name, segs[name].labels)
        return known, targets, probs[known, segs[name].start:segs[name].stop]

    out = {}
    _, y, p = labelled("goemotions")
    out["goemotions macro-F1"] = float(f1_table(y > 0.5, multilabel_predictions(p, tune_thresholds(p, y)))[2].mean())
    _, shrink, held_out = cross_fitted_thresholds(p, y)
    out["goemotions held-out macro-F1"], out["shrink"] = held_out[shrink], shrink
    for name in ("dair", "isear"):
        _, y, p = labelled(name)
        out[f"{name} accuracy"] = float((p.argmax(1) == y.argmax(1)).mean())
    known, y, p = labelled("main")
    meld = np.array([r.get("corpus") == "meld" for r in data.rows])[known]
    eye = np.eye(len(reader.labels)) > 0
    _, _, f1, support = f1_table(eye[y[meld].argmax(1)], eye[p[meld].argmax(1)])
    out["meld weighted F1"] = float((f1 * support).sum() / support.sum())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the joint CSV of make_data.py")
    parser.add_argument("--members", nargs=2, default=["default", "minilm-int8"])
    parser.add_argument("--weights", nargs="+", type=float, default=[0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 1])
    parser.add_argument("--models", nargs="*", default=[], help="single candidates to score beside (names or ONNX)")
    parser.add_argument("--split", default="validation", help="validation (choose here), never test to choose")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", default="text_ensemble.json", help="JSON name under bench/results")
    args = parser.parse_args()

    from emodetect.text.data import load_texts
    from emodetect.text.pipeline import TextEmotion

    data = load_texts(args.data, args.split)
    readers = {name: TextEmotion(name, threads=args.threads) for name in [*args.members, *args.models]}
    probs = {name: reader.probabilities(data.texts) for name, reader in readers.items()}
    first, second = args.members
    rows, record = [], {"machine": machine_info(), "split": args.split, "members": args.members, "rows": {}}
    candidates = [(f"{first} x {w:g} + {second} x {1 - w:g}", w * probs[first] + (1 - w) * probs[second])
                  for w in args.weights] + [(name, probs[name]) for name in args.models]
    for label, mixed in candidates:
        figures = head_figures(mixed, readers[first], data)
        figures["mean"] = float(np.mean([figures[k] for k in FIGURES]))
        record["rows"][label] = {k: round(v, 4) for k, v in figures.items()}
        rows.append([label, *(figures[k] for k in (*FIGURES, "mean", *HELD_OUT))])
    table = markdown_table(["model", *FIGURES, "mean", *HELD_OUT], rows)
    print(table)
    record["table"] = table
    print(f"wrote {write_json(args.out, record)}")


if __name__ == "__main__":
    main()
