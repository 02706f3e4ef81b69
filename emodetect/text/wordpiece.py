"""BERT's uncased WordPiece tokenizer, for models fine-tuned from a pretrained encoder.

Why our own: as with the word vocabulary (emodetect.text.tokenize), the vocabulary travels inside
the ONNX file and inference needs only numpy and onnxruntime; the rules below are BERT's
(`BasicTokenizer` + `WordpieceTokenizer`), and a test checks them against Hugging Face's
`tokenizers` on the same vocab.txt.

Rules: drop control characters, map whitespace to spaces, put spaces around CJK ideographs;
lower-case and strip accents; split on whitespace and on every punctuation character; then split
each word greedily into the longest pieces in the vocabulary ("##" marks a piece inside a word); a
word with no such split, or longer than 100 characters, is [UNK]. A batch row is
[CLS] pieces [SEP], 0-padded; a text cut to fit keeps its [SEP]. A text that spells a special
token ("[SEP]") is read as those characters, never as the control token.

MPNet's tokenizer (MPNetTokenizer, all-mpnet-base-v2) is the same rules with <s> </s> <pad> for
[CLS] [SEP] [PAD]: `MPNetVocabulary`, its own tokenizer version in a model's extras.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any, Sequence

from emodetect.errors import ModelError
from emodetect.text.tokenize import Encoded, Vocabulary, pack_rows

TOKENIZER_VERSION = "wordpiece-v1"
MPNET_TOKENIZER_VERSION = "mpnet-wordpiece-v1"
MAX_WORD_CHARS = 100


def _is_punctuation(char: str) -> bool:
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def basic_words(text: str) -> list[str]:
    """BERT's basic (pre-WordPiece) split of one text: lower-cased, accents stripped."""
    chars = []
    for char in text:
        cp = ord(char)
        if cp == 0 or cp == 0xFFFD:
            continue
        if char in " \t\n\r" or unicodedata.category(char) == "Zs":
            chars.append(" ")
        elif unicodedata.category(char).startswith("C"):
            continue
        elif _is_cjk(cp):
            chars.extend((" ", char, " "))
        else:
            chars.append(char)
    words = []
    for word in "".join(chars).split():
        word = "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")
        current = ""
        for char in word:
            if _is_punctuation(char):
                if current:
                    words.append(current)
                words.append(char)
                current = ""
            else:
                current += char
        if current:
            words.append(current)
    return words


class WordPieceVocabulary:
    """A BERT vocab.txt: piece <-> id, with [PAD] = 0 (the padding id every text model uses)."""

    reserved = 2  # [CLS] and [SEP] in every row
    specials = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")  # padding, unknown, row start, row end
    version = TOKENIZER_VERSION

    def __init__(self, tokens: Sequence[str]):
        self.tokens = list(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}
        for special in self.specials:
            if special not in self.index:
                raise ModelError(f"a WordPiece vocabulary needs {special}")
        pad, unk, cls, sep = self.specials
        if self.index[pad] != 0:
            raise ModelError(f"a WordPiece vocabulary must have {pad} as id 0")
        self.unk, self.cls, self.sep = self.index[unk], self.index[cls], self.index[sep]
        self.framing = (self.cls, self.sep)
        self._cache: dict[str, list[int]] = {}

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def from_file(cls, path: str | Path) -> "WordPieceVocabulary":
        """A vocab.txt: one piece per line, the line number is its id."""
        return cls(Path(path).read_text(encoding="utf-8").splitlines())

    def _word_ids(self, word: str) -> list[int]:
        """Greedy longest-match-first pieces of one basic word."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        ids: list[int] = []
        start = 0
        if len(word) > MAX_WORD_CHARS:
            ids = [self.unk]
        while start < len(word) and ids != [self.unk]:
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.index:
                    ids.append(self.index[piece])
                    start = end
                    break
            else:
                ids = [self.unk]
        if len(self._cache) < 200_000:
            self._cache[word] = ids
        return ids

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's piece ids, whole, without [CLS] and [SEP] (pack adds them)."""
        return [[i for word in basic_words(text) for i in self._word_ids(word)] for text in texts]

    def split(self, text: str) -> list[str]:
        """The pieces of one text, as strings (what an explanation shows)."""
        return [self.tokens[i] for i in self.token_ids([text])[0]]

    def pack(self, rows: Sequence[Sequence[int]], max_tokens: int, trim: bool = False) -> Encoded:
        """Rows of piece ids as one batch of [CLS] pieces [SEP], 0-padded to `max_tokens` (with
        `trim`, to the longest row); a longer text keeps its first pieces and its [SEP]."""
        return pack_rows(rows, max_tokens, trim, self.framing)

    def encode(self, texts: Sequence[str], max_tokens: int, trim: bool = False) -> Encoded:
        return self.pack(self.token_ids(texts), max_tokens, trim)

    def to_dict(self) -> dict[str, Any]:
        return {"tokenizer": self.version, "tokens": self.tokens}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "WordPieceVocabulary":
        if data.get("tokenizer") != cls.version:
            raise ModelError(f"vocabulary made by tokenizer {data.get('tokenizer')!r}, not {cls.version!r}")
        return cls(data["tokens"])


class MPNetVocabulary(WordPieceVocabulary):
    """MPNet's vocabulary (MPNetTokenizer: BERT's uncased rules above, rows <s> pieces </s>).

    Its vocab.txt puts <s> at 0 and <pad> at 1; every text model here pads with 0, so the two ids
    trade places (`from_file`) and emodetect.text.mpnet trades the two embedding rows to match.
    The unknown piece is [UNK] (id 104, tokenizer.json's unk_token), not <unk>."""

    specials = ("<pad>", "[UNK]", "<s>", "</s>")
    version = MPNET_TOKENIZER_VERSION

    @classmethod
    def from_file(cls, path: str | Path) -> "MPNetVocabulary":
        tokens = Path(path).read_text(encoding="utf-8").splitlines()
        if tokens[:2] != ["<s>", "<pad>"]:
            raise ModelError(f"{path}: an MPNet vocab.txt starts with <s>, <pad>; this one with {tokens[:2]}")
        return cls([tokens[1], tokens[0], *tokens[2:]])


def read_vocabulary(data: dict[str, Any]) -> Vocabulary | WordPieceVocabulary:
    """The vocabulary saved in a text model's extras: words (emodetect.text.tokenize) or WordPiece
    pieces (this module, for models fine-tuned from a pretrained encoder). Here, above both
    tokenizers, so that neither imports the other's reader back."""
    if data.get("tokenizer") == TOKENIZER_VERSION:
        return WordPieceVocabulary.from_dict(data)
    if data.get("tokenizer") == MPNET_TOKENIZER_VERSION:
        return MPNetVocabulary.from_dict(data)
    return Vocabulary.from_dict(data)
