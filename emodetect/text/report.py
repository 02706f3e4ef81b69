"""A report on many texts (posts, reviews, survey answers): what people feel, how sure that is,
how it differs between groups, how it moves over time and whether a date (a campaign) changed it.

    >>> from emodetect.text.report import report_csv
    >>> summary = report_csv("reviews.csv", column="review", by="product", over="date", every="week",
    ...                      split_at="2026-03-01")
    >>> summary.save("out/")            # out/report.html (self-contained), PNGs for slides, summary.json
    >>> summary.to_df("trend")          # one row per group, period and label

Texts are scored a chunk at a time and only counts are kept (per group, period and label, plus the
few most typical texts of each label): memory does not grow with the number of texts, except for
8 bytes a text to spot duplicates. Every share comes with its 95% interval and the count behind it;
a change between periods or around the split date is marked only where a test says so after
Holm's correction for the many labels and periods tested (emodetect.stats).
"""

from __future__ import annotations

import csv
import heapq
import io
import json
import math
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from itertools import count
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator, Sequence

import numpy as np

from emodetect import stats
from emodetect.errors import DataError, InputError
from emodetect.results import ResultReaders
from emodetect.text.hygiene import EVERY, guess_language, parse_date, period_name, period_start, text_key

ALL = "all"  # the group of every text
NO_GROUP = "(none)"  # the group of a row whose group cell is empty
OTHER = "(other)"  # where groups past MAX_GROUPS are pooled
MAX_GROUPS = 50  # distinct groups kept apart: a free-text column must not make the counts grow per row
TYPICAL = 3  # most typical texts kept (and explained) per label
TYPICAL_CHARS = 600  # of each typical text kept for the report
EXAMPLES = 5  # rows named per hygiene problem
LEVEL = 0.05  # a change is marked where its Holm-adjusted p-value is under this
MIN_EXPECTED = 5  # a test with a smaller expected cell count is not run (the z-test's normal
# approximation is off there: 0 of 3 against 3 of 3 would read as p = 0.014)
CHUNK = 1024  # texts scored at once by report_csv: keeps the model's batches (256) full


@dataclass
class Hygiene:
    """What was read and what could not be used, with the first few places of each problem."""

    rows: int = 0
    scored: int = 0  # rows with a label: the shares' denominator
    empty: int = 0
    duplicates: int = 0  # rows whose text (case and spacing aside) came earlier; scored all the same
    not_english: dict[str, int] = field(default_factory=dict)  # guess -> rows left out of the shares
    truncated: int = 0  # longer than the model reads: only the start was scored
    no_group: int = 0
    pooled_groups: int = 0  # rows of groups past MAX_GROUPS, counted as (other)
    no_date: int = 0
    bad_date: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)

    def note(self, kind: str, where: str) -> None:
        shown = self.examples.setdefault(kind, [])
        if len(shown) < EXAMPLES:
            shown.append(where)


