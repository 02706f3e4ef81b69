"""The HTTP service and web page behind `emodetect serve` (needs the `serve` extra).

`create_app(ServeConfig(...))` returns a FastAPI app; see `emodetect.serve.app` for how to add routes.
"""

from emodetect.serve.app import ROUTE_MODULES, create_app
from emodetect.serve.state import ServeConfig

__all__ = ["ROUTE_MODULES", "ServeConfig", "create_app"]
