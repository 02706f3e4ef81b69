"""The FER-2013 style crop fed to the emotion model, from a detector's box."""

from __future__ import annotations

import numpy as np

from emodetect.vision.detectors.base import CropFraming, Detection

FACE_SIZE = 48  # the classifier's input: 48x48 grey, as FER-2013


def crop_face(grey: np.ndarray, d: Detection, framing: CropFraming | None = None, size: int = FACE_SIZE) -> np.ndarray:
    """The size x size grey crop of one face; parts outside the image repeat its edge pixels."""
    import cv2

    x0, y0, s = crop_square(d, framing)
    h, w = grey.shape[:2]
    pad = max(0, -x0, -y0, x0 + s - w, y0 + s - h)
    if pad:
        grey = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + pad, y0 + pad
    return resize_face(grey[y0:y0 + s, x0:x0 + s], size)


def crop_square(d: Detection, framing: CropFraming | None = None) -> tuple[int, int, int]:
    """Left, top and side in whole pixels of the square `crop_face` cuts (may pass the edges)."""
    left, top, side = (framing or CropFraming()).square(d)
    return int(round(left)), int(round(top)), max(1, int(round(side)))


def resize_face(grey: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """A grey patch made size x size: area averaging down, bilinear up."""
    import cv2

    if grey.shape[:2] == (size, size):
        return np.ascontiguousarray(grey)
    interpolation = cv2.INTER_AREA if max(grey.shape[:2]) > size else cv2.INTER_LINEAR
    return cv2.resize(grey, (size, size), interpolation=interpolation)


def grey_face(source, max_pixels: int | None = None) -> np.ndarray:
    """A face crop already cut out (path, bytes, PIL image or array) as the model's 48x48 grey input,
    decoded as every image is (`images.load_image`: EXIF orientation, transparency on white, 16-bit
    stretched) and made grey as the pipeline makes its crops: one path for training and inference."""
    import cv2

    from emodetect.vision.images import DEFAULT_MAX_PIXELS, load_image

    rgb = load_image(source, max_pixels or DEFAULT_MAX_PIXELS)
    return resize_face(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
