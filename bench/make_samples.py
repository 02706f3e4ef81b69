"""Build emodetect/assets/samples/group.jpg (5 faces, 40 to 160 px) and labels.json from the three
public-domain / CC0 sample photos, so that tests and benchmarks have a many-face image with known
boxes. The face boxes in the source photos were drawn by hand (checked by eye on a plot).

    python bench/make_samples.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

SAMPLES = Path(__file__).resolve().parent.parent / "emodetect" / "assets" / "samples"
# Hand-labelled face boxes (x, y, width, height: brow to chin, ear to ear) in the source photos.
SOURCE_FACES = {
    "astronaut.jpg": (176, 56, 94, 120),
    "grace_hopper.jpg": (170, 110, 180, 220),
    "cameraman.png": (193, 110, 66, 90),
}
# Photos with no human face (a cat's face, a cup, a rocket): false positives show up here.
NO_FACE = ("chelsea_cat.jpg", "coffee.jpg", "rocket.jpg")
# (source, height of the pasted photo, left, top, mirrored) on a 960 x 640 canvas.
LAYOUT = [
    ("grace_hopper.jpg", 440, 20, 100, False),
    ("astronaut.jpg", 300, 300, 20, False),
    ("cameraman.png", 340, 620, 280, False),
    ("astronaut.jpg", 200, 330, 400, True),
    ("grace_hopper.jpg", 180, 700, 30, True),
]


def scaled_box(box, scale, offset, width, mirrored):
    x, y, w, h = box
    if mirrored:
        x = width - x - w
    return [round(offset[0] + x * scale), round(offset[1] + y * scale), round(w * scale), round(h * scale)]


def make_group() -> tuple[np.ndarray, list[list[int]]]:
    rng = np.random.default_rng(0)
    canvas = np.full((640, 960, 3), 90, np.uint8) + rng.integers(0, 30, (640, 960, 3), dtype=np.uint8)
    boxes = []
    for name, height, left, top, mirrored in LAYOUT:
        photo = Image.open(SAMPLES / name).convert("RGB")
        if mirrored:
            photo = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        scale = height / photo.height
        small = np.asarray(photo.resize((round(photo.width * scale), height), Image.Resampling.LANCZOS))
        h, w = small.shape[:2]
        h, w = min(h, 640 - top), min(w, 960 - left)
        canvas[top:top + h, left:left + w] = small[:h, :w]
        boxes.append(scaled_box(SOURCE_FACES[name], scale, (left, top), photo.width, mirrored))
    return canvas, boxes


def main() -> None:
    canvas, boxes = make_group()
    Image.fromarray(canvas).save(SAMPLES / "group.jpg", quality=90)
    labels = {name: [list(box)] for name, box in SOURCE_FACES.items()}
    labels["group.jpg"] = boxes
    labels.update({name: [] for name in NO_FACE})
    (SAMPLES / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    print(json.dumps(labels))


if __name__ == "__main__":
    main()
