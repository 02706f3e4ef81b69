"""A training checkpoint as one typed object: what rebuilds the model, and what resumes its run.

`Checkpoint.read(path)` reads best.pt and last.pt (and those older versions wrote: a missing
field takes the value those versions meant); `save` writes the same layout back, atomically with
a sha256 beside it; `build_model` rebuilds the network in eval mode, as nanoGPT's `sample.py`
does from `model_args`. The file layout is unchanged (a dict of plain values and tensors), so runs
started by an older emodetect resume, and are exported and evaluated, as before.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emodetect.errors import DataError
from emodetect.labels import EMOTIONS


@dataclass
class TrainingState:
    """What last.pt adds to the model, so that a killed run continues where it stopped."""

    model: dict[str, Any]  # the raw weights (the EMA, when there is one, is the checkpoint's `weights`)
    ema: dict[str, Any] | None
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    best_score: float  # the best validation score so far, and its epoch (1-based)
    best_epoch: int
    history: list[dict[str, Any]] = field(default_factory=list)  # one EpochLog dict per epoch


@dataclass
class Checkpoint:
    """A model checkpoint: best.pt (weights to keep) or last.pt (with `training`, to resume)."""

    config: dict[str, Any]  # the TrainConfig of the run, as a dict (asdict)
    modality: str
    model_name: str  # the registered architecture
    labels: list[str]
    weights: dict[str, Any]  # what evaluation and export use: best.pt's, else the EMA, else the raw weights
    num_classes: int  # the logits' width (every head's labels)
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. a text model's vocab_size
    extras: dict[str, Any] = field(default_factory=dict)  # vocabulary, heads, features: into the ONNX metadata
    multilabel: bool = False
    epoch: int = 0  # the 0-based epoch it was written after
    score: float = math.nan  # the validation score of these weights (best.pt; NaN for last.pt)
    training: TrainingState | None = None
    path: Path | None = None  # the file it was read from

    @classmethod
    def from_dict(cls, state: dict[str, Any], path: Path | None = None) -> "Checkpoint":
        """The checkpoint a torch.load'ed dict holds (any emodetect version's layout)."""
        config = dict(state.get("config") or {})
        training = None
        if "optimizer" in state:
            training = TrainingState(state["model"], state.get("ema"), state["optimizer"], state["scheduler"],
                                     state.get("best_acc", -1.0), state.get("best_epoch", -1),
                                     list(state.get("history") or []))
        labels = list(state.get("labels") or EMOTIONS)
        return cls(config=config, modality=config.get("modality") or "vision", model_name=state["model_name"],
                   labels=labels, weights=state.get("weights") or state.get("ema") or state["model"],
                   num_classes=int(state.get("num_classes") or len(labels)),
                   model_kwargs=dict(state.get("model_kwargs") or {}), extras=dict(state.get("extras") or {}),
                   multilabel=bool(state.get("multilabel")), epoch=int(state.get("epoch", 0)),
                   score=float(state.get("val_acc", math.nan)), training=training, path=path)

    def to_dict(self) -> dict[str, Any]:
        """The layout on disk: best.pt holds `weights` and `val_acc`, last.pt the training state."""
        out: dict[str, Any] = {"config": self.config, "model_name": self.model_name, "num_classes": self.num_classes,
                               "labels": list(self.labels), "model_kwargs": self.model_kwargs,
                               "extras": self.extras, "multilabel": self.multilabel}
        if self.training is None:
            return out | {"epoch": self.epoch, "weights": self.weights, "val_acc": self.score}
        t = self.training
        return out | {"model": t.model, "ema": t.ema, "optimizer": t.optimizer, "scheduler": t.scheduler,
                      "epoch": self.epoch, "best_acc": t.best_score, "best_epoch": t.best_epoch,
                      "history": t.history}

    @classmethod
    def read(cls, path: str | Path) -> "Checkpoint":
        """A checkpoint file, or a DataError that names the file and what is wrong with it."""
        path = Path(path)
        return cls.from_dict(read_state(path), path)

    def save(self, path: str | Path) -> Path:
        """Write then rename, so a kill mid-save never leaves a broken checkpoint behind; a sha256
        beside it (`<name>.sha256`) lets a later read tell a damaged file from a good one."""
        import torch

        path = Path(path)
        buffer = io.BytesIO()
        torch.save(self.to_dict(), buffer)
        data = buffer.getvalue()
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        checksum = path.with_name(path.name + ".sha256")
        checksum_tmp = checksum.with_suffix(".tmp256")
        checksum_tmp.write_text(hashlib.sha256(data).hexdigest() + "\n")
        os.replace(tmp, path)
        os.replace(checksum_tmp, checksum)
        return path

    def build_model(self) -> Any:
        """The network with these weights, in eval mode (a torch.nn.Module)."""
        from emodetect.registry import create_model

        model = create_model(self.model_name, num_classes=self.num_classes, **self.model_kwargs)
        model.load_state_dict(self.weights)
        return model.eval()


def read_state(path: Path) -> dict[str, Any]:
    """The dict a checkpoint file holds, checked against its sha256 and for weights."""
    import torch

    if not path.is_file():
        raise DataError(f"{path}: no such checkpoint", "missing")
    data = path.read_bytes()
    if not data:
        raise DataError(f"{path}: empty checkpoint (0 bytes); delete it to start over", "empty")
    checksum = path.with_name(path.name + ".sha256")
    if checksum.is_file() and checksum.read_text().strip() != hashlib.sha256(data).hexdigest():
        raise DataError(f"{path}: damaged checkpoint (its sha256 does not match {checksum.name}); "
                        "restore a copy or delete it to start over")
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    except Exception as err:  # torch and pickle raise many types on bad bytes
        raise DataError(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(state, dict) or not ({"weights", "model"} & set(state)):
        raise DataError(f"{path}: not an emodetect checkpoint (no weights in it)")
    return state


def as_checkpoint(checkpoint: str | Path | dict[str, Any] | Checkpoint) -> Checkpoint:
    """A Checkpoint from a path, an already read one, or the dict an older caller holds."""
    if isinstance(checkpoint, Checkpoint):
        return checkpoint
    if isinstance(checkpoint, dict):
        return Checkpoint.from_dict(checkpoint)
    return Checkpoint.read(checkpoint)
