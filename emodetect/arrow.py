"""Result rows as Arrow tables, for `emodetect batch`'s Parquet files: what every modality's batch
worker shares (`emodetect.distributed` writes the tables; each worker builds its own with these).
Imports pyarrow (the distributed extra) only when called."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any


def shown(path: str) -> str:
    """A path as UTF-8 text: bytes of a name that is not UTF-8 (b'bad\\xff.jpg' on Linux, which
    Python holds as a lone surrogate) become `\\xff` escapes. Parquet strings must be UTF-8, and
    one such name once failed the whole job with nothing written."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def arrow_schema(names: list[str], text: set[str], whole: set[str] = frozenset(),
                 boolean: set[str] = frozenset()) -> Any:
    """One Arrow schema per kind of input, so every Parquet file of a run (and of a rerun) has
    the same columns and types, whichever rows its batch held; a column in none of the sets is float."""
    import pyarrow as pa

    def kind(name: str) -> Any:
        return (pa.string() if name in text else pa.int64() if name in whole else
                pa.bool_() if name in boolean else pa.float64())

    return pa.schema([(name, kind(name)) for name in names])


def arrow_table(rows: list[dict[str, Any]], schema: Any) -> Any:
    """Rows as an Arrow table of `schema`; a value a row lacks (an error row has no box) or
    leaves empty is null. Text is made UTF-8 (`shown`): an error message names a file whose name
    is not."""
    import pyarrow as pa

    def value(row: dict[str, Any], f: Any) -> Any:
        v = row.get(f.name)
        if isinstance(v, str):
            return (shown(v) if f.type == pa.string() else None if v == "" else v)
        return v

    columns = {f.name: [value(row, f) for row in rows] for f in schema}
    return pa.table(columns, schema=schema)


def file_rows(batch: dict[str, Any], read: Callable[[str], Any], errors: tuple[type[BaseException], ...],
              rows_of: Callable[[str, Any], Iterable[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The rows of a batch of listed files (`source`, `path`, `error` columns): `read` each path
    and turn its result into rows with `rows_of(source, result)`; a file the listing found
    unreadable, or whose read raises one of `errors`, is one row with its error, and the batch goes on."""
    rows: list[dict[str, Any]] = []
    for source, path, unreadable in zip(batch["source"], batch["path"], batch["error"]):
        if unreadable:  # found unreadable by the listing (a dangling link, a FIFO)
            rows.append({"source": source, "error": str(unreadable)})
            continue
        try:
            result = read(os.fsdecode(path))
        except errors as err:  # UnicodeError: a reader that needs UTF-8 names; say which file
            rows.append({"source": source, "error": f"{source}: {err}" if isinstance(err, UnicodeError) else str(err)})
            continue
        rows += rows_of(source, result)
    return rows
