"""Knowledge distillation for face models: training targets mixed with a teacher's answers.

`emodetect train --teacher MODEL` reads every training face once with the teacher (a bundled face
model or an ONNX file with the same seven labels, an ensemble included), unaugmented, and the
student fits `distill` x teacher + (1 - distill) x label on every augmented view of that face: the
teacher's graded answers carry what a one-hot label cannot (a face between fear and surprise).
"""

from __future__ import annotations

import logging

import numpy as np

from emodetect.errors import DataError, EmodetectError
from emodetect.labels import EMOTIONS

log = logging.getLogger(__name__)

BATCH = 256  # faces per onnxruntime call: a 28,709-face split in one call would hold GBs of activations


def distill_targets(teacher: str, images: np.ndarray, targets: np.ndarray, weight: float,
                    threads: int = 0) -> np.ndarray:
    """`weight` x the teacher's probabilities + (1 - weight) x `targets` (N x 7 rows, one-hot or
    FER+ vote shares) for N x 48 x 48 grey faces."""
    from tqdm import tqdm

    from emodetect.runtime import load_model

    if not 0.0 <= weight <= 1.0:
        raise DataError(f"--distill {weight}: the teacher's share must be between 0 and 1")
    try:
        model = load_model(teacher, "vision", threads)
    except (OSError, ValueError, KeyError, EmodetectError) as err:
        raise DataError(f"--teacher {teacher}: {err.args[0] if err.args else err}") from err
    labels = tuple(model.labels or EMOTIONS)
    if labels != EMOTIONS:
        raise DataError(f"--teacher {teacher} answers in other labels than the face data: "
                        f"{', '.join(labels)}; the data's {', '.join(EMOTIONS)}")
    log.info("teacher %s: reading %d training faces (distill %g)", teacher, len(images), weight)
    parts = [model.predict(images[start:start + BATCH, None].astype(np.float32))
             for start in tqdm(range(0, len(images), BATCH), desc="teacher", unit="batch", leave=False)]
    taught = np.concatenate(parts) if parts else np.zeros((0, len(EMOTIONS)), np.float32)
    agree = float((taught.argmax(1) == targets.argmax(1)).mean()) if len(taught) else 0.0
    log.info("teacher %s agrees with the training labels on %.3f of the faces", teacher, agree)
    return ((1.0 - weight) * targets + weight * taught).astype(np.float32)
