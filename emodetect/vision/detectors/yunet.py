"""YuNet, bundled: the default face detector."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emodetect.vision.detectors.base import CropFraming, Detection, FaceDetector


class YuNetDetector(FaceDetector):
    """YuNet (MIT), the ONNX file bundled in this package, run by OpenCV's own `FaceDetectorYN`.

    The default because it needs nothing beyond opencv-python-headless, which has wheels for every
    platform we support; on this machine it is also faster than the `yuface` wheel
    (bench/face_detectors.py).
    """

    name = "yunet"
    # bench/crop_framing.py --detector yunet: see bench/results/crop_framing_yunet.json.
    framing = CropFraming(scale=1.0, shift=0.0)

    # 480: the smallest faces of a 640x480 frame (about 40 px) are still found at 480
    # (bench/results/face_detectors.json).
    def __init__(self, min_score: float = 0.5, max_side: int = 480, threads: int = 1):
        super().__init__(min_score, max_side)
        import cv2

        if not hasattr(cv2, "FaceDetectorYN"):
            raise ImportError(f"OpenCV {cv2.__version__} has no FaceDetectorYN (it needs 4.8 or later)")
        # OpenCV's DNN threads are one process-wide setting: set only when asked for.
        if threads > 0:
            cv2.setNumThreads(int(threads))
        # The score threshold inside OpenCV is kept low; FaceDetector.detect applies min_score.
        # OpenCV 5 warns on stderr that its new graph engine ignores the (default) target: noise
        # for a user, so its log level is lowered for this one call and restored.
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            self._net = cv2.FaceDetectorYN.create(str(yunet_onnx()), "", (320, 320), min(0.3, min_score), 0.3, 5000)
        finally:
            cv2.utils.logging.setLogLevel(level)
        self._size = (320, 320)

    def _detect(self, rgb: np.ndarray) -> list[Detection]:
        import cv2

        height, width = rgb.shape[:2]
        if (width, height) != self._size:
            self._net.setInputSize((width, height))
            self._size = (width, height)
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        _, rows = self._net.detect(bgr)
        if rows is None:
            return []
        # Per face: x, y, w, h, five (x, y) landmarks (right eye, left eye, nose, mouth corners), score.
        return [Detection(float(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[14]),
                          tuple((float(r[4 + 2 * j]), float(r[5 + 2 * j])) for j in range(5)))
                for r in rows]


YUNET_FILE = "face_detection_yunet_2023mar.onnx"


def yunet_onnx() -> Path:
    """The bundled YuNet weights (emodetect/assets/detectors/, with their licence and provenance)."""
    from emodetect.runtime import DETECTORS_DIR, assets_dir

    return assets_dir() / DETECTORS_DIR / YUNET_FILE