@dataclass
class TextReport(ResultReaders):
    """The summary of a report: plain lists of dicts (JSON as it is), tables through `to_rows(table)`
    and `to_df(table)` (table: shares, trend, changes, split, typical), the page through `save`."""

    source: str
    model: dict[str, Any]  # name, card (the command that prints it), training_data, test_figures, limits
    labels: list[str]
    by: str | None
    over: str | None
    every: str | None
    split_at: str | None
    hygiene: Hygiene
    shares: list[dict[str, Any]]  # group, label, count, n, share, low, high
    trend: list[dict[str, Any]]  # group, period, label, count, n, share, low, high, change, p_holm
    changes: list[dict[str, Any]]  # the supported changes between consecutive periods
    split: list[dict[str, Any]]  # per group: n_before, n_after, chi2, df, p, labels: [...]
    typical: dict[str, list[dict[str, Any]]]  # label -> [{text, probability, where, group, explanation}]
    notes: list[str] = field(default_factory=list)  # what the tests assume, said once

    TABLES: ClassVar[tuple[str, ...]] = ("shares", "trend", "changes", "split", "typical")
    ALL: ClassVar[str] = ALL  # the group of every text

    def summary_json(self) -> str:
        """summary.json: the report without the model card's full text (it is in the HTML)."""
        out = self.to_dict()
        out["model"] = {k: v for k, v in out["model"].items() if k != "card_text"}
        return json.dumps(out, indent=1, ensure_ascii=False, default=_plain)

    @property
    def groups(self) -> list[str]:
        """The groups, largest first (ALL first)."""
        return list(dict.fromkeys(r["group"] for r in self.shares))

    def share(self, label: str, group: str = ALL) -> dict[str, Any]:
        """The shares row of one label in one group."""
        return next(r for r in self.shares if r["group"] == group and r["label"] == label)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_rows(self, table: str = "shares") -> list[dict[str, Any]]:
        """One table as flat rows: shares, trend, changes, split (one row per group and label) or
        typical (one row per text)."""
        if table not in self.TABLES:
            raise InputError(f"table={table!r}: one of {', '.join(self.TABLES)}")
        if table == "split":
            return [{"group": g["group"], **{k: v for k, v in lab.items()}, "chi2_p": g["p"]}
                    for g in self.split for lab in g["labels"]]
        if table == "typical":
            return [{"label": label, **{k: v for k, v in t.items() if k != "explanation"}}
                    for label, texts in self.typical.items() for t in texts]
        return [dict(r) for r in getattr(self, table)]

    def save(self, folder: str | Path) -> Path:
        """Write FOLDER/report.html (self-contained: styles inline, charts as data: URIs, no outside
        URL), the charts as PNGs beside it for slides, and summary.json. Returns the HTML's path."""
        from emodetect.text.report_html import write_report

        return write_report(self, Path(folder))


