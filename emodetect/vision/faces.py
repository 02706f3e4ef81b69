"""The FER-2013 style crop fed to the emotion model, from a detector's box."""

from __future__ import annotations

import numpy as np

from emodetect.vision.detectors.base import CropFraming, Detection

FACE_SIZE = 48  # the classifier's input: 48x48 grey, as FER-2013


def crop_face(grey: np.ndarray, d: Detection, framing: CropFraming | None = None, size: int = FACE_SIZE) -> np.ndarray:
    """The size x size grey crop of one face; parts outside the image repeat its edge pixels."""
    import cv2

    left, top, side = (framing or CropFraming()).square(d)
    x0, y0, s = int(round(left)), int(round(top)), max(1, int(round(side)))
    h, w = grey.shape[:2]
    pad = max(0, -x0, -y0, x0 + s - w, y0 + s - h)
    if pad:
        grey = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + pad, y0 + pad
    patch = grey[y0:y0 + s, x0:x0 + s]
    interpolation = cv2.INTER_AREA if s > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interpolation)
