"""Model registry: each architecture is a function registered by name, built with create_model.

Each modality's `architectures` module (the modality table) registers its networks, so the
registry knows every model's modality from its name, as timm knows a model's family.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from emodetect.errors import ModelNotFoundError

_MODELS: dict[str, Callable[..., Any]] = {}


def register_model(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register an architecture under its function name."""
    if fn.__name__ in _MODELS:
        raise ValueError(f"model {fn.__name__!r} is registered twice")
    _MODELS[fn.__name__] = fn
    return fn


def _import_families() -> None:
    from emodetect.modalities import modalities

    for modality in modalities():
        importlib.import_module(modality.architectures)


def list_models() -> list[str]:
    _import_families()
    return sorted(_MODELS)


def model_modality(name: str) -> str | None:
    """The modality whose architectures module registered `name` (None: registered elsewhere,
    e.g. by a script)."""
    from emodetect.modalities import modalities

    _import_families()
    if name not in _MODELS:
        raise ModelNotFoundError(f"unknown model {name!r}; registered: {sorted(_MODELS)}")
    module = _MODELS[name].__module__
    return next((m.name for m in modalities() if m.architectures == module), None)


def create_model(name: str, **kwargs: Any) -> Any:
    """Build a registered architecture, e.g. create_model("vgg_fer", num_classes=7)."""
    _import_families()
    if name not in _MODELS:
        raise ModelNotFoundError(f"unknown model {name!r}; registered: {sorted(_MODELS)}")
    return _MODELS[name](**kwargs)
