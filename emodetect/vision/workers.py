"""The face worker of `emodetect batch` (named in the modality table, run by emodetect.distributed
on a Ray actor): one row per face, with the numbers of `emodetect detect`."""

from __future__ import annotations

from typing import Any

from emodetect.arrow import arrow_schema, arrow_table, file_rows


class FaceWorker:
    """Opens the face pipeline once; scores batches of image paths."""

    def __init__(self, model: str | None, detector: str | None = None):
        from emodetect.vision.detectors import create_detector
        from emodetect.vision.pipeline import EmotionDetector
        from emodetect.vision.results import face_columns

        self.detector = EmotionDetector(model, create_detector(detector, threads=1), threads=1)
        text = {"source", "label", "emotion", "model", "detector", "error"}
        whole = {"image_width", "image_height", "face_id", "x", "y", "width", "height"}
        self.schema = arrow_schema([*face_columns(self.detector.labels), "error"], text, whole)

    def score(self, batch: dict[str, Any]) -> Any:
        from emodetect.vision.images import ImageError

        def rows_of(source: str, result: Any) -> list[dict[str, Any]]:
            faces = result.to_rows() or [{"source": source, "face_id": -1}]  # no face: one row says so
            return [{**row, "source": source, "error": None} for row in faces]

        rows = file_rows(batch, self.detector.detect, (ImageError, OSError, UnicodeError), rows_of)
        return arrow_table(rows, self.schema)
