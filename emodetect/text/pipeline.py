"""`TextEmotion`: emotion in texts with a bundled (or any exported) text model; no torch.

The ONNX file carries everything inference needs in its metadata: labels, the vocabulary and
sequence length, per-label thresholds (multi-label models), label groups (GoEmotions -> the
face model's 7 emotions) and extra heads (the joint model: the shared labels first, then
GoEmotions' 28, ISEAR's 7 and dair's 6), so predictions here match training exactly.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from emodetect.errors import ModelError, ModelNotFoundError
from emodetect.heads import label_set_title, segments
from emodetect.results import ResultReaders, import_pandas, rounded
from emodetect.runtime import ENSEMBLE_SUFFIX as SUFFIX

from emodetect.text.wordpiece import read_vocabulary

LONG_TEXT_TOKENS = 512  # tokens a free-length model reads of one text (the rest is cut and flagged)


@dataclass
class TextResult(ResultReaders):
    """What a model read in one text. `label` is None (and `error` says why) for an empty text."""

    text: str
    label: str | None  # most probable label
    labels: list[str]  # labels at or above their thresholds (multi-label), else [label]
    probabilities: dict[str, float]
    model: str
    tokens: int = 0  # tokens in the text; only the first `max_tokens` are read
    truncated: bool = False
    group: str | None = None  # the group of `label` (GoEmotions: one of the face model's 7)
    group_probabilities: dict[str, float] | None = None  # highest member probability per group
    error: str | None = None
    # With explain=True: each token read and how much `label`'s probability falls without it.
    explanation: list[dict[str, Any]] | None = None
    # A multi-head model's other answers: head name -> HeadResult (GoEmotions' 28 labels, ...).
    heads: dict[str, "HeadResult"] | None = None

    @property
    def confidence(self) -> float:
        """The probability of `label` (0 for an empty text)."""
        return float(self.probabilities[self.label]) if self.label else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["probabilities"] = rounded(self.probabilities)
        if self.group_probabilities is not None:
            out["group_probabilities"] = rounded(self.group_probabilities)
        if self.heads is not None:
            out["heads"] = {name: {**asdict(h), "probabilities": rounded(h.probabilities)} for name, h in self.heads.items()}
        return out

    def to_rows(self) -> list[dict[str, Any]]:
        return TextResults([self]).to_rows()


@dataclass
class HeadResult:
    """One extra head's answer for a text, in that head's own labels (a corpus's label set)."""

    label: str | None
    labels: list[str]  # at or above their thresholds (multi-label heads), else [label]
    probabilities: dict[str, float]
    title: str = ""  # what a user calls the label set ("6 basic"; heads.label_set_title), not the corpus


class TextResults(list):
    """A list of TextResult that also reads as a table and summarises label shares."""

    def to_rows(self, prefix: str = "p_") -> list[dict[str, Any]]:
        """One flat dict per text: label, ;-joined labels, one probability column per label."""
        rows = []
        for r in self:
            row: dict[str, Any] = {"text": r.text, "label": r.label or "", "labels": ";".join(r.labels)}
            if r.group_probabilities is not None:  # the model has groups: every row has the column
                row["group"] = r.group or ""
            row.update({f"{prefix}{k}": (round(v, 4) if r.error is None else "")
                        for k, v in r.probabilities.items()})
            for name, h in (r.heads or {}).items():
                row[f"{name}_label"] = h.label or ""
                row[f"{name}_labels"] = ";".join(h.labels)
                row.update({f"{prefix}{name}:{k}": (round(v, 4) if r.error is None else "")
                            for k, v in h.probabilities.items()})
            row["truncated"] = r.truncated
            row["error"] = r.error or ""
            rows.append(row)
        return rows

    def to_df(self):
        """The rows as a pandas DataFrame (the pandas extra: imported only here)."""
        return import_pandas().DataFrame(self.to_rows())

    def to_table(self, width: int = 40, label_sets: bool = False) -> str:
        """A plain-text table: text, top label and its probability, the labels above threshold;
        with `label_sets`, a multi-head model's other label sets after them, by what they are
        ("28 fine-grained: gratitude"), never by corpus ("goemotions=gratitude" meant nothing to a
        user; issue 32)."""
        lines = [f"{'text':{width}}  {'label':14} {'prob':>5}  labels"]
        for r in self:
            text = r.text.replace("\n", " ")
            text = text if len(text) <= width else text[:width - 1] + "…"
            prob = f"{r.probabilities[r.label]:.2f}" if r.label else "-"
            extra = "".join(f"  {h.title or name}: {';'.join(h.labels)}" for name, h in (r.heads or {}).items()
                            if h.labels) if label_sets else ""
            lines.append(f"{text:{width}}  {r.label or '(' + (r.error or '') + ')':14} {prob:>5}  "
                         f"{';'.join(r.labels)}{extra}")
        return "\n".join(lines)

    def shares(self, groups: bool = False, head: str | None = None) -> dict[str, float]:
        """Share of texts (empty ones left out) whose top label (or group, or top label in one
        head of a multi-head model) is each label."""
        valid = [r for r in self if r.error is None]
        if head is not None:
            names = list(valid[0].heads[head].probabilities) if valid else []
        else:
            names = (list(valid[0].group_probabilities or {}) if groups and valid
                     else list(valid[0].probabilities) if valid else [])
        counts = dict.fromkeys(names, 0)
        for r in valid:
            counts[r.heads[head].label if head is not None else r.group if groups else r.label] += 1
        return {k: v / max(len(valid), 1) for k, v in counts.items()}

    def plot_shares(self, path: str | Path, title: str = "", groups: bool = False) -> Path:
        """A horizontal bar chart of label shares, as a PNG."""
        return plot_shares(self.shares(groups), path, title or f"{sum(r.error is None for r in self)} texts")


class LabelCounts:
    """What a summary of many texts needs, counted as results stream by: texts, labelled texts and
    the top label's counts (main head, groups, each extra head). `shares` reads as TextResults'."""

    def __init__(self) -> None:
        self.total = self.valid = 0
        self.counts: dict[str | None, dict[str, int]] = {}

    def add(self, results: TextResults) -> None:
        self.total += len(results)
        valid = [r for r in results if r.error is None]
        self.valid += len(valid)
        for r in valid:
            keys = [(None, r.probabilities, r.label)]
            if r.group_probabilities is not None:
                keys.append(("<groups>", r.group_probabilities, r.group))
            keys += [(name, h.probabilities, h.label) for name, h in (r.heads or {}).items()]
            for key, names, label in keys:
                counts = self.counts.setdefault(key, dict.fromkeys(names, 0))
                counts[label] += 1

    def shares(self, groups: bool = False, head: str | None = None) -> dict[str, float]:
        counts = self.counts.get(head if head is not None else "<groups>" if groups else None, {})
        return {k: v / max(self.valid, 1) for k, v in counts.items()}


def plot_shares(shares: dict[str, float], path: str | Path, title: str) -> Path:
    """A horizontal bar chart of label shares, as a PNG."""
    # A Figure of its own, not pyplot: no backend switch, no global figure state (a notebook
    # user keeps their backend).
    from matplotlib.figure import Figure

    from emodetect.vision.draw import plot_colour

    ordered = sorted(shares.items(), key=lambda kv: kv[1])
    fig = Figure(figsize=(7, 0.28 * len(ordered) + 1.2))
    ax = fig.subplots()
    ax.barh([k for k, _ in ordered], [v * 100 for _, v in ordered], color=[plot_colour(k) for k, _ in ordered])
    for i, (_, v) in enumerate(ordered):
        ax.text(v * 100, i, f" {v:.1%}", va="center", fontsize=8)
    ax.set_xlabel("share of texts (%), by top label")
    ax.set_title(title)
    ax.margins(x=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return Path(path)


class TextEmotion:
    """Emotion classifier for texts.

    >>> TextEmotion().predict(["I can't believe you did this for me, thank you!"])[0].labels
    """

    def __new__(cls, model: str | Path | None = None, threads: int = 0):
        # An ensemble file (or a bundled ensemble's name) opens as a TextEnsemble, so every
        # program that reads texts through TextEmotion can use one.
        if cls is TextEmotion and model is not None:
            from emodetect.runtime import resolve_model

            if resolve_model(model, "text").kind == "ensemble":
                return super().__new__(TextEnsemble)
        return super().__new__(cls)

    def __init__(self, model: str | Path | None = None, threads: int = 0):
        from emodetect.runtime import load_model

        self.model = load_model(model, modality="text", threads=threads)
        if self.model.metadata.get("modality", "text") != "text":
            raise ModelError(f"{self.model.path} is a {self.model.metadata['modality']} model, not a text model")
        extras = self.model.extras()
        if "vocab" not in extras:
            raise ModelError(f"{self.model.path}: no vocabulary in its metadata; not an emodetect text model")
        self.name: str = self.model.metadata.get("name", self.model.path.stem)
        self.model_name: str = self.name  # the shape every engine answers in (FaceEmotion, VoiceEmotion)
        self.model_file: str = self.model.path.name
        self.labels: tuple[str, ...] = self.model.labels
        self.multilabel: bool = self.model.multilabel
        try:  # the vocabulary and the token count come from the file: a bad one is a ModelError naming it
            self.vocab = read_vocabulary(extras["vocab"])
            self.trained_tokens: int = int(extras["max_tokens"])
        except (KeyError, TypeError, ValueError) as err:  # the readers' ModelError, int() of a bad count
            raise ModelError(f"{self.model.path}: its vocabulary or max_tokens metadata cannot be read "
                             f"({type(err).__name__}: {err})") from err
        # A model exported with a free token axis reads each batch only as wide as its longest
        # text (the same probabilities, faster for short texts) and reads long texts whole, up to
        # LONG_TEXT_TOKENS: a max-over-time CNN finds its features anywhere in a text, and on the
        # validation texts longer than the training length reading them whole was right more
        # often than cutting them (bench/text_long.py). A fixed-length model reads what it was
        # trained on.
        self.trim: bool = not isinstance(self.model.session.get_inputs()[0].shape[1], int)
        self.max_tokens: int = max(LONG_TEXT_TOKENS, self.trained_tokens) if self.trim else self.trained_tokens
        self.max_tokens = min(self.max_tokens, int(extras.get("max_positions", self.max_tokens)))
        self.thresholds = np.asarray(extras.get("thresholds", [0.5] * len(self.labels)), dtype=np.float32)
        self.groups: dict[str, list[str]] | None = extras.get("groups")
        # Extra heads (emodetect.heads): where each sits in the second output, and its thresholds.
        self.head_specs: list[dict[str, Any]] = extras.get("heads", [])
        self.head_segments = segments(self.labels, self.multilabel, self.head_specs)[1:]
        self.head_thresholds = [np.asarray(spec.get("thresholds", [0.5] * len(seg.labels)), dtype=np.float32)
                                if seg.multilabel else None for seg, spec in zip(self.head_segments, self.head_specs)]

    @property
    def heads(self) -> list[str]:
        """The names of the extra heads (empty for a one-head model)."""
        return [s.name for s in self.head_segments]

    def predict(self, texts: str | Iterable[str], batch_size: int = 256,
                progress: bool = False, explain: bool = False) -> TextResults:
        """One TextResult per text, in order; empty or whitespace-only texts get an `error`.
        `explain` adds each result's `explanation`: which words pushed the label."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"text {i} is {type(t).__name__}, not str")
        results: list[TextResult | None] = [None] * len(texts)
        for idx, encoded, outputs in self._batches(texts, batch_size, progress):
            for row, i in enumerate(idx):
                results[i] = self._result(texts[i], outputs[0][row], int(encoded.lengths[row]),
                                          bool(encoded.truncated[row]))
                if self.head_segments:
                    results[i].heads = self._heads(outputs[1][row])
        for i, r in enumerate(results):
            if r is None:
                results[i] = TextResult(texts[i], None, [], dict.fromkeys(self.labels, 0.0), self.name,
                                        error="empty text",
                                        group_probabilities=dict.fromkeys(self.groups, 0.0) if self.groups else None,
                                        heads={s.name: HeadResult(None, [], dict.fromkeys(s.labels, 0.0),
                                                                  label_set_title(s.name, s.labels))
                                               for s in self.head_segments} or None)
        if explain:
            for r in results:
                if r.label is not None:
                    r.explanation = self.explain(r.text, r.label)
        return TextResults(results)

    def probabilities(self, texts: Sequence[str], batch_size: int = 256, progress: bool = False) -> np.ndarray:
        """N x (all labels) float32: the main head's probabilities, then each extra head's, in the
        model's logit order (emodetect.heads); a row of zeros for an empty text. What a student
        model fits when this one teaches it (`emodetect train --teacher`)."""
        out = self.outputs(texts, batch_size, progress)
        if not out:  # no text to read
            return np.zeros((len(texts), len(self.labels) + sum(len(s.labels) for s in self.head_segments)), np.float32)
        return np.concatenate(out, 1)

    def outputs(self, texts: Sequence[str], batch_size: int = 256, progress: bool = False) -> list[np.ndarray]:
        """The model's outputs (main probabilities, and the other heads' for a multi-head model),
        one row per text in order, zeros for an empty text; [] when every text is empty."""
        out: list[np.ndarray] = []
        for idx, _, outputs in self._batches(list(texts), batch_size, progress):
            outputs = outputs[:2] if self.head_segments else outputs[:1]
            out = out or [np.zeros((len(texts),) + o.shape[1:], dtype=o.dtype) for o in outputs]
            for whole, part in zip(out, outputs):
                whole[idx] = part
        return out

    def _batches(self, texts: list[str], batch_size: int, progress: bool):
        """(row indices, packed tokens, model outputs) per batch of the non-empty texts: with a
        free token axis, batches of similar lengths (less padding); callers put results back in order."""
        todo = [i for i, t in enumerate(texts) if t.strip()]
        token_ids = dict(zip(todo, self.vocab.token_ids([texts[i] for i in todo])))
        if self.trim:
            todo.sort(key=lambda i: len(token_ids[i]))
        starts = range(0, len(todo), batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="texts", unit="batch", disable=len(todo) <= batch_size)
        for start in starts:
            idx = todo[start:start + batch_size]
            encoded = self.vocab.pack([token_ids[i] for i in idx], self.max_tokens, self.trim)
            yield idx, encoded, self.model.predict_all(encoded.ids)

    def explain_cost(self, texts: Iterable[str]) -> int:
        """Model rows that explaining `texts` takes: the tokens each explanation reads, summed (one
        row per token left out). What a service budgets before it starts."""
        limit = self.max_tokens - self.vocab.reserved
        return sum(min(len(ids), limit) for ids in self.vocab.token_ids([t for t in texts if t.strip()]))

    def explain(self, text: str, label: str | None = None) -> list[dict[str, Any]]:
        """Token occlusion: for each token read, how much the probability of `label` (default: the
        text's own) falls when that token is left out; positive weights pushed towards the label.
        One onnxruntime call of (tokens + 1) rows."""
        content = self.vocab.token_ids([text])[0][:self.max_tokens - self.vocab.reserved]
        if not content:
            return []
        tokens = self.vocab.split(text)[:len(content)]
        rows = [content] + [content[:i] + content[i + 1:] for i in range(len(content))]
        rows = self.vocab.pack(rows, self.max_tokens, self.trim).ids
        probs = self.model.predict(rows)
        target = self.labels.index(label) if label else int(probs[0].argmax())
        drops = probs[0, target] - probs[1:, target]
        return [{"token": t, "weight": round(float(d), 4)} for t, d in zip(tokens, drops)]

    def _heads(self, probs: np.ndarray) -> dict[str, HeadResult]:
        """Each extra head's answer from its slice of the second output."""
        main = len(self.labels)
        out = {}
        for seg, thresholds in zip(self.head_segments, self.head_thresholds):
            p = probs[seg.start - main:seg.stop - main]
            _, labels = _top_labels(p, seg.labels, thresholds)
            out[seg.name] = HeadResult(labels[0], labels, {n: float(v) for n, v in zip(seg.labels, p)},
                                       label_set_title(seg.name, seg.labels))
        return out

    def _result(self, text: str, probs: np.ndarray, tokens: int, truncated: bool) -> TextResult:
        top, labels = _top_labels(probs, self.labels, self.thresholds if self.multilabel else None)
        probabilities = {name: float(p) for name, p in zip(self.labels, probs)}
        group = group_probs = None
        if self.groups:
            group_probs = {g: max(probabilities[m] for m in members) for g, members in self.groups.items()}
            group = next(g for g, members in self.groups.items() if self.labels[top] in members)
        return TextResult(text, self.labels[top], labels, probabilities, self.name, tokens, truncated,
                          group, group_probs)


def _top_labels(probs: np.ndarray, names: Sequence[str], thresholds: np.ndarray | None) -> tuple[int, list[str]]:
    """The top label's index and the labels given: with thresholds (multi-label), those at or
    above theirs, most probable first, and the top label is the first of them (the raw argmax may
    sit under its own threshold), else the argmax alone."""
    top = int(probs.argmax())
    if thresholds is None:
        return top, [names[top]]
    chosen = np.flatnonzero(probs >= thresholds)
    chosen = chosen[np.argsort(-probs[chosen])] if len(chosen) else np.array([top])
    return int(chosen[0]), [names[j] for j in chosen]


def read_texts(path: str | Path, column: str = "text") -> tuple[list[str], list[dict[str, str]], list[str]]:
    """Texts from a CSV column (header, rows kept for writing back) or a .txt file, one per line.

    Errors name the file: a non-UTF-8 byte (with its line), a missing column (with the columns).
    """
    from emodetect.text.corpus import read_csv_rows, read_csv_text

    path = Path(path)
    if path.suffix.lower() == ".txt":
        lines = read_csv_text(path).splitlines()
        return ["text"], _LineRows(lines), lines
    header, rows = read_csv_rows(path, (column,))
    return header, rows, [row.get(column) or "" for row in rows]


class _LineRows(Sequence):
    """A .txt file's rows, {"text": line}, made when asked for: a million held dicts cost ~180 MB,
    and `emodetect text --file` writes them a chunk at a time."""

    def __init__(self, lines: list[str]):
        self.lines = lines

    def __len__(self) -> int:
        return len(self.lines)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [{"text": line} for line in self.lines[i]]
        return {"text": self.lines[i]}


def write_results_csv(path: str | Path, header: list[str], rows: list[dict[str, str]],
                      results: TextResults) -> Path:
    """The input rows with label, labels, group (if any) and one p_<label> column per label added.

    An input column with the name of an added one (a `label` column of the user's, say) is kept
    as it is, and the added column is called `predicted_<name>`.
    """
    with open(path, "w", encoding="utf-8", newline="") as handle:
        ResultsCsv(handle, header).write(rows, results)
    return Path(path)


class ResultsCsv:
    """`write_results_csv` a chunk at a time: the columns are fixed by the first chunk written.
    `rows` gives a chunk's rows without writing them (`emodetect text --csv` hands them to the
    command line's one writer)."""

    def __init__(self, handle: Any, header: list[str]):
        self.handle, self.header = handle, header
        self.writer: Any = None
        self.columns: dict[str, str] | None = None  # added column -> its name in the file

    def rows(self, rows: list[dict[str, str]], results: TextResults) -> list[dict[str, Any]]:
        """The input rows with the results' columns added."""
        added = results.to_rows()
        if self.columns is None:
            self.columns = {c: (c if c not in self.header else f"predicted_{c}")
                            for c in (added[0] if added else {}) if c != "text"}
        return [{**row, **{name: new[c] for c, name in self.columns.items()}} for row, new in zip(rows, added)]

    def write(self, rows: list[dict[str, str]], results: TextResults) -> None:
        import csv

        merged = self.rows(rows, results)
        if self.writer is None:
            self.writer = csv.DictWriter(self.handle, fieldnames=self.header + list(self.columns.values()),
                                         extrasaction="ignore")
            self.writer.writeheader()
        self.writer.writerows(merged)


# --- Ensembles (emodetect.text.ensemble writes them): several text models' probabilities averaged.

def ensemble_path(model: str | Path) -> Path:
    """The ensemble file of a bundled name or a path."""
    from emodetect.runtime import resolve_model

    return resolve_model(model, "text").path


def read_spec(path: Path) -> dict[str, Any]:
    """An ensemble file's contents; errors name the file and what is wrong."""
    try:
        spec = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelNotFoundError(f"{path}: no such ensemble file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"{path}: not an ensemble file ({err})") from None
    members = spec.get("members") if isinstance(spec, dict) else None
    if not members or not all(isinstance(m, dict) and "model" in m for m in members):
        raise ModelError(f"{path}: an ensemble file lists its members as [{{\"model\": NAME, \"weight\": W}}, ...]")
    return spec


def member_path(model: str, spec_path: Path) -> str:
    """A member file is written relative to the ensemble file; a bundled name stays a name."""
    beside = spec_path.parent / model
    return str(beside) if beside.is_file() else model


def layout(reader: Any) -> list[tuple[str, tuple[str, ...], bool]]:
    """A text model's heads as (name, labels, multi-label), main head first."""
    return [(s.name, s.labels, s.multilabel) for s in segments(reader.labels, reader.multilabel, reader.head_specs)]


def check_members(readers: Sequence[Any], names: Sequence[str]) -> None:
    """Members must answer in the same labels and heads, in the same order."""
    first = layout(readers[0])
    for reader, name in zip(readers[1:], names[1:]):
        if layout(reader) != first:
            raise ModelError(f"ensemble members {names[0]} and {name} answer in different labels or heads: "
                             f"{[h[0] or 'main' for h in first]} against {[h[0] or 'main' for h in layout(reader)]}")


class TextEnsemble(TextEmotion):
    """TextEmotion over an ensemble file: each member reads every text and the answers are the
    members' probabilities averaged with their weights. `explain` occludes the first member's
    tokens (list the word model first: its tokens are words, and it is the fast one)."""

    def __init__(self, model: str | Path, threads: int = 0):
        self.path = ensemble_path(model)
        spec = read_spec(self.path)
        names = [member_path(str(m["model"]), self.path) for m in spec["members"]]
        self.members = [TextEmotion(name, threads=threads) for name in names]
        check_members(self.members, names)
        first = self.members[0]
        self.weights = self._weights(spec, None, None)
        # Each output's columns weighted per member (a head may have weights of its own).
        self.column_weights = [np.repeat(self._weights(spec, "main", self.weights)[:, None], len(first.labels), 1)]
        if first.head_segments:
            self.column_weights.append(np.concatenate(
                [np.repeat(self._weights(spec, seg.name, self.weights)[:, None], len(seg.labels), 1)
                 for seg in first.head_segments], 1))
        unknown = {h for m in spec["members"] for h in m.get("heads", {})} - {"main", *first.heads}
        if unknown:
            raise ModelError(f"{self.path}: weights for heads {sorted(unknown)} that the members lack "
                             f"(their heads: main, {', '.join(first.heads) or '(none)'})")
        self.name = self.model_name = spec.get("name", self.path.name[:-len(SUFFIX)])
        self.model_file = self.path.name
        self.model, self.vocab = first.model, first.vocab
        self.labels, self.multilabel, self.groups = first.labels, first.multilabel, first.groups
        self.trained_tokens, self.trim, self.max_tokens = first.trained_tokens, first.trim, first.max_tokens
        self.head_specs, self.head_segments = first.head_specs, first.head_segments
        tuned = spec.get("thresholds", {})
        self.thresholds = np.asarray(tuned.get("main", first.thresholds), dtype=np.float32)
        self.head_thresholds = [np.asarray(tuned.get(seg.name, own), dtype=np.float32) if seg.multilabel else None
                                for seg, own in zip(self.head_segments, first.head_thresholds)]

    def _weights(self, spec: dict[str, Any], head: str | None, default: np.ndarray | None) -> np.ndarray:
        """The members' weights, normalised: their own (head None) or a head's, else `default`."""
        members = spec["members"]
        if head is not None and not any(head in m.get("heads", {}) for m in members):
            return default
        if head is not None and not all(head in m.get("heads", {}) for m in members):
            raise ModelError(f"{self.path}: head {head!r} has weights for some members only; give every member one")
        weights = np.array([float(m["heads"][head] if head is not None else m.get("weight", 1.0)) for m in members])
        if (weights < 0).any() or weights.sum() <= 0:
            raise ModelError(f"{self.path}: member weights {weights.tolist()}"
                             f"{f' of head {head}' if head else ''}: none negative, not all zero")
        return weights / weights.sum()

    def extras(self) -> dict[str, Any]:
        """The first member's extras with the ensemble's own thresholds: what evaluate reads."""
        extras = dict(self.members[0].model.extras())
        if self.multilabel:
            extras["thresholds"] = self.thresholds.tolist()
        extras["heads"] = [dict(spec, thresholds=t.tolist()) if t is not None else spec
                           for spec, t in zip(self.head_specs, self.head_thresholds)]
        return extras

    def _batches(self, texts: list[str], batch_size: int, progress: bool):
        """The first member's batches, every other member reading the same texts, outputs mixed."""
        first, rest = self.members[0], self.members[1:]
        for idx, encoded, outputs in first._batches(texts, batch_size, progress):
            mixed = [w[0] * o for w, o in zip(self.column_weights, outputs)]
            batch = [texts[i] for i in idx]
            for m, member in enumerate(rest, 1):
                for k, o in enumerate(member.outputs(batch)):
                    mixed[k] = mixed[k] + self.column_weights[k][m] * o
            yield idx, encoded, mixed
