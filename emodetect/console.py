"""What every command shares: one-line errors, logging to stderr, paths that fit a column, the
one table style, and the one writer of the per-file verbs (`detect`, `predict`, `text`, `voice`)."""

from __future__ import annotations

import csv
import json
import logging
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple, NoReturn

import typer

if TYPE_CHECKING:
    from emodetect.errors import EmodetectError


def fail(message: "str | EmodetectError", code: int | None = None) -> NoReturn:
    """Print `error: message` in red on stderr and exit with `code`: by default the error's own
    (errors.exit_code: 2, the command refused its input), 2 for a message. Commands catch
    `EmodetectError` only and hand it here, so any other exception is a bug and shows as one."""
    from emodetect.errors import EXIT_REFUSED, EmodetectError, exit_code

    if code is None:
        code = exit_code(message) if isinstance(message, EmodetectError) else EXIT_REFUSED
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def check_output_file(path: Path) -> None:
    """OutputError unless `path` can be written as a file: its folder exists and takes files, and
    the path itself is not a folder."""
    import os

    from emodetect.errors import OutputError

    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name to write")
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "no such folder"
        raise OutputError(f"{path}: cannot write there: {folder} {what}")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"{path}: cannot write there: permission denied")


def check_outputs(files: Iterable[Path | None] = (), folders: Iterable[Path | None] = ()) -> None:
    """Exit 2 unless every output file and folder asked for (None: not asked for) can be written;
    called before any work, since a typo in an output path must not cost a folder of photos."""
    from emodetect.errors import OutputError

    try:
        for path in files:
            if path is not None:
                check_output_file(path)
        for path in folders:
            if path is not None:
                check_output_dir(path)
    except OutputError as err:
        fail(str(err))


def check_output_dir(path: Path) -> None:
    """OutputError unless `path` is a folder, or can be made one (its nearest existing ancestor is
    a writable folder)."""
    import os

    from emodetect.errors import OutputError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a folder; give a folder for the output")
    existing = next((p for p in [path, *path.absolute().parents] if p.exists()), None)
    if existing is None or not existing.is_dir():
        raise OutputError(f"{path}: cannot make this folder: {existing} is not a folder")
    if not os.access(existing, os.W_OK):
        raise OutputError(f"{path}: cannot write in {existing}: permission denied")


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(message)s", stream=sys.stderr)


def fit_path(path: Path, width: int) -> str:
    """The path, or its last characters after an ellipsis when it is longer than the column."""
    text = str(path)
    return text if len(text) <= width else "…" + text[-(width - 1):]


class Column(NamedTuple):
    """One column of a printed table: its title, width (0: as wide as its text, for the last one),
    alignment (">" for numbers) and the spaces before it."""

    title: str
    width: int = 0
    align: str = "<"
    gap: str = " "


# The file column every table starts with (long paths keep their end: fit_path).
FILE_COLUMN = Column("file", 40)


def table_line(columns: Sequence[Column], cells: Sequence[object]) -> str:
    """One row (or, given the titles, the header) of a table: fixed-width columns separated by
    spaces, so that every verb's table reads alike; a row may stop early ("no face")."""
    parts = []
    for i, (column, cell) in enumerate(zip(columns, cells)):
        text = f"{cell:{column.align}{column.width}}" if column.width else str(cell)
        parts.append(text if i == 0 else column.gap + text)
    return "".join(parts).rstrip()


def table_header(columns: Sequence[Column]) -> str:
    return table_line(columns, [c.title for c in columns])


class ResultWriter:
    """What a per-file verb prints and writes, one file at a time: a table on stdout (or JSON
    lines with `--json`), rows appended to the `--csv` file and flushed as each file is done (a
    kill or a later failure loses nothing already written), an unreadable file skipped with a
    yellow `PATH: skipped: REASON` on stderr (and `{"source", "error"}` in JSON lines) and
    counted. `finish()` says what was written and skipped and returns the exit code: 1 when any
    file was skipped, else 0.

    `table` is the columns, the first of them the file (`FILE_COLUMN`), or the header line of a
    table whose lines the verb formats itself (`text`'s). The CSV's columns are `csv_columns`,
    or the keys of the first row written; without `csv_columns` the file is made at the first
    row, so a run where every file failed leaves none.
    """

    def __init__(self, table: Sequence[Column] | str, as_json: bool = False, csv_path: Path | None = None,
                 csv_columns: Sequence[str] | None = None):
        self.columns: Sequence[Column] = () if isinstance(table, str) else table
        self.as_json, self.csv_path = as_json, csv_path
        self.written = self.skipped = self.rows = 0
        self._handle: IO[str] | None = None
        self._csv: csv.DictWriter | None = None
        if not as_json:
            typer.echo(table if isinstance(table, str) else table_header(table))
        if csv_path is not None and csv_columns is not None:
            self._open_csv(csv_columns)

    def __enter__(self) -> "ResultWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def seen(self) -> int:
        """Files written or skipped so far."""
        return self.written + self.skipped

    def write(self, source: object = None, *, cells: Iterable[Sequence[object]] = (), lines: Iterable[str] = (),
              documents: Iterable[dict[str, Any]] = (), rows: Sequence[dict[str, Any]] = ()) -> None:
        """One file's results: table rows (`cells`, after the file column, which shows `source`)
        and free `lines` under them, or with --json the `documents`; and its CSV `rows`."""
        if self.as_json:
            for document in documents:
                typer.echo(json.dumps(document))
        else:
            shown = fit_path(source, self.columns[0].width) if self.columns else ""
            for row in cells:
                typer.echo(table_line(self.columns, [shown, *row]))
            for line in lines:
                typer.echo(line)
        if self.csv_path is not None and rows:
            if self._csv is None:
                self._open_csv(list(rows[0]))
            self._csv.writerows(rows)
            self._handle.flush()
            self.rows += len(rows)
        self.written += 1

    def skip(self, source: object, reason: object) -> None:
        """A file that could not be read: said on stderr (and in JSON lines), counted, and the run goes on."""
        typer.secho(f"{source}: skipped: {reason}", fg=typer.colors.YELLOW, err=True)
        if self.as_json:
            typer.echo(json.dumps({"source": str(source), "error": str(reason)}))
        self.skipped += 1

    def finish(self) -> int:
        """Close the CSV, say what was written and skipped; the exit code (1: a file was skipped)."""
        self.close()
        if self._csv is not None:
            typer.echo(f"wrote {self.csv_path} ({self.rows} rows)", err=True)
        if self.skipped:
            typer.secho(f"{self.skipped} of {self.seen} file(s) skipped", fg=typer.colors.YELLOW, err=True)
        return 1 if self.skipped else 0

    def close(self) -> None:
        if self._handle is not None and not self._handle.closed:
            self._handle.close()

    def _open_csv(self, columns: Sequence[str]) -> None:
        self._handle = open(self.csv_path, "w", encoding="utf-8", newline="")
        self._csv = csv.DictWriter(self._handle, fieldnames=list(columns))
        self._csv.writeheader()
        self._handle.flush()