class ReportBuilder:
    """Counts as texts are scored; `finish` turns the counts into a TextReport.

    `predict` scores one chunk (TextEmotion.predict's results, with texts that look non-English left
    unscored and their `error` saying so); `predict_rows` reads the text, group and date from CSV
    rows. Holds counts per (group, period) and per (group, before/after), never the texts."""

    def __init__(self, reader: Any, by: str | None = None, over: str | None = None, every: str = "week",
                 split_at: str | datetime | None = None, dayfirst: bool | None = None,
                 source: str = "", typical: int = TYPICAL, check_language: bool = True):
        if every not in EVERY:
            raise InputError(f"every={every!r}: one of {', '.join(EVERY)}")
        if split_at is not None and over is None:
            raise InputError("a split date needs dates: give the date column (over=, --over)")
        self.reader, self.by, self.over, self.every, self.dayfirst = reader, by, over, every, dayfirst
        self.source, self.keep_typical, self.check_language = source, typical, check_language
        self.split_at = (parse_date(split_at, dayfirst) if isinstance(split_at, str) else split_at)
        if isinstance(split_at, str) and self.split_at is None:
            raise InputError("the split date is empty")
        self.labels: tuple[str, ...] = tuple(reader.labels)
        self.hygiene = Hygiene()
        self.cells: dict[tuple[str, date | None], np.ndarray] = {}  # (group, period start) -> counts
        self.sides: dict[tuple[str, int], np.ndarray] = {}  # (group, 0 before / 1 after) -> counts
        self.group_rows: dict[str, int] = {}
        self.seen: set[bytes] = set()
        self.heaps: dict[str, list] = {label: [] for label in self.labels}
        self.order = count()

    # --- scoring

    def predict(self, texts: Sequence[str], groups: Sequence[str | None] | None = None,
                dates: Sequence[str | datetime | None] | None = None, where: Sequence[str] | None = None,
                explain: bool = False, batch_size: int = 256, rows: Sequence[dict[str, str]] | None = None):
        """Score one chunk of texts and count them; returns TextEmotion.predict's TextResults, in
        order, where texts that look non-English are not scored (`label` None, `error` says why).
        `rows` (CSV rows as dicts, one per text) gives the groups and dates from the columns `by`
        and `over` where `groups` and `dates` are not given."""
        texts = list(texts)
        n = len(texts)
        start = self.hygiene.rows
        if rows is not None:
            groups = groups if groups is not None or not self.by else [r.get(self.by) for r in rows]
            dates = dates if dates is not None or not self.over else [r.get(self.over) for r in rows]
        where = list(where) if where is not None else [f"row {start + i + 1}" for i in range(n)]
        groups = list(groups) if groups is not None else [None] * n
        dates = list(dates) if dates is not None else [None] * n
        if not len(groups) == len(dates) == len(where) == n:
            raise InputError(f"{n} texts, {len(groups)} groups, {len(dates)} dates, {len(where)} places: one each")
        foreign = [guess_language(t) if self.check_language and t.strip() else None for t in texts]
        results = self.reader.predict([("" if f else t) for t, f in zip(texts, foreign)],
                                      batch_size=batch_size, explain=explain)
        for i, r in enumerate(results):
            if foreign[i]:
                r.text, r.error = texts[i], f"not English ({foreign[i]}): not scored"
            self._count(r, groups[i], dates[i], where[i], foreign[i])
        return results

    def predict_rows(self, rows: Sequence[dict[str, str]], column: str, where: Sequence[str] | None = None,
                     explain: bool = False):
        """`predict` for CSV rows (dicts): the text in `column`, the group in `by`, the date in `over`."""
        return self.predict([r.get(column) or "" for r in rows], where=where, explain=explain, rows=rows)

    def _count(self, r: Any, group: str | None, when: str | datetime | None, where: str,
               foreign: str | None) -> None:
        h = self.hygiene
        h.rows += 1
        if r.truncated:
            h.truncated += 1
            h.note("truncated", where)
        if not r.text.strip():
            h.empty += 1
            h.note("empty", where)
            return
        key = text_key(r.text)
        if key in self.seen:
            h.duplicates += 1
            h.note("duplicates", where)
        else:
            self.seen.add(key)
        if foreign:
            h.not_english[foreign] = h.not_english.get(foreign, 0) + 1
            h.note("not_english", where)
            return
        if r.label is None:  # an error of the model's own making (none known): not counted
            return
        h.scored += 1
        group = self._group(group, where)
        period = side = None
        if self.over is not None:
            moment = self._date(when, where)
            if moment is not None:
                period = period_start(moment, self.every)
                if self.split_at is not None:
                    side = int(moment >= self.split_at)
        k = self.labels.index(r.label)
        for g in ((ALL, group) if group != ALL else (ALL,)):
            self.cells.setdefault((g, period), np.zeros(len(self.labels), np.int64))[k] += 1
            if side is not None:
                self.sides.setdefault((g, side), np.zeros(len(self.labels), np.int64))[k] += 1
        self._keep_typical(r, group, where)

    def _group(self, value: str | None, where: str) -> str:
        if self.by is None:
            return ALL
        value = (value or "").strip()
        if not value:
            self.hygiene.no_group += 1
            self.hygiene.note("no_group", where)
            value = NO_GROUP
        if value == ALL:  # a group of the user's called "all" is not every text
            value = f"{ALL} ({self.by})"
        if value not in self.group_rows and len(self.group_rows) >= MAX_GROUPS:
            self.hygiene.pooled_groups += 1
            self.hygiene.note("pooled_groups", where)
            value = OTHER
        self.group_rows[value] = self.group_rows.get(value, 0) + 1
        return value

    def _date(self, value: str | datetime | None, where: str) -> datetime | None:
        if isinstance(value, datetime):
            return value
        try:
            moment = parse_date(value or "", self.dayfirst)
        except DataError as err:
            raise DataError(f"{where}: {err}", reason=err.reason) from None
        except ValueError:
            self.hygiene.bad_date += 1
            self.hygiene.note("bad_date", where)
            return None
        if moment is None:
            self.hygiene.no_date += 1
            self.hygiene.note("no_date", where)
        return moment

    def _keep_typical(self, r: Any, group: str, where: str) -> None:
        """The texts that most surely carry their label: a min-heap of the TYPICAL most probable."""
        heap = self.heaps[r.label]
        item = (r.confidence, -next(self.order), r.text[:TYPICAL_CHARS], where, group)
        if any(text_key(kept[2]) == text_key(item[2]) for kept in heap):  # a repeated text shows once
            return
        if len(heap) < self.keep_typical:
            heapq.heappush(heap, item)
        elif item[:2] > heap[0][:2]:
            heapq.heapreplace(heap, item)

    # --- the report

    def finish(self) -> TextReport:
        """The report of everything counted so far: shares, trend, split, typical texts explained."""
        groups = [ALL] + sorted((g for g in self.group_rows if g != ALL), key=lambda g: -self.group_rows[g])
        totals = {g: sum((c for (gg, _), c in self.cells.items() if gg == g), np.zeros(len(self.labels), np.int64))
                  for g in groups}
        shares = [self._share_row({"group": g, "label": label}, int(totals[g][k]), int(totals[g].sum()))
                  for g in groups for k, label in enumerate(self.labels)]
        trend, changes = self._trend(groups) if self.over is not None else ([], [])
        split = self._split(groups) if self.split_at is not None else []
        notes = [f"Shares are of the texts scored ({self.hygiene.scored}), by top label; intervals are 95% Wilson "
                 "score intervals."]
        if self.over is not None:
            notes.append(f"A change between consecutive {self.every}s is marked where a two-sided two-proportion "
                         f"z-test, Holm-corrected over every label and pair of periods of the group, gives p < {LEVEL}; "
                         f"pairs with an expected count under {MIN_EXPECTED} are not tested. Times with an offset "
                         "are counted in UTC, times without one as written.")
        if self.split_at is not None:
            notes.append(f"Before/after: texts dated before {_when(self.split_at)} against the others. "
                         "Pearson's chi-square over all labels per group; per label a two-proportion z-test, "
                         "Holm-corrected over every label of every group, the difference with Newcombe's 95% "
                         "interval and Cohen's h (0.2 small, 0.5 medium, 0.8 large).")
        return TextReport(self.source, model_info(self.reader), list(self.labels), self.by, self.over,
                          self.every if self.over else None,
                          _when(self.split_at) if self.split_at else None,
                          self.hygiene, shares, trend, changes, split, self._typical(), notes)

    @staticmethod
    def _share_row(row: dict[str, Any], k: int, n: int) -> dict[str, Any]:
        low, high = stats.wilson(k, n)
        return {**row, "count": k, "n": n, "share": round(k / n, 4) if n else None,
                "low": round(low, 4), "high": round(high, 4)}

    def _trend(self, groups: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rows, changes = [], []
        for g in groups:
            periods = sorted(p for (gg, p) in self.cells if gg == g and p is not None)
            tests = []  # (row index, p) of each pair tested
            for i, period in enumerate(periods):
                c = self.cells[(g, period)]
                n = int(c.sum())
                prev = self.cells[(g, periods[i - 1])] if i else None
                for k, label in enumerate(self.labels):
                    row = self._share_row({"group": g, "period": period_name(period, self.every), "label": label},
                                          int(c[k]), n)
                    row.update(change=False, p=None, p_holm=None)
                    if prev is not None:
                        k1, n1 = int(prev[k]), int(prev.sum())
                        if stats.min_expected(k1, n1, int(c[k]), n) >= MIN_EXPECTED:
                            row["p"] = stats.two_proportion_p(k1, n1, int(c[k]), n)
                            tests.append(len(rows))
                    rows.append(row)
            for index, adjusted in zip(tests, stats.holm([rows[i]["p"] for i in tests])):
                row = rows[index]
                row["p_holm"] = adjusted
                row["change"] = adjusted < LEVEL
                if row["change"]:
                    before = next(r for r in reversed(rows[:index])
                                  if r["group"] == g and r["label"] == row["label"] and r["period"] != row["period"])
                    changes.append({"group": g, "label": row["label"], "from": before["period"], "to": row["period"],
                                    "share_from": before["share"], "share_to": row["share"],
                                    "n_from": before["n"], "n_to": row["n"], "p_holm": adjusted})
        return rows, changes

    def _split(self, groups: list[str]) -> list[dict[str, Any]]:
        out, tests = [], []
        for g in groups:
            before, after = self.sides.get((g, 0)), self.sides.get((g, 1))
            if before is None or after is None:
                continue  # every text of this group on one side
            n1, n2 = int(before.sum()), int(after.sum())
            chi2, df, p = stats.chi_square([before.tolist(), after.tolist()])
            entry = {"group": g, "n_before": n1, "n_after": n2, "chi2": round(chi2, 3), "df": df, "p": p, "labels": []}
            for k, label in enumerate(self.labels):
                k1, k2 = int(before[k]), int(after[k])
                low, high = stats.diff_interval(k1, n1, k2, n2)
                lab = {"label": label, "before": round(k1 / n1, 4), "after": round(k2 / n2, 4),
                       "count_before": k1, "count_after": k2, "diff": round(k2 / n2 - k1 / n1, 4),
                       "diff_low": round(low, 4), "diff_high": round(high, 4),
                       "cohens_h": round(stats.cohens_h(k1 / n1, k2 / n2), 3), "p": None, "p_holm": None,
                       "change": False}
                if stats.min_expected(k1, n1, k2, n2) >= MIN_EXPECTED:
                    lab["p"] = stats.two_proportion_p(k1, n1, k2, n2)
                    tests.append(lab)
                entry["labels"].append(lab)
            out.append(entry)
        for lab, adjusted in zip(tests, stats.holm([t["p"] for t in tests])):
            lab["p_holm"] = adjusted
            lab["change"] = adjusted < LEVEL
        return out

    def _typical(self) -> dict[str, list[dict[str, Any]]]:
        """The kept texts, most probable first, each explained (token occlusion) for its label: a
        few model calls of (tokens + 1) rows each, whatever the number of texts read."""
        out = {}
        for label, heap in self.heaps.items():
            out[label] = [{"text": text, "probability": round(prob, 4), "where": where, "group": group,
                           "explanation": self.reader.explain(text, label)}
                          for prob, _, text, where, group in sorted(heap, reverse=True)]
        return out


def _when(moment: datetime) -> str:
    """2026-03-01, or 2026-03-01 14:00:00 where the time is not midnight."""
    return moment.date().isoformat() if moment.time() == datetime.min.time() else moment.isoformat(sep=" ")


def model_info(reader: Any) -> dict[str, Any]:
    """The model's name, the command that prints its card, what it was trained on, its test figures
    and its known limits (the cards' own words): what a reader of the report must know."""
    from emodetect.cards import figures_text, find_model
    from emodetect.modalities import get_modality

    path = Path(getattr(reader, "path", reader.model.path))
    info = {"name": reader.name, "file": path.name, "card": None, "training_data": None, "test_figures": None,
            "limits": list(get_modality("text").gaps), "card_text": None}
    try:
        bundled = find_model(reader.name, "text")
    except (KeyError, ValueError, FileNotFoundError):
        bundled = None
    meta = bundled.metadata if bundled is not None and bundled.path.resolve() == path.resolve() else None
    if meta is None:
        meta = getattr(reader.model, "metadata", {})
    else:
        from emodetect.cards import model_card

        info["card"] = f"emodetect models --card {reader.name} --modality text"
        info["card_text"] = model_card(reader.name, "text")
    info["training_data"] = meta.get("training_data")
    if meta.get("test_figures"):
        info["test_figures"] = figures_text(meta["test_figures"])
    return info


# --- Front doors: texts in memory, or a CSV streamed a chunk at a time.

def report(texts: Iterable[str], groups: Sequence[str | None] | None = None,
           dates: Sequence[str | datetime | None] | None = None, *, model: str | Path | None = None,
           reader: Any = None, by: str | None = None, over: str | None = None, every: str = "week",
           split_at: str | datetime | None = None, dayfirst: bool | None = None, source: str = "texts",
           threads: int = 0) -> TextReport:
    """The report on texts in memory: `groups` (one per text) names the groups, `dates` (strings in
    any format parse_date reads, or datetimes) the dates; `by`/`over` only name them in the page."""
    texts = list(texts)
    if reader is None:
        from emodetect.text.pipeline import TextEmotion

        reader = TextEmotion(model, threads=threads)
    builder = ReportBuilder(reader, by=(by or "group") if groups is not None else None,
                            over=(over or "date") if dates is not None else None, every=every, split_at=split_at,
                            dayfirst=dayfirst, source=source)
    for start in range(0, len(texts), CHUNK):
        end = start + CHUNK
        builder.predict(texts[start:end], groups[start:end] if groups is not None else None,
                        dates[start:end] if dates is not None else None)
    return builder.finish()


def report_csv(path: str | Path, column: str = "text", by: str | None = None, over: str | None = None,
               every: str = "week", split_at: str | datetime | None = None, dayfirst: bool | None = None, *,
               model: str | Path | None = None, reader: Any = None, threads: int = 0,
               chunk: int = CHUNK) -> TextReport:
    """The report on a CSV file, read and scored `chunk` rows at a time (bounded memory)."""
    if reader is None:
        from emodetect.text.pipeline import TextEmotion

        reader = TextEmotion(model, threads=threads)
    builder = ReportBuilder(reader, by=by, over=over, every=every, split_at=split_at, dayfirst=dayfirst,
                            source=Path(path).name)
    for rows, where in csv_chunks(path, [c for c in (column, by, over) if c], chunk):
        builder.predict_rows(rows, column, where)
    return builder.finish()


def csv_chunks(source: str | Path | io.IOBase, required: Sequence[str], chunk: int = CHUNK,
               name: str | None = None) -> Iterator[tuple[list[dict[str, str]], list[str]]]:
    """(rows, places) a chunk at a time from a CSV with a header (UTF-8, with or without a BOM, or
    UTF-16 with a BOM); a missing column is a DataError listing the columns there are."""
    name = name or str(source)
    opened = None
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        with open(path, "rb") as raw:
            bom = raw.read(2)
        encoding = "utf-16" if bom in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
        source = opened = open(path, encoding=encoding, newline="")
    try:
        reader = csv.DictReader(source)
        try:
            header = reader.fieldnames or []
        except UnicodeDecodeError as err:
            raise DataError(f"{name}: not UTF-8 text ({err.reason})") from None
        missing = [c for c in required if c not in header]
        if missing:
            raise DataError(f"{name}: no column {', '.join(map(repr, missing))}; the columns are "
                            f"{', '.join(header) or '(none)'}")
        rows, where = [], []
        try:
            for row in reader:
                rows.append(row)
                where.append(f"{name}: row at line {reader.line_num}")
                if len(rows) == chunk:
                    yield rows, where
                    rows, where = [], []
        except UnicodeDecodeError as err:
            raise DataError(f"{name}: not UTF-8 text after line {reader.line_num} ({err.reason})") from None
        if rows:
            yield rows, where
    finally:
        if opened is not None:
            opened.close()


def _plain(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    raise TypeError(f"{type(value).__name__} in a report")
