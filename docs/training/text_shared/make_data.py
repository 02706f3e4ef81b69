"""One CSV of the four text corpora in the shared labels (angry, disgust, fear, happy, sad,
surprise, neutral), each corpus keeping its own train/validation/test split, with a `corpus`
column for `evaluate --group-by corpus`. Rows whose label has no shared meaning (dair's love,
ISEAR's shame and guilt) and GoEmotions rows with several Ekman labels are left out.

    python docs/training/text_shared/make_data.py ../shared/data/text runs/text_shared/shared.csv
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from pathlib import Path

from emodetect.labels import SYNONYMS

SOURCES = {  # corpus: (file, label column)
    "goemotions": ("goemotions/goemotions.csv", "ekman_labels"),
    "dair": ("dair_emotion/emotion.csv", "label"),
    "meld": ("meld_text/meld_text.csv", "label"),
    "isear": ("isear/isear.csv", "label"),
}


def main(root: Path, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    counts: Counter = Counter()
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "split", "corpus"])
        for corpus, (name, column) in SOURCES.items():
            with open(root / name, newline="", encoding="utf-8") as source:
                for row in csv.DictReader(source):
                    names = [n for n in row[column].split(";") if n]
                    shared = {SYNONYMS.get(n.strip().lower()) for n in names}
                    if len(shared) != 1 or None in shared or not row["text"].strip():
                        counts[(corpus, "left out")] += 1
                        continue
                    writer.writerow([row["text"], shared.pop(), row["split"], corpus])
                    counts[(corpus, row["split"])] += 1
    for key, n in sorted(counts.items()):
        print(*key, n)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))

# The bundled `shared` model (emodetect/assets/text_shared.onnx) was trained from this CSV with
# (config.json and log.jsonl beside this file; 8 epochs of about 60 s on 2 AMD EPYC cores):
#   emodetect train --data shared.csv --model kim_cnn --out runs/text_shared/run --epochs 8 --batch-size 64 \
#       --optimizer adamw --lr 0.003 --weight-decay 0.01 --label-smoothing 0.05 --ema-decay 0 --no-bf16 \
#       --threads 2 --train-split train --val-split validation
#   emodetect export runs/text_shared/run/best.pt --out emodetect/assets/text_shared.onnx --name shared
