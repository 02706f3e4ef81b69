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

import numpy as np

from emodetect.errors import DataError
from emodetect.heads import segments
from emodetect.runtime import ENSEMBLE_SUFFIX as SUFFIX
from emodetect.text.pipeline import TextEmotion


def ensemble_path(model: str | Path) -> Path:
    """The ensemble file of a bundled name or a path."""
    if str(model).endswith(SUFFIX):
        return Path(model)
    from emodetect.runtime import bundled_model_path

    return bundled_model_path(str(model), "text")


def read_spec(path: Path) -> dict[str, Any]:
    """An ensemble file's contents; errors name the file and what is wrong."""
    try:
        spec = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such ensemble file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not an ensemble file ({err})") from None
    members = spec.get("members") if isinstance(spec, dict) else None
    if not members or not all(isinstance(m, dict) and "model" in m for m in members):
        raise ValueError(f"{path}: an ensemble file lists its members as [{{\"model\": NAME, \"weight\": W}}, ...]")
    return spec


def member_path(model: str, spec_path: Path) -> str:
    """A member file is written relative to the ensemble file; a bundled name stays a name."""
    beside = spec_path.parent / model
    return str(beside) if beside.is_file() else model


def layout(reader: Any) -> list[tuple[str, tuple[str, ...], bool]]:
    """A text model's heads as (name, labels, multi-label), main head first."""
    return [(s.name, s.labels, s.multilabel) for s in segments(reader.labels, reader.multilabel, reader.head_specs)]


def check_members(readers: Sequence[Any], names: Sequence[str]) -> None:
    """Members must answer in the same labels and heads, in the same order."""
    first = layout(readers[0])
    for reader, name in zip(readers[1:], names[1:]):
        if layout(reader) != first:
            raise ValueError(f"ensemble members {names[0]} and {name} answer in different labels or heads: "
                             f"{[h[0] or 'main' for h in first]} against {[h[0] or 'main' for h in layout(reader)]}")


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


def tuned_thresholds(ensemble: "TextEnsemble", data: str | Path,
                     val_split: str) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Each multi-label head's per-label thresholds for the ensemble's average, tuned on the
    texts of `val_split` labelled in that head (the data's head of that name, same labels), each
    pulled towards the head's common threshold as far as held-out halves of those texts say
    (evaluate.cross_fitted_thresholds); and how far, per head."""
    from emodetect.evaluate import cross_fitted_thresholds
    from emodetect.text.data import load_texts

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


class TextEnsemble(TextEmotion):
    """TextEmotion over an ensemble file: each member reads every text and the answers are the
    members' probabilities averaged with their weights. `explain` occludes the first member's
    tokens (list the word model first: its tokens are words, and it is the fast one)."""

    def __init__(self, model: str | Path, threads: int = 0):
        self.path = ensemble_path(model)
        spec = read_spec(self.path)
        names = [member_path(str(m["model"]), self.path) for m in spec["members"]]
        self.members = [TextEmotion(name, threads=threads) for name in names]
        check_members(self.members, names)
        first = self.members[0]
        self.weights = self._weights(spec, None, None)
        # Each output's columns weighted per member (a head may have weights of its own).
        self.column_weights = [np.repeat(self._weights(spec, "main", self.weights)[:, None], len(first.labels), 1)]
        if first.head_segments:
            self.column_weights.append(np.concatenate(
                [np.repeat(self._weights(spec, seg.name, self.weights)[:, None], len(seg.labels), 1)
                 for seg in first.head_segments], 1))
        unknown = {h for m in spec["members"] for h in m.get("heads", {})} - {"main", *first.heads}
        if unknown:
            raise ValueError(f"{self.path}: weights for heads {sorted(unknown)} that the members lack "
                             f"(their heads: main, {', '.join(first.heads) or '(none)'})")
        self.name = spec.get("name", self.path.name[:-len(SUFFIX)])
        self.model, self.vocab = first.model, first.vocab
        self.labels, self.multilabel, self.groups = first.labels, first.multilabel, first.groups
        self.trained_tokens, self.trim, self.max_tokens = first.trained_tokens, first.trim, first.max_tokens
        self.head_specs, self.head_segments = first.head_specs, first.head_segments
        tuned = spec.get("thresholds", {})
        self.thresholds = np.asarray(tuned.get("main", first.thresholds), dtype=np.float32)
        self.head_thresholds = [np.asarray(tuned.get(seg.name, own), dtype=np.float32) if seg.multilabel else None
                                for seg, own in zip(self.head_segments, first.head_thresholds)]

    def _weights(self, spec: dict[str, Any], head: str | None, default: np.ndarray | None) -> np.ndarray:
        """The members' weights, normalised: their own (head None) or a head's, else `default`."""
        members = spec["members"]
        if head is not None and not any(head in m.get("heads", {}) for m in members):
            return default
        if head is not None and not all(head in m.get("heads", {}) for m in members):
            raise ValueError(f"{self.path}: head {head!r} has weights for some members only; give every member one")
        weights = np.array([float(m["heads"][head] if head is not None else m.get("weight", 1.0)) for m in members])
        if (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f"{self.path}: member weights {weights.tolist()}"
                             f"{f' of head {head}' if head else ''}: none negative, not all zero")
        return weights / weights.sum()

    def extras(self) -> dict[str, Any]:
        """The first member's extras with the ensemble's own thresholds: what evaluate reads."""
        extras = dict(self.members[0].model.extras())
        if self.multilabel:
            extras["thresholds"] = self.thresholds.tolist()
        extras["heads"] = [dict(spec, thresholds=t.tolist()) if t is not None else spec
                           for spec, t in zip(self.head_specs, self.head_thresholds)]
        return extras

    def _batches(self, texts: list[str], batch_size: int, progress: bool):
        """The first member's batches, every other member reading the same texts, outputs mixed."""
        first, rest = self.members[0], self.members[1:]
        for idx, encoded, outputs in first._batches(texts, batch_size, progress):
            mixed = [w[0] * o for w, o in zip(self.column_weights, outputs)]
            batch = [texts[i] for i in idx]
            for m, member in enumerate(rest, 1):
                for k, o in enumerate(member.outputs(batch)):
                    mixed[k] = mixed[k] + self.column_weights[k][m] * o
            yield idx, encoded, mixed
