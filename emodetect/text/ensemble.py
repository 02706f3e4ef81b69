"""Text ensembles: several text models with the same labels and heads read every text, and their
probabilities are averaged.

Models that read text differently (a word CNN and a WordPiece encoder) make different mistakes,
so their average is more accurate than either: the fast default and `minilm-int8` together gain
on the GoEmotions and ISEAR heads (docs/text.md, "Ensembles"). An ensemble is a small
JSON file (`*.ensemble.json`) naming its members and weights, with the multi-label thresholds
tuned on validation for the average (an average is less peaked than its members, so their own
thresholds no longer fit). `TextEmotion("accurate")` or `TextEmotion("my.ensemble.json")` opens
one like any model; `emodetect ensemble` writes one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence


from emodetect.errors import DataError, InputError
from emodetect.heads import segments
from emodetect.runtime import ENSEMBLE_SUFFIX as SUFFIX
# The reading side lives with TextEmotion (which opens an ensemble as a TextEnsemble); these names
# stay importable from here.
from emodetect.text.pipeline import (TextEmotion, TextEnsemble, check_members, ensemble_path,  # noqa: F401
                                     layout, member_path, read_spec)


def parse_head_weight(option: str) -> tuple[str, list[float]]:
    """`HEAD=W1,W2,...` (the ensemble command's --head-weight) as the head and its weights; an
    InputError saying how to write it otherwise."""
    head, _, values = option.partition("=")
    try:
        weights = [float(v) for v in values.split(",")]
    except ValueError:
        weights = []
    if not head.strip() or not weights:
        raise InputError(f"--head-weight {option}: write HEAD=W1,W2,... (one number per member)")
    return head.strip(), weights


def check_weights(weights: Sequence[float], count: int, option: str) -> None:
    if len(weights) != count or min(weights) < 0 or sum(weights) <= 0:
        raise DataError(f"{option} {list(weights)}: one weight per member ({count}), none negative, not all zero")


def make_ensemble(members: Sequence[str], data: str | Path, out: str | Path, name: str,
                  weights: Sequence[float] | None = None, val_split: str = "validation",
                  threads: int = 0, head_weights: dict[str, Sequence[float]] | None = None) -> Path:
    """Write an ensemble file: the members (bundled names or ONNX files), their weights (equal by
    default; `head_weights` gives a head its own, {"goemotions": [0.4, 0.6]}, "main" the main
    head's) and each multi-label head's per-label thresholds tuned on `val_split` of `data` (a
    text CSV with the heads' columns, as training reads it) for the weighted average. An existing
    file at `out` is replaced only once the new one is complete."""
    from emodetect import __version__

    weights = list(weights) if weights else [1.0] * len(members)
    check_weights(weights, len(members), "--weight")
    head_weights = {head: list(w) for head, w in (head_weights or {}).items()}
    for head, w in head_weights.items():
        check_weights(w, len(members), f"--head-weight {head}=")
    out = Path(out)
    if not out.name.endswith(SUFFIX):
        raise DataError(f"{out}: an ensemble file's name ends in {SUFFIX}")
    out.parent.mkdir(parents=True, exist_ok=True)
    written = [os.path.relpath(m, out.parent) if Path(m).is_file() else m for m in members]
    spec: dict[str, Any] = {"name": name, "modality": "text",
                            "members": [{"model": m, "weight": float(w)} for m, w in zip(written, weights)]}
    for k, member in enumerate(spec["members"]):
        if head_weights:
            member["heads"] = {head: float(w[k]) for head, w in head_weights.items()}
    draft = out.with_name("." + out.name)  # beside `out`, so member paths resolve the same
    draft.write_text(json.dumps(spec, indent=1) + "\n")
    try:
        ensemble = TextEmotion(draft, threads=threads)  # checks the members
        thresholds, shrinks = tuned_thresholds(ensemble, data, val_split)
        shares = " + ".join(f"{m} ({w:.2g})" for m, w in zip(members, ensemble.weights))
        if head_weights:
            shares += "; " + "; ".join(f"{head}: " + " + ".join(f"{v / sum(w):.2g}" for v in w)
                                       for head, w in head_weights.items())
        trained = "; ".join(dict.fromkeys(m.model.metadata.get("training_data", "?") for m in ensemble.members))
        spec.update(thresholds=thresholds, threshold_shrink=shrinks, labels=list(ensemble.labels), metadata={
            "architecture": f"ensemble: {shares}", "emodetect_version": __version__, "name": name,
            "modality": "text", "precision": "as its members", "input": "texts (each member tokenises them its own way)",
            "training_data": f"{trained}; thresholds tuned on {Path(data).name} [{val_split}]"})
        draft.write_text(json.dumps(spec, indent=1) + "\n")
        draft.replace(out)
    finally:
        draft.unlink(missing_ok=True)
    return out


def tuned_thresholds(ensemble: TextEnsemble, data: str | Path,
                     val_split: str) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Each multi-label head's per-label thresholds for the ensemble's average, tuned on the
    texts of `val_split` labelled in that head (the data's head of that name, same labels), each
    pulled towards the head's common threshold as far as held-out halves of those texts say
    (evaluate.cross_fitted_thresholds); and how far, per head."""
    from emodetect.metrics import cross_fitted_thresholds
    from emodetect.text.corpus import load_texts

    val = load_texts(data, val_split)
    if not len(val):
        raise DataError(f"{data}: no rows in split {val_split!r} to tune the thresholds on")
    probs = ensemble.probabilities(val.texts)
    thresholds: dict[str, list[float]] = {}
    shrinks: dict[str, float] = {}
    for seg in segments(ensemble.labels, ensemble.multilabel, ensemble.head_specs):
        if seg.multilabel:
            known, targets = val.labelled_in(seg.name or "main", seg.labels)
            tuned, shrinks[seg.name or "main"], _ = cross_fitted_thresholds(probs[known, seg.start:seg.stop], targets)
            thresholds[seg.name or "main"] = [round(float(t), 3) for t in tuned]
    return thresholds, shrinks
