"""The HTTP service and web page behind `emodetect serve` (needs the `serve` extra).

`create_app(ServeConfig(...))` returns a FastAPI app; see `emodetect.serve.app` for how to add routes.
The names here are imported when first used (PEP 562), so that `emodetect.serve.config`, which the
command line reads to build its `serve` flags, imports no FastAPI.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ServeConfig", "create_app", "default_route_modules"]


def __getattr__(name: str) -> Any:
    if name == "ServeConfig":
        from emodetect.serve.config import ServeConfig

        return ServeConfig
    if name in ("create_app", "default_route_modules"):
        from emodetect.serve import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
