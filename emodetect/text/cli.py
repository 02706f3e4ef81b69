"""`emodetect text`: emotion in texts given on the command line or in a CSV/TXT file."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Optional

import typer

from emodetect.console import ResultWriter, check_outputs, fail

# Texts of a --file read at once: 1,024 short texts' results are a few MB, and a batch that size
# keeps the model's batches (256) full.
CHUNK_TEXTS = 1024


def text(
    texts: Optional[list[str]] = typer.Argument(None, help="texts to read (quote each one)"),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="CSV (UTF-8) or .txt file (one text per line)"),
    column: str = typer.Option("text", help="CSV column holding the texts"),
    csv: Optional[Path] = typer.Option(None, "--csv", help="write the input rows with label, labels and "
                                                            "p_<label> columns added"),
    chart: Optional[Path] = typer.Option(None, help="bar chart PNG of label shares for --file "
                                                    "(default: <csv>_labels.png beside --csv; none without --csv)"),
    model: Optional[str] = typer.Option(None, help="bundled text model (default: the joint model; default-int8, "
                                                   "minilm-int8, accurate, goemotions) or ONNX file"),
    as_json: bool = typer.Option(False, "--json", help="print JSON lines (one object per text) instead of a table"),
    threads: int = typer.Option(0, help="onnxruntime threads (0 = all cores)"),
    explain: bool = typer.Option(False, "--explain", help="show which words pushed each label (token occlusion; "
                                                          "in --json as `explanation`)"),
    label_sets: bool = typer.Option(False, "--label-sets", help="also show the joint model's other label sets "
                                                                "(28 fine-grained, 6 basic, 7 with shame and guilt)"),
    report: Optional[Path] = typer.Option(None, "--report", help="with --file: write FOLDER/report.html (one "
                                          "self-contained page), its charts as PNGs and summary.json"),
    by: Optional[str] = typer.Option(None, "--by", help="report: compare the groups of this CSV column (product, shop)"),
    over: Optional[str] = typer.Option(None, "--over", help="report: the CSV column of dates, for the trend"),
    every: str = typer.Option("week", "--every", help="report: the trend's period: day, week or month"),
    split_at: Optional[str] = typer.Option(None, "--split-at", help="report: compare before and after this date "
                                                                    "(a campaign), with --over"),
    dayfirst: Optional[bool] = typer.Option(None, "--dayfirst/--monthfirst", help="report: read 01/03/2026 as "
                                            "1 March (--dayfirst) or 3 January; without either such a date is an error"),
) -> None:
    """Emotion in texts: top label, all labels above their thresholds, per-label probabilities."""
    from emodetect.text.pipeline import LabelCounts, ResultsCsv, TextResults

    _check_options(texts, file, csv, chart, report, by, over, split_at, every)
    reader = _open_reader(model, threads)
    header, rows, inputs, where = _read_inputs(texts, file, column, by, over)
    builder = _report_builder(reader, file, by, over, every, split_at, dayfirst) if report is not None else None
    # CHUNK_TEXTS at a time through the model, written as they come; only label counts and the
    # first few problems are kept: holding every result cost about 11.6 KB a text (a million
    # lines, 11.7 GB).
    counts, problems, added = LabelCounts(), {"empty": [0, []], "truncated": [0, []]}, ResultsCsv(None, header)
    with ResultWriter(TextResults().to_table(label_sets=label_sets), as_json, csv) as out:
        for start in _chunk_starts(len(inputs), progress=file is not None):
            results = _predict_chunk(reader, builder, inputs, rows, where, start, explain)
            here = [where(i) for i in range(start, start + len(results))]
            _count_problems(results, here, problems)
            counts.add(results)
            out.write(lines=[*results.to_table(label_sets=label_sets).split("\n")[1:],
                             *(_explained(here, results) if explain else [])],
                      documents=[r.to_dict() for r in results],
                      rows=added.rows(rows[start:start + len(results)], results) if csv is not None else ())
            del results  # the next chunk's results are made before this name is rebound
    _report_problems(problems, reader.max_tokens)
    code = out.finish()
    if file is not None:
        _summarise_file(file, counts, reader, builder, report, csv, chart, as_json)
    raise typer.Exit(code)


def _check_options(texts, file, csv, chart, report, by, over, split_at, every) -> None:
    """Refuse what cannot work before the model is loaded: a typo in an output path must not
    cost a whole file of texts."""
    if not texts and file is None:
        fail("give texts as arguments or a file with --file")
    if texts and file is not None:
        fail("give texts as arguments or --file, not both")
    check_outputs(files=[csv, chart])
    if report is None and (by or over or split_at):
        fail("--by, --over and --split-at shape a report: add --report FOLDER")
    if report is not None:
        from emodetect.text.hygiene import EVERY

        if file is None:
            fail("--report reads a file: give it with --file")
        if every not in EVERY:
            fail(f"--every {every}: one of {', '.join(EVERY)}")
        check_outputs(folders=[report])


def _open_reader(model: Optional[str], threads: int):
    from emodetect.errors import EmodetectError
    from emodetect.text.pipeline import TextEmotion

    try:
        return TextEmotion(model, threads=threads)
    except EmodetectError as err:  # ModelNotFoundError, ModelError
        fail(err)


def _read_inputs(texts: Optional[list[str]], file: Optional[Path], column: str, by: Optional[str],
                 over: Optional[str]) -> tuple[list[str], Sequence[dict], list[str], Callable[[int], str]]:
    """The header and rows (written back with --csv), the texts, and `where(i)`, which names the
    i-th text in a warning."""
    from emodetect.errors import DataError
    from emodetect.text.pipeline import read_texts

    if file is None:
        if not any(t.strip() for t in texts):
            fail("every text given is empty or whitespace")
        return ["text"], [{"text": t} for t in texts], texts, lambda i: f"text {i + 1}"
    try:
        header, rows, inputs = read_texts(file, column)
    except DataError as err:
        fail(str(err))
    if not inputs:
        fail(f"{file}: no rows")
    missing = [c for c in (by, over) if c and c not in header]
    if missing:
        fail(f"{file}: no column {', '.join(map(repr, missing))}; the columns are {', '.join(header)}")
    first_line = 1 if file.suffix.lower() == ".txt" else 2  # CSV: the header is line 1
    return header, rows, inputs, lambda i: f"{file}: row at line {first_line + i}"


def _report_builder(reader, file: Path, by, over, every, split_at, dayfirst):
    """Counts per group, period and label as chunks go by (emodetect.text.report)."""
    from emodetect.errors import InputError
    from emodetect.text.report import ReportBuilder

    try:
        return ReportBuilder(reader, by=by, over=over, every=every, split_at=split_at, dayfirst=dayfirst,
                             source=file.name)
    except InputError as err:
        fail(f"--split-at {split_at}: {err}")


def _chunk_starts(count: int, progress: bool) -> Iterable[int]:
    """Where each chunk of CHUNK_TEXTS starts; with `progress` (a --file), a bar over the chunks."""
    starts = range(0, count, CHUNK_TEXTS)
    if not progress:
        return starts
    from tqdm.auto import tqdm

    return tqdm(starts, desc="texts", unit="chunk", disable=count <= CHUNK_TEXTS)


def _predict_chunk(reader, builder, inputs: list[str], rows: Sequence[dict], where: Callable[[int], str],
                   start: int, explain: bool):
    """The results of the chunk at `start`; with a report, through its builder (texts that look
    non-English come back unscored, saying so)."""
    from emodetect.errors import DataError

    stop = min(start + CHUNK_TEXTS, len(inputs))
    if builder is None:
        return reader.predict(inputs[start:stop], progress=False, explain=explain)
    try:
        return builder.predict(inputs[start:stop], rows=rows[start:stop], explain=explain,
                               where=[where(i) for i in range(start, stop)])
    except DataError as err:
        fail(str(err))


def _explained(where: list[str], results) -> list[str]:
    """--explain in the table: the words that pushed each text's label most."""
    lines = []
    for w, r in zip(where, results):
        pushed = sorted((e for e in r.explanation or [] if e["weight"] > 0.01), key=lambda e: -e["weight"])[:4]
        words = ", ".join(f"{e['token']} (+{e['weight']:.2f})" for e in pushed) or "no single word"
        lines.append(f"{w}: {r.label or '-'} rests on {words}")
    return lines


