"""FaceEmotion: find every face in an image and read its emotion with the bundled ONNX model.

It answers in the shape every engine has (`TextEmotion`, `VoiceEmotion`): `predict`, `model_name`,
`model_file`, `labels`. `EmotionDetector` is its former name, kept.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from emodetect.vision.results import Box, Face, Result
from emodetect.vision.detectors import CropFraming, Detection, FaceDetector, create_detector
from emodetect.vision.faces import FACE_SIZE, crop_face
from emodetect.vision.images import DEFAULT_MAX_PIXELS, load_image


class FaceEmotion:
    """Faces and their emotions in photos and video frames; onnxruntime only, no torch.

    `model` is a bundled model name ("default", ...) or an ONNX file honouring the face contract
    (input N x 1 x 48 x 48 grey 0..255, output N x 7 probabilities); `detector` a name from
    `emodetect.vision.detectors.DETECTORS` (None picks the default) or a FaceDetector instance;
    `threads` caps onnxruntime's threads for the classifier (0 lets onnxruntime choose).
    """

    def __init__(self, model: str | Path | None = None, detector: str | FaceDetector | None = None,
                 threads: int = 0):
        from emodetect.labels import EMOTIONS
        from emodetect.runtime import load_model

        self.model = self._model = load_model(model, "vision", threads)
        self.labels: tuple[str, ...] = self._model.labels or EMOTIONS
        self.model_name: str = self._model.metadata.get("name") or self._model.path.stem
        self.model_file: str = self._model.path.name  # lets the service's /v1/models mark the file in use
        self.face_detector: FaceDetector = (detector if isinstance(detector, FaceDetector)
                                            else create_detector(detector))
        self.detector_name: str = self.face_detector.name
        self.framing: CropFraming = self.face_detector.framing
        self.max_pixels = DEFAULT_MAX_PIXELS

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model_name!r}, detector={self.detector_name!r})"

    def predict(self, image: Any, color: str = "rgb") -> Result:
        """`detect`, under the name every engine answers to (TextEmotion.predict, VoiceEmotion.predict)."""
        return self.detect(image, color)

    def detect(self, image: Any, color: str = "rgb") -> Result:
        """Every face in `image` (path, bytes, PIL image or numpy array) with its emotion.

        A 3- or 4-channel numpy array is read as RGB(A) unless `color="bgr"` (OpenCV frames).
        Raises `emodetect.vision.images.ImageError` when the image cannot be used.
        """
        rgb = load_image(image, self.max_pixels, color=color)
        source = str(image) if isinstance(image, (str, Path)) else None
        return self.detect_rgb(rgb, source)

    def detect_rgb(self, rgb: np.ndarray, source: str | None = None) -> Result:
        """`detect` for an image already decoded to RGB uint8 (video frames come this way)."""
        return self.detect_with_crops(rgb, source)[0]

    def detect_with_crops(self, rgb: np.ndarray, source: str | None = None) -> tuple[Result, list[Detection], np.ndarray]:
        """`detect_rgb`, with the detections and the 48x48 crops the model read (explanations
        start from them)."""
        detections = self.face_detector.detect(rgb)
        crops = self.crops(rgb, detections)
        faces = self.classify_with(rgb, detections, None, self.predict_crops(crops)) if detections else []
        return (Result(width=rgb.shape[1], height=rgb.shape[0], model=self.model_name, detector=self.detector_name,
                       faces=faces, source=source, image=rgb), detections, crops)

    def explain(self, image: Any, emotion: str | None = None, method: str = "rise", color: str = "rgb",
                progress: Callable[[int, int], None] | None = None, max_faces: int | None = None,
                accurate: bool = False):
        """Every face of `image` with a saliency map of what made the model read its emotion (or
        `emotion`): an `emodetect.vision.explain.Explanation`, from the ONNX model alone;
        `progress(done, faces)` after each face; past `max_faces` (the largest first), faces come
        back in `unexplained`, without a map. `accurate`: 4x the masks and the time, a finer map."""
        from emodetect.vision.explain import explain_faces

        return explain_faces(self, image, emotion, method, color, progress, max_faces, accurate)

    def classify(self, rgb: np.ndarray, detections: list[Detection], ids: list[int] | None = None) -> list[Face]:
        """Crop every detection FER-2013 style and classify them in one batch."""
        if not detections:
            return []
        probabilities = self.predict_crops(self.crops(rgb, detections))
        return self.classify_with(rgb, detections, ids, probabilities)

    def classify_with(self, rgb: np.ndarray, detections: list[Detection], ids: list[int] | None,
                      probabilities: np.ndarray) -> list[Face]:
        """Faces from detections and probabilities computed elsewhere (e.g. smoothed over time)."""
        ids = list(range(len(detections))) if ids is None else ids
        height, width = rgb.shape[:2]
        faces = []
        for face_id, d, probs in zip(ids, detections, probabilities):
            top = int(np.argmax(probs))
            faces.append(Face(id=int(face_id), box=_clip_box(d, width, height), score=float(d.score),
                              label=self.labels[top], confidence=float(probs[top]),
                              probabilities={label: float(p) for label, p in zip(self.labels, probs)}))
        return faces

    def crops(self, rgb: np.ndarray, detections: list[Detection]) -> np.ndarray:
        """N x 48 x 48 grey uint8 crops, framed as FER-2013 frames its faces."""
        import cv2

        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if not detections:
            return np.zeros((0, FACE_SIZE, FACE_SIZE), np.uint8)
        return np.stack([crop_face(grey, d, self.framing) for d in detections])

    def predict_crops(self, crops: np.ndarray) -> np.ndarray:
        """N x 7 probabilities for N x 48 x 48 grey crops (one onnxruntime call)."""
        return self._model.predict(crops[:, None].astype(np.float32))


def _clip_box(d: Detection, width: int, height: int) -> Box:
    x0, y0 = max(0, int(round(d.x))), max(0, int(round(d.y)))
    x1, y1 = min(width, int(round(d.x + d.width))), min(height, int(round(d.y + d.height)))
    return Box(x0, y0, max(0, x1 - x0), max(0, y1 - y0))


# The face engine's former name: programs written against it keep working.
EmotionDetector = FaceEmotion
