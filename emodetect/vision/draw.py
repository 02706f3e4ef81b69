"""Drawing boxes, labels and privacy blur on images (RGB uint8 in, RGB uint8 out)."""

from __future__ import annotations

from typing import Iterable

import numpy as np

# One colour per emotion (RGB), so that a glance at a crowded picture reads the mood.
COLOURS: dict[str, tuple[int, int, int]] = {
    "angry": (230, 40, 40), "disgust": (120, 160, 30), "fear": (150, 60, 200), "happy": (250, 200, 0),
    "sad": (40, 110, 230), "surprise": (250, 120, 0), "neutral": (200, 200, 200),
    # The voice models' own classes (labels.VOICE_ONLY).
    "calm": (40, 170, 160), "boredom": (140, 105, 75),
}
# Labels with no colour of their own (GoEmotions' 28): muted tones none of the above uses.
OTHER_COLOURS = [(90, 90, 90), (170, 120, 160), (110, 140, 170), (160, 150, 100), (100, 160, 120)]
# A probability axis: 0 and 1 a little inside the frame, so a line at 0.999 is not drawn under
# the frame's top line (a text cue at 0.999 vanished from the video timeline; issue 32).
PROBABILITY_LIMITS = (-0.04, 1.04)


def plot_colour(label: str) -> tuple[float, float, float]:
    """The colour of `label` in every plot, 0..1 RGB for matplotlib: the face boxes' colour of its
    emotion ("joy" and "happiness" are happy's yellow), else a muted tone fixed by the name."""
    from emodetect.labels import SYNONYMS

    key = label.strip().lower()
    rgb = COLOURS.get(key) or COLOURS.get(SYNONYMS.get(key, ""))
    if rgb is None:
        rgb = OTHER_COLOURS[sum(map(ord, key)) % len(OTHER_COLOURS)]
    return (rgb[0] / 255.0, rgb[1] / 255.0, rgb[2] / 255.0)


def blur_region(image: np.ndarray, x: int, y: int, width: int, height: int) -> None:
    """Make a region unrecognisable in place: coarse pixelation, then a blur to hide the blocks.

    Pixelation to about 6 blocks across throws the identity away (a Gaussian blur alone can be
    partly undone); the region is grown by 10% so that the face's outline goes too.
    """
    import cv2

    h, w = image.shape[:2]
    grow_x, grow_y = int(0.1 * width), int(0.1 * height)
    x0, y0 = max(0, x - grow_x), max(0, y - grow_y)
    x1, y1 = min(w, x + width + grow_x), min(h, y + height + grow_y)
    if x1 <= x0 or y1 <= y0:
        return
    region = image[y0:y1, x0:x1]
    blocks = cv2.resize(region, (6, 6), interpolation=cv2.INTER_AREA)
    coarse = cv2.resize(blocks, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
    k = max(3, (min(x1 - x0, y1 - y0) // 4) | 1)
    image[y0:y1, x0:x1] = cv2.GaussianBlur(coarse, (k, k), 0)


def draw_faces(image: np.ndarray, faces: Iterable, blur: bool = False, extra_text: str | None = None) -> np.ndarray:
    """A copy of `image` with each face's box and "#id emotion 87%" drawn; faces blurred if asked."""
    import cv2

    canvas = np.ascontiguousarray(image.copy())
    faces = list(faces)
    if blur:
        for face in faces:
            blur_region(canvas, face.box.x, face.box.y, face.box.width, face.box.height)
    thickness = max(1, round(max(canvas.shape[:2]) / 400))
    font_scale = max(0.4, max(canvas.shape[:2]) / 1000)
    for face in faces:
        b = face.box
        colour = COLOURS.get(face.label, (0, 255, 0))
        cv2.rectangle(canvas, (b.x, b.y), (b.x + b.width, b.y + b.height), colour, thickness)
        text = f"#{face.id} {face.label} {face.confidence:.0%}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        ty = b.y - 4 if b.y - th - base - 4 > 0 else b.y + b.height + th + 4
        cv2.rectangle(canvas, (b.x, ty - th - base), (b.x + tw + 4, ty + base // 2), colour, -1)
        cv2.putText(canvas, text, (b.x + 2, ty - base // 2), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                    (0, 0, 0), thickness, cv2.LINE_AA)
    if extra_text:
        cv2.putText(canvas, extra_text, (8, int(30 * font_scale) + 8), cv2.FONT_HERSHEY_SIMPLEX,
                    font_scale, (255, 255, 255), thickness + 1, cv2.LINE_AA)
    return canvas