def _summarise_file(file: Path, counts, reader, builder, report: Optional[Path], csv: Optional[Path],
                    chart: Optional[Path], as_json: bool) -> None:
    """After a --file: the label shares, the report and the chart."""
    from emodetect.text.pipeline import plot_shares

    _print_summary(counts, reader, counts.valid, err=as_json)  # --json: stdout holds JSON lines only
    if builder is not None:
        summary = builder.finish()
        h = summary.hygiene
        if h.not_english or h.duplicates:
            typer.secho(f"warning: {sum(h.not_english.values())} text(s) not English (left out of the shares), "
                        f"{h.duplicates} repeating an earlier one (scored)", fg=typer.colors.YELLOW, err=True)
        changes = "; ".join(f"{c['group']} {c['label']} {c['share_from']:.0%} -> {c['share_to']:.0%} ({c['to']})"
                            for c in summary.changes[:5])
        typer.echo(f"report: {summary.save(report)} ({len(summary.changes)} change(s) the tests support"
                   + (f": {changes}" if changes else "") + ")", err=True)
    # A chart only where asked for: --chart, or beside the --csv output.
    chart = chart or (csv.with_name(csv.stem + "_labels.png") if csv else None)
    if chart is not None and counts.valid:
        plot_shares(counts.shares(), chart, f"{file.name}: {counts.valid} texts, model {reader.name}")
        typer.echo(f"chart: {chart}", err=True)


