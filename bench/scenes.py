"""640x480 test frames with faces of known size and place, made from the shipped sample photos.

Shared by bench/face_detectors.py and bench/pipeline.py. Each face is one of the three sample
portraits (hand-labelled boxes in emodetect/assets/samples/labels.json), scaled so that its box
height is the size asked for, maybe mirrored, and pasted on a noise background.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

SAMPLES = Path(__file__).resolve().parent.parent / "emodetect" / "assets" / "samples"
PORTRAITS = ("astronaut.jpg", "grace_hopper.jpg", "cameraman.png")
NO_FACE = ("chelsea_cat.jpg", "coffee.jpg", "rocket.jpg")


def labels() -> dict[str, list[list[int]]]:
    return json.loads((SAMPLES / "labels.json").read_text())


def make_frame(face_heights: list[int], seed: int = 0, size: tuple[int, int] = (640, 480)) -> tuple[np.ndarray, list[list[int]]]:
    """An RGB frame holding one face per entry of `face_heights` (pixels), and their boxes.

    Each pasted portrait keeps a margin of 0.6 face heights of its own photo around the face (hair,
    neck, background), as a face in a real scene has; faces are placed left to right without
    overlapping.
    """
    width, height = size
    rng = np.random.default_rng(seed)
    frame = (rng.normal(110, 25, (height, width, 3))).clip(0, 255).astype(np.uint8)
    truth = labels()
    boxes: list[list[int]] = []
    x_cursor = 4
    slots = _slots(face_heights, width)
    for k, face_h in enumerate(face_heights):
        name = PORTRAITS[(seed + k) % len(PORTRAITS)]
        photo = Image.open(SAMPLES / name).convert("RGB")
        fx, fy, fw, fh = truth[name][0]
        if rng.random() < 0.5:
            photo = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            fx = photo.width - fx - fw
        scale = face_h / fh
        margin = 0.6 * fh
        left, top = max(0, fx - margin), max(0, fy - margin)
        right, bottom = min(photo.width, fx + fw + margin), min(photo.height, fy + fh + margin)
        patch = photo.crop((round(left), round(top), round(right), round(bottom)))
        pw, ph = max(1, round(patch.width * scale)), max(1, round(patch.height * scale))
        patch = np.asarray(patch.resize((pw, ph), Image.Resampling.LANCZOS))
        slot = slots[k]
        x0 = int(min(max(x_cursor, slot), width - pw))
        y0 = int(rng.integers(0, max(1, height - ph)))
        pw, ph = min(pw, width - x0), min(ph, height - y0)
        frame[y0:y0 + ph, x0:x0 + pw] = patch[:ph, :pw]
        x_cursor = x0 + pw + 2
        boxes.append([round(x0 + (fx - left) * scale), round(y0 + (fy - top) * scale),
                      round(fw * scale), round(fh * scale)])
    return frame, boxes


def _slots(face_heights: list[int], width: int) -> list[int]:
    """Left edges spreading the patches over the frame's width."""
    patch_w = [int(h * 2.0) for h in face_heights]
    if sum(patch_w) + 4 * len(patch_w) > width:
        raise ValueError(f"faces of heights {face_heights} do not fit side by side in {width} px")
    free = width - sum(patch_w) - 4 * len(patch_w)
    gap = free / (len(patch_w) + 1)
    out, x = [], gap
    for w in patch_w:
        out.append(int(x))
        x += w + gap
    return out
