"""Choose the two members' shares of the `ferplus` ensemble on FER+ PublicTest (validation only).

    python docs/training/faceres/choose_weight.py VGG_MEMBER.onnx FACERES_MEMBER.onnx [--data ... --ferplus ...]

Scores each member's ONNX file alone and their weighted mean for shares 0.1..0.9 of the first,
against FER+ majority labels as `emodetect evaluate --ferplus` keeps faces; prints a table and
writes the figures as JSON beside this script.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from emodetect.runtime import OnnxModel
from emodetect.vision.data import read_ferplus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first")
    parser.add_argument("second")
    parser.add_argument("--data", default="../shared/data/fer2013/fer2013.csv.gz")
    parser.add_argument("--ferplus", default="../shared/data/fer2013/fer2013new.csv")
    args = parser.parse_args()
    faces = read_ferplus(args.data, args.ferplus, "PublicTest")
    x = faces.images[:, None].astype(np.float32)
    probs = []
    for path in (args.first, args.second):
        model = OnnxModel(path)
        probs.append(np.concatenate([model.predict(x[i:i + 256]) for i in range(0, len(x), 256)]))
    rows = {"first alone": float((probs[0].argmax(1) == faces.labels).mean()),
            "second alone": float((probs[1].argmax(1) == faces.labels).mean())}
    for share in np.round(np.arange(0.1, 1.0, 0.1), 1):
        mean = share * probs[0] + (1 - share) * probs[1]
        rows[f"{share:.1f} x first + {1 - share:.1f} x second"] = float((mean.argmax(1) == faces.labels).mean())
    for name, acc in rows.items():
        print(f"{name:32s} FER+ PublicTest accuracy {acc:.4f}")
    out = Path(__file__).with_name("choose_weight.json")
    out.write_text(json.dumps({"faces": len(faces.labels), "first": args.first, "second": args.second,
                               "accuracy": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