def _count_problems(results, where: list[str], problems: dict[str, list]) -> None:
    """Empty and truncated texts: how many, and the first five named."""
    for w, r in zip(where, results):
        for name, hit in (("empty", not r.text.strip()), ("truncated", r.truncated)):
            if hit:
                problems[name][0] += 1
                if len(problems[name][1]) < 5:
                    problems[name][1].append(w)


def _report_problems(problems: dict[str, list], max_tokens: int) -> None:
    for name, why in (("empty", "empty or whitespace-only: no label"),
                      ("truncated", f"longer than {max_tokens} tokens: only the first {max_tokens} read")):
        count, items = problems[name]
        if count:
            shown = ", ".join(items) + (f" and {count - len(items)} more" if count > len(items) else "")
            typer.secho(f"warning: {count} text(s) {why}: {shown}", fg=typer.colors.YELLOW, err=True)


def _print_summary(results, reader, valid: int, err: bool = False) -> None:
    """`results`: anything with `shares` and `total` (LabelCounts)."""
    typer.echo(f"{valid} of {results.total} texts labelled by {reader.name}; share by top label:", err=err)
    for label, share in sorted(results.shares().items(), key=lambda kv: -kv[1]):
        if share > 0:
            typer.echo(f"  {label:16} {share:6.1%}", err=err)
    if reader.groups and valid:
        typer.echo("by group: " + json.dumps({g: round(s, 3) for g, s in results.shares(groups=True).items()}), err=err)
    for head in reader.heads if valid else []:
        top = sorted(results.shares(head=head).items(), key=lambda kv: -kv[1])[:5]
        typer.echo(f"in {head}'s labels: " + ", ".join(f"{k} {s:.1%}" for k, s in top if s > 0), err=err)


def ensemble(
    members: list[str] = typer.Argument(..., help="two or more text models (bundled names or ONNX files) with the "
                                                  "same labels and heads; the first also explains"),
    data: Path = typer.Option(..., help="text CSV with the heads' label columns (as training reads it): the "
                                        "multi-label thresholds are tuned on its validation split"),
    out: Path = typer.Option(..., help="the ensemble file to write (NAME.ensemble.json)"),
    name: str = typer.Option("ensemble", help="the ensemble's name in results"),
    weights: Optional[list[float]] = typer.Option(None, "--weight", help="each member's weight, in order "
                                                                          "(repeat; default: equal)"),
    head_weights: Optional[list[str]] = typer.Option(None, "--head-weight", help="a head's own weights, "
                                                     "HEAD=W1,W2,... (repeat per head; main names the main head)"),
    val_split: str = typer.Option("validation", help="the split the thresholds are tuned on (never the test split)"),
    threads: int = typer.Option(0, help="onnxruntime threads (0 = all cores)"),
) -> None:
    """Average text models: write an ensemble file that `text`, `serve` and TextEmotion open like a model."""
    from emodetect.errors import EmodetectError
    from emodetect.text.ensemble import make_ensemble, parse_head_weight

    if len(members) < 2:
        fail("an ensemble needs two or more members")
    try:
        by_head = dict(parse_head_weight(option) for option in head_weights or [])
        path = make_ensemble(members, data, out, name, weights, val_split, threads, by_head)
    except EmodetectError as err:  # a member, the data, a weight
        fail(err)
    except FileNotFoundError as err:  # the data file or folder given
        fail(str(err))
    typer.echo(f"wrote {path}: {' + '.join(members)}")
