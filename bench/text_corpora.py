"""Text models across corpora: each model's answer put on the shared labels (its groups, or the
label synonyms; emodetect.multimodal.to_shared) and scored on every corpus's test split of the
combined CSV that docs/training/text_shared/make_data.py writes. A model trained on one corpus
is out of its domain on the others; the table shows how far it falls.

    python docs/training/text_shared/make_data.py ../shared/data/text runs/text_joint/joint.csv
    python bench/text_corpora.py runs/text_joint/joint.csv [--models default goemotions run.onnx]

Rows without a shared label (dair's love, ISEAR's shame and guilt) are not scored. Cells are
accuracy / unweighted recall / weighted F1 (MELD's own measure: per-class F1 weighted by support).
A second table scores the test texts that hold a word the training split has at most once (the
words a vocabulary built from these corpora does not know): how a model reads unseen words.
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from pathlib import Path

import numpy as np

from common import machine_info, markdown_table, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--models", nargs="+", default=["default", "minilm-int8", "goemotions"])
    parser.add_argument("--split", default="test", help="test, or validation to compare candidates")
    parser.add_argument("--out", default="text_corpora.json", help="JSON name under bench/results")
    args = parser.parse_args()

    from emodetect.labels import EMOTIONS
    from emodetect.multimodal import to_shared
    from emodetect.text.pipeline import TextEmotion

    from emodetect.text.tokenize import tokenize

    with open(args.data, newline="", encoding="utf-8") as handle:
        every = list(csv.DictReader(handle))
    rows = [r for r in every if r["split"] == args.split and r["label"]]
    corpora = sorted({r["corpus"] for r in rows})
    seen = Counter(t for r in every if r["split"] == "train" for t in tokenize(r["text"]))
    rare = np.array([any(t.isalpha() and len(t) > 2 and seen[t] < 2 for t in tokenize(r["text"])) for r in rows])
    table, rare_table, record = [], [], {}
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
            weighted_f1 = sum((truth == k).mean() * _f1(truth, guess, k) for k in EMOTIONS if (truth == k).any())
            record[reader.name][corpus] = {"n": len(index), "accuracy": round(accuracy, 4),
                                           "unweighted_recall": round(float(np.mean(recalls)), 4),
                                           "weighted_f1": round(float(weighted_f1), 4)}
            cells.append(f"{accuracy:.3f} / {np.mean(recalls):.3f} / {weighted_f1:.3f}")
        table.append([reader.name, *cells])
        rare_cells = []
        for corpus in corpora:
            index = [i for i, r in enumerate(rows) if r["corpus"] == corpus and rare[i]]
            accuracy = float(np.mean([predicted[i] == rows[i]["label"] for i in index])) if index else float("nan")
            record[reader.name][corpus]["rare_words"] = {"n": len(index), "accuracy": round(accuracy, 4)}
            rare_cells.append(f"{accuracy:.3f}")
        rare_table.append([reader.name, *rare_cells])
    print(f"accuracy / unweighted recall / weighted F1 on each corpus's {args.split} split, shared labels")
    print(markdown_table(["model", *corpora], table))
    counts = {c: int(sum(rare[i] for i, r in enumerate(rows) if r["corpus"] == c)) for c in corpora}
    print(f"\naccuracy on the {args.split} texts with a word seen at most once in training, shared labels")
    print(markdown_table(["model", *(f"{c} ({counts[c]})" for c in corpora)], rare_table))
    path = write_json(args.out, {"machine": machine_info(), "data": str(args.data), "split": args.split,
                                 "results": record})
    print(f"wrote {path}")


def _f1(truth: np.ndarray, guess: np.ndarray, label: str) -> float:
    hits = float(((truth == label) & (guess == label)).sum())
    return 2 * hits / max(float((truth == label).sum() + (guess == label).sum()), 1.0)


if __name__ == "__main__":
    main()
