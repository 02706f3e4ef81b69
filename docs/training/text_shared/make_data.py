"""One CSV of the four text corpora, each corpus keeping its own train/validation/test split, with
a `corpus` column for `evaluate --group-by corpus`.

`label` is the shared label (angry, disgust, fear, happy, sad, surprise, neutral); it is empty where
a row has none (dair's love, ISEAR's shame and guilt, GoEmotions rows with several Ekman labels).
The head columns keep each corpus's own labels for the joint model's fine-grained heads:
`labels:goemotions` (GoEmotions' 28, `;`-joined), `label:isear` (7) and `label:dair` (6), empty
on the other corpora's rows. MELD's labels are the shared ones, so it needs no head.
With --shared-only the file is the one the `shared` model was trained on: `label`, `split` and
`corpus`, rows without a shared label left out.

    python docs/training/text_shared/make_data.py ../shared/data/text runs/text_joint/joint.csv
    python docs/training/text_shared/make_data.py ../shared/data/text runs/text_shared/shared.csv --shared-only
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from pathlib import Path

from emodetect.labels import SYNONYMS

SOURCES = {  # corpus: (file, label column for the shared label, own labels' column, head column)
    "goemotions": ("goemotions/goemotions.csv", "ekman_labels", "labels", "labels:goemotions"),
    "dair": ("dair_emotion/emotion.csv", "label", "label", "label:dair"),
    "meld": ("meld_text/meld_text.csv", "label", None, None),
    "isear": ("isear/isear.csv", "label", "label", "label:isear"),
}
HEADS = [spec[3] for spec in SOURCES.values() if spec[3]]


def main(root: Path, out: Path, shared_only: bool = False) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    counts: Counter = Counter()
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "split", "corpus", *([] if shared_only else HEADS)])
        for corpus, (name, column, own, head) in SOURCES.items():
            with open(root / name, newline="", encoding="utf-8") as source:
                for row in csv.DictReader(source):
                    names = [n for n in row[column].split(";") if n]
                    shared = {SYNONYMS.get(n.strip().lower()) for n in names}
                    label = shared.pop() if len(shared) == 1 and None not in shared else ""
                    if not row["text"].strip() or (shared_only and not label):
                        counts[(corpus, "left out")] += 1
                        continue
                    heads = [row[own] if h == head else "" for h in HEADS]
                    writer.writerow([row["text"], label, row["split"], corpus, *([] if shared_only else heads)])
                    counts[(corpus, row["split"], "shared label" if label else "own label only")] += 1
    for key, n in sorted(counts.items()):
        print(*key, n)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--shared-only", action="store_true")
    args = parser.parse_args()
    main(args.root, args.out, args.shared_only)

# The bundled `shared` model (emodetect/assets/text_shared.onnx) was trained from this CSV with
# (config.json and log.jsonl beside this file; 8 epochs of about 60 s on 2 AMD EPYC cores):
#   emodetect train --data runs/text_shared/shared.csv --model kim_cnn --out runs/text_shared/run --epochs 8 --batch-size 64 \
#       --optimizer adamw --lr 0.003 --weight-decay 0.01 --label-smoothing 0.05 --ema-decay 0 --no-bf16 \
#       --threads 2 --train-split train --val-split validation
#   emodetect export runs/text_shared/run/best.pt --out emodetect/assets/text_shared.onnx --name shared
