"""What every face detector shares: the box it returns, its crop framing, the resize around it."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Detection:
    """A face box in pixels of the image given to the detector, with the detector's score."""

    x: float
    y: float
    width: float
    height: float
    score: float
    # Five points (right eye, left eye, nose, right and left mouth corner) when the detector has them.
    landmarks: tuple[tuple[float, float], ...] | None = None


@dataclass(frozen=True)
class CropFraming:
    """How a detector box becomes a FER-2013 style square.

    side = scale * max(box width, box height); centre = box centre moved down by `shift` box
    heights. Each detector has its own, measured by running it on FER-2013's faces themselves
    (bench/crop_framing.py), so that our crops frame a face as FER-2013 does.
    """

    scale: float = 1.0
    shift: float = 0.0

    def square(self, d: Detection) -> tuple[float, float, float]:
        """Left, top and side of the crop square."""
        side = self.scale * max(d.width, d.height)
        cx = d.x + d.width / 2
        cy = d.y + d.height / 2 + self.shift * d.height
        return cx - side / 2, cy - side / 2, side


class FaceDetector:
    """Find faces in an RGB uint8 image.

    Detection runs on a copy whose longer side is at most `max_side` pixels (speed does not then
    depend on the photo's size); boxes come back in the original image's pixels.
    """

    name = "base"
    framing = CropFraming()

    def __init__(self, min_score: float = 0.5, max_side: int = 640):
        self.min_score = min_score
        self.max_side = max_side

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        import cv2

        height, width = rgb.shape[:2]
        scale = min(1.0, self.max_side / max(height, width)) if self.max_side else 1.0
        small = rgb
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        found = [d for d in self._detect(small) if d.score >= self.min_score]
        if scale < 1.0:
            found = [_rescale(d, 1.0 / scale) for d in found]
        return sorted(found, key=lambda d: (d.x, d.y))

    def _detect(self, rgb: np.ndarray) -> list[Detection]:
        raise NotImplementedError


def _rescale(d: Detection, k: float) -> Detection:
    points = tuple((x * k, y * k) for x, y in d.landmarks) if d.landmarks else None
    return Detection(d.x * k, d.y * k, d.width * k, d.height * k, d.score, points)


def package_file(package: str, name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"package {package!r} is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / name
    if not path.is_file():
        raise ImportError(f"{path}: not found in the installed {package!r} package")
    return path


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Greedy non-maximum suppression on x, y, w, h boxes."""
    order = list(np.argsort(-scores))
    keep: list[int] = []
    while order:
        i = order.pop(0)
        keep.append(int(i))
        order = [j for j in order if box_iou(boxes[i], boxes[j]) <= iou]
    return keep


def box_iou(a, b) -> float:
    """Intersection over union of two x, y, w, h boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0
