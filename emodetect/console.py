"""What every command shares: one-line errors, logging to stderr, paths that fit a column, and
the one table style of `detect`, `predict` and `voice`."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, NoReturn

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
