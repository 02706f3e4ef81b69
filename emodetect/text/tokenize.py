"""A small, fully specified word tokenizer and vocabulary; no torch, no downloads.

Why our own: the vocabulary is built from the training split and saved as JSON inside the ONNX
metadata (`extras`), so inference needs only this module, numpy and onnxruntime, and the exact
same rules run at training and at inference.

Rules: NFKC-normalise and lower-case; a token is a run of letters (any script, with inner
apostrophes, e.g. "didn't"), a run of digits (mapped to one `<num>` token), a masked name such as
`[name]`, or any single other non-space character (punctuation, emoji). Unknown tokens become
`<unk>`; id 0 is padding.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from emodetect.errors import ModelError

import numpy as np

PAD, UNK, NUM = "<pad>", "<unk>", "<num>"
TOKENIZER_VERSION = "words-v1"

_TOKEN = re.compile(r"\[[a-z]+\]|[^\W\d_]+(?:['’][^\W\d_]+)*|\d+|[^\w\s]", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Split one text into tokens by the rules in the module docstring."""
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    return [NUM if t.isdigit() else t for t in _TOKEN.findall(text)]


@dataclass
class Encoded:
    """Token ids (N x max_tokens int64, 0-padded) and which texts were cut to fit."""

    ids: np.ndarray
    lengths: np.ndarray  # tokens per text before truncation
    truncated: np.ndarray  # bool, N


def pack_rows(rows: Sequence[Sequence[int]], max_tokens: int, trim: bool = False,
              frame: tuple[int, int] | None = None) -> Encoded:
    """Id lists as one 0-padded batch `max_tokens` wide (with `trim`, as wide as the longest row);
    a longer row keeps its first ids. With `frame` (BERT's [CLS] and [SEP] ids) each row is
    start + ids + end, and a row cut to fit keeps its end. Lengths count the frame."""
    framing = 2 if frame else 0
    lengths = np.array([len(r) + framing for r in rows], dtype=np.int64)
    width = min(max_tokens, int(lengths.max(initial=0))) if trim else max_tokens
    width = max(width, framing, 1)  # a row always has room for its frame
    ids = np.zeros((len(rows), width), dtype=np.int64)
    for row, tokens in enumerate(rows):
        kept = list(tokens[:width - framing])
        ids[row, :len(kept) + framing] = [frame[0], *kept, frame[1]] if frame else kept
    return Encoded(ids, lengths, lengths > max_tokens)


class Vocabulary:
    """Token <-> id map built from training texts; saved as a plain dict."""

    reserved = 0  # ids a row carries beside the text's own (WordPiece rows carry [CLS] and [SEP])

    def __init__(self, tokens: Sequence[str]):
        if list(tokens[:2]) != [PAD, UNK]:
            raise ModelError("a vocabulary starts with <pad>, <unk>")
        self.tokens = list(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 2, max_size: int = 50_000,
              pretrained: Sequence[str] = (), extra: int = 0) -> "Vocabulary":
        """The tokens seen at least `min_count` times (once is enough for a word in `pretrained`),
        most frequent first (ties alphabetical); then up to `extra` more words of `pretrained`, in
        its order, that training never saw: their vectors give them a meaning all the same."""
        counts = Counter(t for text in texts for t in tokenize(text))
        known = set(pretrained)
        ranked = sorted((t for t, c in counts.items()
                         if (c >= min_count or t in known) and t not in (PAD, UNK)),
                        key=lambda t: (-counts[t], t))[:max_size - 2]
        seen = set(ranked)
        unseen = [w for w in pretrained if w not in seen and w not in (PAD, UNK)]
        ranked += unseen[:max(0, min(extra, max_size - 2 - len(ranked)))]
        return cls([PAD, UNK] + ranked)

    def encode(self, texts: Sequence[str], max_tokens: int, trim: bool = False) -> Encoded:
        """Ids for a batch of texts; longer texts keep their first `max_tokens` tokens. With
        `trim`, the batch is only as wide as its longest text (at least 1, at most max_tokens)."""
        return self.pack(self.token_ids(texts), max_tokens, trim)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's token ids, whole (unknown tokens as <unk>)."""
        unk = self.index[UNK]
        return [[self.index.get(t, unk) for t in tokenize(text)] for text in texts]

    def split(self, text: str) -> list[str]:
        """The tokens of one text, as strings (what an explanation shows)."""
        return tokenize(text)

    @staticmethod
    def pack(rows: Sequence[Sequence[int]], max_tokens: int, trim: bool = False) -> Encoded:
        """Token id lists as one padded batch (see encode)."""
        return pack_rows(rows, max_tokens, trim)

    def to_dict(self) -> dict[str, Any]:
        return {"tokenizer": TOKENIZER_VERSION, "tokens": self.tokens}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Vocabulary":
        if data.get("tokenizer") != TOKENIZER_VERSION:
            raise ModelError(f"vocabulary made by tokenizer {data.get('tokenizer')!r}, "
                             f"this emodetect reads {TOKENIZER_VERSION!r}")
        return cls(data["tokens"])
