"""Face results: what a detector found in one image, and the ways to read it.

A `Result` carries the image it was computed on (in memory only, so that `plot()` works) and the
names of the model and face detector that produced it. Nothing here writes to disk. Each `Face`
speaks the family's vocabulary (emodetect/results.py): label, confidence, probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emodetect.results import ResultReaders, import_pandas, rounded


# The columns of Result.to_rows(), the `detect --csv` file and Result.to_df(), in order; one
# probability column per label of the model follows, then META_COLUMNS. `emotion` repeats `label`
# under its name before 0.2, so that files and programs written against 0.1 keep working.
FACE_COLUMNS = ("source", "image_width", "image_height", "face_id", "x", "y", "width", "height", "score",
                "label", "emotion", "confidence")
META_COLUMNS = ("model", "detector")


def face_columns(labels: tuple[str, ...] | list[str]) -> list[str]:
    """Every column of a face row for a model with these labels."""
    return [*FACE_COLUMNS, *labels, *META_COLUMNS]


@dataclass(frozen=True)
class Box:
    """A face box in pixels of the original image: top-left corner, width and height."""

    x: int
    y: int
    width: int
    height: int

    def to_dict(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}


@dataclass
class Face:
    """One face: where it is, how sure the detector was, and what the classifier read in it."""

    id: int = field(metadata={"doc": "the face's number in the image (a track's number in a video)"})
    box: Box = field(metadata={"doc": "where the face is, in pixels of the image"})
    score: float = field(metadata={"doc": "face detector confidence"})
    label: str = field(metadata={"doc": "the most probable emotion"})
    confidence: float = field(metadata={"doc": "probability of that emotion"})
    probabilities: dict[str, float] = field(metadata={"doc": "every emotion's probability"})

    @property
    def emotion(self) -> str:
        """The former name of `label`, kept for code written against 0.1."""
        return self.label

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "box": self.box.to_dict(),
            "score": round(float(self.score), 4),
            "label": self.label,
            "emotion": self.label,  # the 0.1 name of `label`, as in FACE_COLUMNS
            "confidence": round(float(self.confidence), 4),
            "probabilities": rounded(self.probabilities),
        }


@dataclass
class Result(ResultReaders):
    """Every face found in one image, with the image size and the models that produced it."""

    width: int
    height: int
    model: str
    detector: str
    faces: list[Face] = field(default_factory=list)
    source: str | None = None  # file path when the image came from a file, else None
    image: np.ndarray | None = field(default=None, repr=False)  # RGB uint8, kept for plot()

    def __len__(self) -> int:
        return len(self.faces)

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": {"width": self.width, "height": self.height},
            "model": self.model,
            "detector": self.detector,
            "faces": [f.to_dict() for f in self.faces],
        }

    def to_rows(self) -> list[dict[str, Any]]:
        """One flat dict per face (box and probabilities as columns): ready for csv or pandas."""
        rows = []
        for face in self.faces:
            row: dict[str, Any] = {
                "source": self.source or "",
                "image_width": self.width,
                "image_height": self.height,
                "face_id": face.id,
                "x": face.box.x, "y": face.box.y, "width": face.box.width, "height": face.box.height,
                "score": round(float(face.score), 4),
                "label": face.label,
                "emotion": face.label,
                "confidence": round(float(face.confidence), 4),
            }
            row.update({k: round(float(v), 4) for k, v in face.probabilities.items()})
            row.update({"model": self.model, "detector": self.detector})
            rows.append(row)
        return rows

    def to_df(self):  # -> pandas.DataFrame; pandas is imported only here
        """The rows of `to_rows()` as a pandas DataFrame (the pandas extra)."""
        return import_pandas().DataFrame(self.to_rows(), columns=list(FACE_COLUMNS) if not self.faces else None)

    def plot(self, blur: bool = False) -> np.ndarray:
        """The image with a box and the top emotion drawn on every face (RGB uint8).

        `blur=True` blurs every face first, so that the picture can be shared without showing who
        is in it.
        """
        if self.image is None:
            raise ValueError("this Result holds no image to draw on (it was made without one)")
        from emodetect.vision.draw import draw_faces

        return draw_faces(self.image, self.faces, blur=blur)

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        found = ", ".join(f"#{f.id} {f.label} {f.confidence:.2f}" for f in self.faces) or "no face"
        return f"{where}{self.width}x{self.height}, {found}"
