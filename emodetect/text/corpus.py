"""The text corpus readers: text-emotion CSVs (GoEmotions, dair-ai emotion, MELD, ISEAR, or your own).

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from emodetect.config import normalise_split
from emodetect.errors import DataError
from emodetect.labels import GOEMOTIONS_EKMAN
from emodetect.text.encoding import decode_text

log = logging.getLogger(__name__)


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
