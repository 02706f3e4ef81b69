"""Model registry: each architecture is a function registered by name, built with create_model."""

from __future__ import annotations

from typing import Any, Callable

_MODELS: dict[str, Callable[..., Any]] = {}


def register_model(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register an architecture under its function name."""
    if fn.__name__ in _MODELS:
        raise ValueError(f"model {fn.__name__!r} is registered twice")
    _MODELS[fn.__name__] = fn
    return fn


# One module per model family; importing it runs its @register_model decorators (needs torch).
FAMILY_MODULES = ("emodetect.vision.models", "emodetect.text.models", "emodetect.voice.models")


def _import_families() -> None:
    import importlib

    for module in FAMILY_MODULES:
        importlib.import_module(module)


def list_models() -> list[str]:
    _import_families()
    return sorted(_MODELS)


def create_model(name: str, **kwargs: Any) -> Any:
    """Build a registered architecture, e.g. create_model("vgg_fer", num_classes=7)."""
    _import_families()
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; registered: {sorted(_MODELS)}")
    return _MODELS[name](**kwargs)
