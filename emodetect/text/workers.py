"""What `emodetect batch` reads of texts and the worker that scores them (both named in the
modality table, run by emodetect.distributed): a CSV, Parquet or TXT file becomes one row per text,
scored with the numbers of `emodetect text`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emodetect.arrow import arrow_schema, arrow_table, shown

SUFFIXES = (".csv", ".parquet", ".txt")  # files of texts


def text_rows(path: Path, column: str = "text") -> list[dict[str, Any]]:
    """One row per text of `path`: its text and a `source` naming the file's line (a CSV's header
    is line 1) or, in Parquet, the row number."""
    from emodetect.errors import DataError

    if path.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            columns = pq.read_schema(path).names
            if column not in columns:
                raise DataError(f"{path}: no column {column!r}; the columns are: {', '.join(columns)}")
            texts = [t or "" for t in pq.read_table(path, columns=[column]).column(column).to_pylist()]
        except pa.ArrowException as err:  # not Parquet, or damaged
            raise DataError(f"{path}: not a readable Parquet file ({err})") from err
        return [{"source": shown(f"{path.resolve()}#{i}"), "text": t} for i, t in enumerate(texts)]
    from emodetect.text.pipeline import read_texts

    _, _, texts = read_texts(path, column)
    first = 1 if path.suffix.lower() == ".txt" else 2  # sources name the file's line
    return [{"source": shown(f"{path.resolve()}:{first + i}"), "text": t} for i, t in enumerate(texts)]


class TextWorker:
    """Opens the text pipeline once; scores batches of texts."""

    def __init__(self, model: str | None):
        from emodetect.text.pipeline import TextEmotion

        self.reader = TextEmotion(model, threads=1)
        # A multi-head model (the joint default) adds each head's labels and probabilities.
        head_text = [f"{seg.name}_{c}" for seg in self.reader.head_segments for c in ("label", "labels")]
        head_probs = [f"p_{seg.name}:{k}" for seg in self.reader.head_segments for k in seg.labels]
        names = ["source", "text", "label", "labels", *(["group"] if self.reader.groups else []),
                 *(f"p_{k}" for k in self.reader.labels), *head_text, *head_probs, "truncated", "error"]
        self.schema = arrow_schema(names, {"source", "text", "label", "labels", "group", "error", *head_text},
                                   boolean={"truncated"})

    def score(self, batch: dict[str, Any]) -> Any:
        results = self.reader.predict([str(t) for t in batch["text"]])
        rows = [{"source": s, **row} for s, row in zip(batch["source"], results.to_rows())]
        return arrow_table(rows, self.schema)
