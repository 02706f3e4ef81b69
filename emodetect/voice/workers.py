"""The recording worker of `emodetect batch` (named in the modality table, run by
emodetect.distributed on a Ray actor): one row per window, with the numbers of `voice --timeline`."""

from __future__ import annotations

from typing import Any

from emodetect.arrow import arrow_schema, arrow_table, file_rows
from emodetect.errors import InputError


class VoiceWorker:
    """Opens the voice pipeline once; scores batches of recording paths."""

    def __init__(self, model: str | None):
        from emodetect.voice.pipeline import VoiceEmotion

        self.engine = VoiceEmotion(model, threads=1)
        self.schema = arrow_schema(["source", "start_s", "end_s", "label", *self.engine.labels, "clip_label", "error"],
                                   {"source", "label", "clip_label", "error"})

    def score(self, batch: dict[str, Any]) -> Any:
        def rows_of(source: str, result: Any) -> list[dict[str, Any]]:
            # No window (a recording too short for one): one row still says it was read, so a rerun
            # skips it. `source` is the listing's (a name that is not UTF-8 shown with escapes).
            return [{**window, "source": source, "clip_label": result.label or "", "error": None}
                    for window in result.to_rows(timeline=True) or [{}]]

        rows = file_rows(batch, self.engine.predict, (InputError, OSError, MemoryError, UnicodeError), rows_of)
        return arrow_table(rows, self.schema)
