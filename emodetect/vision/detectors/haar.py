"""OpenCV's Haar cascade: the last resort."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emodetect.vision.detectors.base import CropFraming, Detection, FaceDetector


class HaarDetector(FaceDetector):
    """OpenCV's Viola-Jones cascade: no CNN, weak on small and turned faces; a last resort."""

    name = "haar"
    framing = CropFraming(scale=1.1, shift=0.0)  # not measured: OpenCV 5 here has no cascades

    def __init__(self, min_score: float = 0.0, max_side: int = 640, threads: int = 1):
        super().__init__(min_score, max_side)
        import cv2

        if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
            raise ImportError(f"OpenCV {cv2.__version__} has no Haar cascades (OpenCV 5 dropped them)")
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        if not path.is_file():
            raise ImportError(f"{path}: cascade not shipped with this OpenCV")
        self._cascade = cv2.CascadeClassifier(str(path))

    def _detect(self, rgb: np.ndarray) -> list[Detection]:
        import cv2

        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        boxes, _, weights = self._cascade.detectMultiScale3(grey, 1.1, 5, minSize=(20, 20), outputRejectLevels=True)
        return [Detection(float(x), float(y), float(w), float(h), float(np.clip(s / 10.0, 0, 1)))
                for (x, y, w, h), s in zip(boxes, np.ravel(weights))]
