"""Score face ONNX models on PrivateTest against FER+ labels with the strict majority protocol of
issue 14: FER+ votes joined by row order, contempt counted as disgust, a face kept when its top
emotion count is strictly above every other emotion count, the unknown count and the not-a-face
count (3,378 PrivateTest faces). `emodetect evaluate --ferplus` keeps more faces (argmax of the
emotion votes wherever they outnumber unknown + not-a-face: 3,563).

    python docs/training/ferplus/strict_majority.py emodetect/assets/emotion_default.onnx ...
"""

from __future__ import annotations

import argparse
import csv
import json

import numpy as np

from emodetect.labels import EMOTIONS, FERPLUS_COLUMNS, canonical_emotion
from emodetect.runtime import OnnxModel
from emodetect.vision.data import read_fer_csv


def strict_labels(ferplus_csv: str, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(kept mask over `rows`, labels of the kept rows)."""
    with open(ferplus_csv, newline="") as handle:
        table = list(csv.reader(handle))[1:]
    keep, labels = [], []
    for i in rows:
        counts = [float(v) for v in table[i][2:12]]
        votes = np.zeros(len(EMOTIONS))
        for column, count in zip(FERPLUS_COLUMNS[:8], counts[:8]):
            votes[EMOTIONS.index(canonical_emotion(column))] += count
        top = int(votes.argmax())
        others = np.delete(votes, top)
        ok = votes[top] > max(others.max(), counts[8], counts[9])
        keep.append(ok)
        labels.append(top)
    keep_arr = np.array(keep)
    return keep_arr, np.array(labels)[keep_arr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--data", default="../shared/data/fer2013/fer2013.csv.gz")
    parser.add_argument("--ferplus", default="../shared/data/fer2013/fer2013new.csv")
    parser.add_argument("--split", default="PrivateTest")
    args = parser.parse_args()
    faces, rows = read_fer_csv(args.data, args.split)
    keep, labels = strict_labels(args.ferplus, rows)
    x = faces.images[keep][:, None].astype(np.float32)
    out = {}
    for path in args.models:
        probs = np.concatenate([OnnxModel(path).predict(x[i:i + 256]) for i in range(0, len(x), 256)])
        out[path] = {"faces": int(keep.sum()), "accuracy": round(float((probs.argmax(1) == labels).mean()), 4)}
        print(f"{path}: {out[path]['accuracy']:.4f} on {out[path]['faces']} faces (strict FER+ majority, {args.split})")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
