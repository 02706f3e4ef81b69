"""Numpy metrics: F1 per label, macro-F1, multi-label decisions and their tuned thresholds.

The one place F1 is computed (reports, threshold tuning, model selection during training, text
ensembles): no torch, no matplotlib, so the training loop, the exporter and the inference-side
ensembles read it without reaching up to `evaluate`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


THRESHOLD_GRID = np.arange(0.02, 0.96, 0.01)
SHRINKS = (0.0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def tune_thresholds(probs: np.ndarray, truth: np.ndarray, grid: np.ndarray = THRESHOLD_GRID,
                    shrink: float = 1.0) -> np.ndarray:
    """Per-label decision thresholds that maximise each label's F1 (use validation data only).
    `shrink` < 1 pulls each towards the one threshold that maximises macro-F1 over all labels
    (0: that one for every label): a rare label's own best, tuned on a dozen examples, is noise."""
    own, common = _threshold_candidates(probs, truth, grid)
    return shrink * own + (1 - shrink) * common


def _threshold_candidates(probs: np.ndarray, truth: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, float]:
    """Each label's F1-best threshold on the grid, and the grid's macro-F1-best common threshold."""
    truth = np.asarray(truth) > 0.5
    best = np.full(truth.shape[1], 0.5)
    best_f1 = np.full(truth.shape[1], -1.0)
    common, common_f1 = 0.5, -1.0
    for t in grid:
        f1 = f1_table(truth, probs >= t)[2]
        better = f1 > best_f1
        best[better], best_f1[better] = t, f1[better]
        if f1.mean() > common_f1:
            common, common_f1 = float(t), float(f1.mean())
    return best, common


def cross_fitted_thresholds(probs: np.ndarray, truth: np.ndarray, shrinks: Sequence[float] = SHRINKS,
                            repeats: int = 10, seed: int = 0) -> tuple[np.ndarray, float, dict[float, float]]:
    """Thresholds tuned on all rows at the `shrink` (tune_thresholds) that did best on rows it was
    not tuned on: `repeats` random halvings, each half tuned and scored (macro-F1) on the other.
    Returns the thresholds, the shrink chosen and each shrink's held-out macro-F1, so the figure a
    choice was made on is an honest one, not the tuning rows' own."""
    truth = np.asarray(truth) > 0.5
    rng = np.random.default_rng(seed)
    scores: dict[float, list[float]] = {float(a): [] for a in shrinks}
    for _ in range(repeats):
        order = rng.permutation(len(truth))
        halves = order[: len(order) // 2], order[len(order) // 2:]
        for tune, score in (halves, halves[::-1]):
            own, common = _threshold_candidates(probs[tune], truth[tune], THRESHOLD_GRID)
            for a in scores:
                pred = multilabel_predictions(probs[score], a * own + (1 - a) * common)
                scores[a].append(float(f1_table(truth[score], pred)[2].mean()))
    held_out = {a: round(float(np.mean(v)), 4) for a, v in scores.items()}
    chosen = max(held_out, key=lambda a: (held_out[a], a))  # ties: the label's own threshold
    return tune_thresholds(probs, truth, shrink=chosen), chosen, held_out


def multilabel_predictions(probs: np.ndarray, thresholds: np.ndarray | list[float] | float = 0.5) -> np.ndarray:
    """Labels at or above their thresholds; a row with none gets its most probable label."""
    pred = probs >= np.asarray(thresholds)
    pred[np.arange(len(probs)), probs.argmax(1)] |= ~pred.any(1)
    return pred


def f1_table(truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-label precision, recall, F1 and support from N x C boolean truth and predictions: the
    one place F1 is computed (reports, threshold tuning, model selection)."""
    truth, pred = np.asarray(truth, dtype=bool), np.asarray(pred, dtype=bool)
    tp = (pred & truth).sum(0).astype(float)
    predicted, actual = pred.sum(0), truth.sum(0)
    precision = np.divide(tp, predicted, out=np.zeros(len(tp)), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros(len(tp)), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(len(tp)), where=denom > 0)
    return precision, recall, f1, actual


def macro_f1(truth: np.ndarray, pred: np.ndarray, f1: np.ndarray) -> tuple[float, int]:
    """Mean F1 over the classes present in the truth or the predictions, and how many those are:
    scikit-learn's convention (f1_score, average="macro"). A class predicted but never true counts
    with F1 0; leaving it out, as before, put macro-F1 above accuracy while the table showed the
    false positives. A class in neither is left out: it says nothing about this data."""
    counted = np.asarray(truth, dtype=bool).any(0) | np.asarray(pred, dtype=bool).any(0)
    return (float(f1[counted].mean()) if counted.any() else 0.0), int(counted.sum())
