"""What every command shares: one-line errors, logging to stderr, paths that fit a column."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import NoReturn

import typer


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `error: message` in red on stderr and exit with `code` (2: bad usage or input)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(message)s", stream=sys.stderr)


def fit_path(path: Path, width: int) -> str:
    """The path, or its last characters after an ellipsis when it is longer than the column."""
    text = str(path)
    return text if len(text) <= width else "…" + text[-(width - 1):]
