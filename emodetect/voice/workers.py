"""The recording worker of `emodetect batch` (named in the modality table, run by
emodetect.distributed on a Ray actor): one row per window, with the numbers of `voice --timeline`."""

from __future__ import annotations

import os
from typing import Any

from emodetect.arrow import arrow_schema, arrow_table
from emodetect.errors import InputError


class VoiceWorker:
    """Opens the voice pipeline once; scores batches of recording paths."""

    def __init__(self, model: str | None):
        from emodetect.voice.pipeline import VoiceEmotion

        self.engine = VoiceEmotion(model, threads=1)
        self.schema = arrow_schema(["source", "start_s", "end_s", "label", *self.engine.labels, "clip_label", "error"],
                                   {"source", "label", "clip_label", "error"})

    def score(self, batch: dict[str, Any]) -> Any:
        rows: list[dict[str, Any]] = []
        for source, path, unreadable in zip(batch["source"], batch["path"], batch["error"]):
            if unreadable:  # found unreadable by the listing (a dangling link, a FIFO)
                rows.append({"source": source, "error": str(unreadable)})
                continue
            try:
                result = self.engine.predict(os.fsdecode(path))
            except (InputError, OSError, MemoryError, UnicodeError) as err:
                rows.append({"source": source, "error": f"{source}: {err}" if isinstance(err, UnicodeError)
                             else str(err)})
                continue
            # No window (a recording too short for one): one row still says it was read, so a
            # rerun skips it.
            # `source` is the listing's (a name that is not UTF-8 shown with escapes).
            for window in result.to_rows(timeline=True) or [{}]:
                rows.append({**window, "source": source, "clip_label": result.label or "", "error": None})
        return arrow_table(rows, self.schema)
