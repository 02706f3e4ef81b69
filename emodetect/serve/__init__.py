"""The HTTP service and web page behind `emodetect serve` (needs the `serve` extra).

`create_app(ServeConfig(...))` returns a FastAPI app; see `emodetect.serve.app` for how to add routes.
"""

from emodetect.serve.app import create_app, default_route_modules
from emodetect.serve.state import ServeConfig

__all__ = ["ServeConfig", "create_app", "default_route_modules"]
