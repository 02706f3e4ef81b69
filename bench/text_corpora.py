"""Text models across corpora: each model's answer put on the shared labels (its groups, or the
label synonyms; emodetect.multimodal.to_shared) and scored on every corpus's test split of the
combined CSV that docs/training/text_shared/make_data.py writes. A model trained on one corpus
is out of its domain on the others; the table shows how far it falls.

    python bench/text_corpora.py runs/text_shared/shared.csv [--models goemotions dair-emotion run.onnx]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from common import machine_info, markdown_table, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--models", nargs="+", default=["goemotions", "dair-emotion"])
    args = parser.parse_args()

    from emodetect.labels import EMOTIONS
    from emodetect.multimodal import to_shared
    from emodetect.text.pipeline import TextEmotion

    with open(args.data, newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["split"] == "test"]
    corpora = sorted({r["corpus"] for r in rows})
    table, record = [], {}
    for name in args.models:
        reader = TextEmotion(name)
        results = reader.predict([r["text"] for r in rows], batch_size=512)
        predicted = []
        for result in results:
            shared = to_shared(result.group_probabilities or result.probabilities)
            predicted.append(EMOTIONS[int(shared.argmax())] if shared is not None else "")
        record[reader.name] = {}
        cells = []
        for corpus in corpora:
            index = [i for i, r in enumerate(rows) if r["corpus"] == corpus]
            truth = np.array([rows[i]["label"] for i in index])
            guess = np.array([predicted[i] for i in index])
            accuracy = float((truth == guess).mean())
            recalls = [float((guess[truth == k] == k).mean()) for k in EMOTIONS if (truth == k).any()]
            record[reader.name][corpus] = {"n": len(index), "accuracy": round(accuracy, 4),
                                    "unweighted_recall": round(float(np.mean(recalls)), 4)}
            cells.append(f"{accuracy:.3f} / {np.mean(recalls):.3f}")
        table.append([reader.name, *cells])
    print("accuracy / unweighted recall on each corpus's test split, shared labels")
    print(markdown_table(["model", *corpora], table))
    path = write_json("text_corpora.json", {"machine": machine_info(), "data": str(args.data), "results": record})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
