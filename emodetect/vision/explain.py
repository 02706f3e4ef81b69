"""Why the face model decided: saliency maps over each 48x48 crop, from the ONNX model alone.

Two black-box methods, each one batched onnxruntime call per face, no torch:
- `rise` (Petsiuk et al. 2018), the default: random coarse masks (32, or 128 when accurate); a pixel's saliency is the
  mean probability of the masked crops that kept it, minus the mean of all of them.
- `occlusion`: an 8 px grey square slides over the crop in 8 px steps (4 when accurate); a pixel's saliency is how
  much the chosen emotion's probability drops, on average, when the squares covering it are hidden.
bench/explain.py measures both with a deletion test (hide the most salient pixels first: the
faster the probability falls, the more faithful the map); the README gives the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from emodetect.errors import InputError
from emodetect.results import ResultReaders, rounded
from emodetect.vision.faces import FACE_SIZE

METHODS = ("rise", "occlusion")  # the first is the default: it won the deletion test


def occlusion_masks(size: int = FACE_SIZE, patch: int = 8, stride: int = 4) -> np.ndarray:
    """K x size x size masks, 0 where a square patch is hidden, 1 elsewhere."""
    starts = range(0, size - patch + 1, stride)
    masks = np.ones((len(starts) ** 2, size, size), np.float32)
    for k, (y, x) in enumerate((y, x) for y in starts for x in starts):
        masks[k, y:y + patch, x:x + patch] = 0.0
    return masks


# 128 masks of 8 x 8 cells: on 40 PrivateTest faces (realtime-int8) the deletion area was 0.284,
# against 0.342 for 64 masks of 6 x 6, 0.281 for 256 masks (twice the time), 0.447 at random.
def rise_masks(count: int = 128, cells: int = 8, keep: float = 0.5, size: int = FACE_SIZE, seed: int = 0) -> np.ndarray:
    """K random masks: a cells x cells grid of kept/hidden cells, upsampled smoothly and shifted."""
    import cv2

    rng = np.random.default_rng(seed)
    cell = int(np.ceil(size / cells))
    up = (cells + 1) * cell
    masks = np.empty((count, size, size), np.float32)
    for k in range(count):
        grid = (rng.random((cells + 1, cells + 1)) < keep).astype(np.float32)
        big = cv2.resize(grid, (up, up), interpolation=cv2.INTER_LINEAR)
        dy, dx = rng.integers(0, cell, 2)
        masks[k] = big[dy:dy + size, dx:dx + size]
    return masks


# Masks a map is made of (`explanation_masks`): the default, fast, is a quarter of the accurate
# set and takes a quarter of the time (`explain` took 30 s for five faces with the default model;
# issue 32). On 40 PrivateTest faces (realtime-int8; deletion area, lower is more faithful):
# RISE 32 masks 0.355 in 368 ms a face, 64 masks 0.329, 128 masks 0.284 in 1,189 ms; occlusion
# at an 8 px stride (36 squares) 0.368; random pixels 0.447. The fast map finds the same regions;
# the accurate one draws them finer.
FAST_RISE_MASKS, ACCURATE_RISE_MASKS = 32, 128
FAST_OCCLUSION_STRIDE, ACCURATE_OCCLUSION_STRIDE = 8, 4


def explanation_masks(method: str, accurate: bool = False) -> np.ndarray:
    """The masks `explain` uses: the fast set by default, the accurate one on request."""
    if method not in METHODS:
        raise InputError(f"unknown explanation method {method!r}; one of {', '.join(METHODS)}")
    if method == "occlusion":
        return occlusion_masks(stride=ACCURATE_OCCLUSION_STRIDE if accurate else FAST_OCCLUSION_STRIDE)
    return rise_masks(count=ACCURATE_RISE_MASKS if accurate else FAST_RISE_MASKS)


def saliency(predict: Callable[[np.ndarray], np.ndarray], crop: np.ndarray, target: int,  # predict: N x 48 x 48 -> N x C
             method: str = "rise", masks: np.ndarray | None = None) -> np.ndarray:
    """A size x size map in 0..1 of what made `predict` give class `target` to `crop` (grey uint8)."""
    if method not in METHODS:
        raise InputError(f"unknown explanation method {method!r}; one of {', '.join(METHODS)}")
    if masks is None:
        masks = occlusion_masks(crop.shape[0]) if method == "occlusion" else rise_masks(size=crop.shape[0])
    x = crop.astype(np.float32)
    fill = float(x.mean())  # hidden pixels take the crop's mean grey: no new edges, no new contrast
    batch = x[None] * masks + fill * (1.0 - masks)
    probs = predict(np.concatenate([x[None], batch]))[:, target]  # N x 48 x 48 crops
    base, masked = float(probs[0]), probs[1:]
    if method == "occlusion":
        hidden = 1.0 - masks
        drop = np.tensordot(base - masked, hidden, axes=1) / np.maximum(hidden.sum(0), 1e-6)
        heat = np.maximum(drop, 0.0)
    else:
        heat = np.tensordot(masked, masks, axes=1) / np.maximum(masks.sum(0), 1e-6) - masked.mean()
        heat = np.maximum(heat, 0.0)
    top = heat.max()
    return (heat / top if top > 0 else heat).astype(np.float32)


@dataclass
class FaceExplanation:
    """One face, the emotion explained, and its saliency over the crop (48 x 48, 0..1)."""

    face: Any  # vision.results.Face
    label: str  # the emotion explained (the face's own label unless another was asked for)
    probability: float
    crop_box: tuple[int, int, int, int]  # x, y, side in image pixels: where the 48x48 map lies
    saliency: np.ndarray = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        x, y, side = self.crop_box
        return {**self.face.to_dict(), "explained": self.label, "explained_probability": round(self.probability, 4),
                "crop_box": {"x": x, "y": y, "width": side, "height": side},
                "saliency": np.round(self.saliency, 3).tolist()}


@dataclass
class Explanation(ResultReaders):
    """Every face of an image with its saliency map; `plot()` draws the maps over the faces."""

    result: Any  # vision.results.Result
    method: str
    faces: list[FaceExplanation] = field(default_factory=list)
    # Faces past `max_faces`, with their labels but no map: each map costs about a second.
    unexplained: list[Any] = field(default_factory=list)
    accurate: bool = False  # the accurate mask set (4x the masks and the time), not the fast default

    @property
    def model(self) -> str:
        return self.result.model

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in self.result.to_dict().items() if k != "faces"}, "method": self.method,
                "accurate": self.accurate, "faces": [f.to_dict() for f in self.faces],
                "unexplained": [face.to_dict() for face in self.unexplained]}

    def to_rows(self) -> list[dict[str, Any]]:
        return [{"face_id": f.face.id, "label": f.face.label, "explained": f.label,
                 "explained_probability": round(f.probability, 4), **rounded(f.face.probabilities)}
                for f in self.faces]

    def plot(self, blur: bool = False, alpha: float = 0.55) -> np.ndarray:
        """The image with each face's saliency as a heat map over its crop square (RGB uint8)."""
        import cv2

        from emodetect.vision.draw import draw_faces

        canvas = draw_faces(self.result.image, [f.face for f in self.faces], blur=blur)
        height, width = canvas.shape[:2]
        for f in self.faces:
            x, y, side = f.crop_box
            heat = cv2.resize(f.saliency, (side, side), interpolation=cv2.INTER_CUBIC)
            colour = cv2.cvtColor(cv2.applyColorMap((np.clip(heat, 0, 1) * 255).astype(np.uint8),
                                                    cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB).astype(np.float32)
            x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + side), min(height, y + side)
            if x1 <= x0 or y1 <= y0:
                continue
            region = canvas[y0:y1, x0:x1].astype(np.float32)
            patch = colour[y0 - y:y1 - y, x0 - x:x1 - x]
            weight = alpha * np.clip(heat[y0 - y:y1 - y, x0 - x:x1 - x], 0.15, 1.0)[..., None]
            canvas[y0:y1, x0:x1] = (region * (1 - weight) + patch * weight).astype(np.uint8)
        return canvas


