"""The FER-2013 style crop fed to the emotion model, from a detector's box."""

from __future__ import annotations

import numpy as np

from emodetect.vision.detectors.base import CropFraming, Detection, FaceDetector

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


# Face crops people bring are small, or near-square: FER-2013's 48 px, RAF-DB's 100, AffectNet's
# 224. A larger or oblong image is a photo, and reading it whole as a face gives a confident wrong
# answer (issue 32: a labelled folder of photos scored 0.0), so its face is found first.
CROP_ANY_SHAPE_SIDE = 128
CROP_SQUARE_SIDE = 256
CROP_SQUARE_ASPECT = 1.25


def is_face_crop(height: int, width: int) -> bool:
    """Whether an image of this size is read as a face already cut out (else as a whole photo)."""
    longer, shorter = max(height, width), max(1, min(height, width))
    return longer <= CROP_ANY_SHAPE_SIDE or (longer <= CROP_SQUARE_SIDE and longer / shorter <= CROP_SQUARE_ASPECT)


class FaceReader:
    """48x48 grey faces from image files that are either crops or whole photos, decided per image
    (`is_face_crop`): a crop is made 48x48 as `grey_face` makes it; a photo's largest face is
    found and cropped as `EmotionDetector.detect` crops it. The detector is created on the first
    photo only, so folders of crops never load it."""

    def __init__(self, detector: FaceDetector | str | None = None):  # None: the default detector
        self._detector = detector
        self.photos = 0  # images read as photos (their face found by the detector)

    @property
    def detector(self) -> FaceDetector:
        from emodetect.vision.detectors import create_detector

        if not isinstance(self._detector, FaceDetector):
            self._detector = create_detector(self._detector)
        return self._detector

    def read(self, source, max_pixels: int | None = None) -> tuple[np.ndarray, Detection | None]:
        """The 48x48 face of `source`, and the detection it was cut from (None for a crop).
        A photo with no face is an InputError (reason "no_face")."""
        import cv2

        from emodetect.errors import InputError
        from emodetect.vision.images import DEFAULT_MAX_PIXELS, load_image

        rgb = load_image(source, max_pixels or DEFAULT_MAX_PIXELS)
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        height, width = grey.shape
        if is_face_crop(height, width):
            return resize_face(grey), None
        detections = self.detector.detect(rgb)
        if not detections:
            raise InputError(f"no face found in this {width}x{height} photo by {self.detector.name} "
                             "(not read as a face crop: larger than a crop)", "no_face")
        self.photos += 1
        largest = max(detections, key=lambda d: d.width * d.height)
        return crop_face(grey, largest, self.detector.framing), largest
