"""Self-made text data for the text tests: each label has its own keywords amid shared filler."""

from __future__ import annotations

import csv
import random
from pathlib import Path

KEYWORDS = {
    "anger": ["furious", "outraged", "livid", "annoyed"],
    "fear": ["scared", "terrified", "afraid", "nervous"],
    "joy": ["delighted", "thrilled", "glad", "cheerful"],
}
FILLER = ("the a today was it and my day at work with friend we went home this that very so "
          "then later morning evening again really just").split()


def toy_text(rng: random.Random, labels: list[str]) -> str:
    words = [rng.choice(FILLER) for _ in range(rng.randint(4, 10))]
    for label in labels:
        words.insert(rng.randrange(len(words) + 1), rng.choice(KEYWORDS[label]))
    return " ".join(words)


def write_toy_csv(path: Path, multilabel: bool = False, sizes: dict[str, int] | None = None,
                  seed: int = 0) -> Path:
    """A CSV like the shared datasets: text,label,split or text,labels,split (;-joined)."""
    rng = random.Random(seed)
    names = sorted(KEYWORDS)
    sizes = sizes or {"train": 480, "validation": 120, "test": 120}
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "labels" if multilabel else "label", "split"])
        for split, n in sizes.items():
            for _ in range(n):
                labels = rng.sample(names, rng.choice([1, 1, 2])) if multilabel else [rng.choice(names)]
                writer.writerow([toy_text(rng, labels), ";".join(sorted(labels)), split])
    return path


def train_toy_model(tmp: Path, multilabel: bool = False, name: str = "toy") -> Path:
    """Train kim_cnn_tiny on the toy data for a few epochs (seconds) and export it to ONNX."""
    from emodetect.export import export_checkpoint
    from emodetect.train import TrainConfig, train

    data = write_toy_csv(tmp / f"{name}.csv", multilabel=multilabel)
    cfg = TrainConfig(data=str(data), out=str(tmp / f"{name}_run"), modality="text", model="kim_cnn_tiny",
                      epochs=6 if multilabel else 4, batch_size=32, optimizer="adamw", lr=0.01,
                      weight_decay=0.0, label_smoothing=0.0, ema_decay=0.0, bf16=False, threads=1)
    result = train(cfg)
    return export_checkpoint(result.best_checkpoint, tmp / f"{name}.onnx",
                             extra_metadata={"name": name}).path