def explain_faces(detector: Any, image: Any, emotion: str | None = None, method: str = "rise",
                  color: str = "rgb", progress: Callable[[int, int], None] | None = None,
                  max_faces: int | None = None, accurate: bool = False) -> Explanation:
    """Detect the faces of `image` and explain each one's emotion (or `emotion` for every face).

    `accurate`: four times the masks and the time for a finer map (`explanation_masks`); the
    default, fast, finds the same regions.

    `progress(done, faces)` is called after each face: a face takes about a second with the default
    model, so a group photo is long enough to want a progress bar. With `max_faces`, only that many
    faces get a map, the largest first (the most pixels to explain); the rest come back in
    `unexplained`, labelled but without a map."""
    from emodetect.vision.faces import crop_square
    from emodetect.vision.images import load_image

    labels = list(detector.labels)
    if emotion is not None and emotion not in labels:
        raise InputError(f"unknown emotion {emotion!r}; the model's labels: {', '.join(labels)}")
    masks = explanation_masks(method, accurate)
    source = str(image) if isinstance(image, (str, Path)) else None
    result, detections, crops = detector.detect_with_crops(load_image(image, detector.max_pixels, color=color), source)
    chosen = set(range(len(result.faces)))
    if max_faces is not None and len(chosen) > max_faces:
        by_size = sorted(chosen, key=lambda i: -result.faces[i].box.width * result.faces[i].box.height)
        chosen = set(by_size[:max_faces])
    todo = [i for i in range(len(result.faces)) if i in chosen]  # kept in the detector's order
    explained = []
    for face, det, crop in ((result.faces[i], detections[i], crops[i]) for i in todo):
        target = labels.index(emotion or face.label)
        heat = saliency(detector.predict_crops, crop, target, method, masks)
        explained.append(FaceExplanation(face, labels[target], float(face.probabilities[labels[target]]),
                                         crop_square(det, detector.framing), heat))
        if progress is not None:
            progress(len(explained), len(todo))
    return Explanation(result, method, explained, [f for i, f in enumerate(result.faces) if i not in chosen],
                       accurate)
