"""Choose the members' shares of the `ferplus` ensemble on FER+ PublicTest (validation only).

    python docs/training/faceres/choose_weight.py MEMBER.onnx MEMBER.onnx [MEMBER.onnx ...] \
        [--data ... --ferplus ...] [--out choose_weight.json]

Scores each member's ONNX file alone and, for every subset of two or more members, every weighted
mean whose shares are multiples of 0.1 (summing to 1, each member at least 0.1), against FER+
majority labels as `emodetect evaluate --ferplus` keeps faces; prints the members and the ten best
mixes, and writes every figure as JSON (beside this script unless --out says otherwise). Members
are named by their file stems.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from emodetect.runtime import OnnxModel
from emodetect.vision.data import read_ferplus


def share_grid(members: int, step: int = 10) -> list[tuple[float, ...]]:
    """Every tuple of `members` shares in 1/step units, each at least one unit, summing to 1."""
    return [tuple(c / step for c in combo) for combo in itertools.product(range(1, step), repeat=members)
            if sum(combo) == step]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("members", nargs="+", help="two or more ONNX face models")
    parser.add_argument("--data", default="../shared/data/fer2013/fer2013.csv.gz")
    parser.add_argument("--ferplus", default="../shared/data/fer2013/fer2013new.csv")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("choose_weight.json"))
    args = parser.parse_args()
    if len(args.members) < 2:
        parser.error("give two or more members")
    faces = read_ferplus(args.data, args.ferplus, "PublicTest")
    x = faces.images[:, None].astype(np.float32)
    probs = []
    for path in args.members:
        model = OnnxModel(path)
        probs.append(np.concatenate([model.predict(x[i:i + 256]) for i in range(0, len(x), 256)]))
    alone = {path: float((p.argmax(1) == faces.labels).mean()) for path, p in zip(args.members, probs)}
    names = [Path(path).stem for path in args.members]
    mixes = {}
    for size in range(2, len(probs) + 1):
        for subset in itertools.combinations(range(len(probs)), size):
            for shares in share_grid(size):
                mean = sum(share * probs[i] for share, i in zip(shares, subset))
                key = " + ".join(f"{share:.1f} x {names[i]}" for share, i in zip(shares, subset))
                mixes[key] = float((mean.argmax(1) == faces.labels).mean())
    for path, acc in alone.items():
        print(f"{acc:.4f}  alone  {path}")
    for key, acc in sorted(mixes.items(), key=lambda item: -item[1])[:10]:
        print(f"{acc:.4f}  {key}")
    args.out.write_text(json.dumps({"faces": len(faces.labels), "members": args.members, "alone": alone,
                                    "mixes": mixes}, indent=1) + "\n")


if __name__ == "__main__":
    main()
