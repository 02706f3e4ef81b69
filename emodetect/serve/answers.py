"""How every inference route answers: the body validated by its response model, never cached,
with the time the inference took (`Server-Timing`)."""

from __future__ import annotations

import time
from typing import Any

from fastapi.responses import Response
from pydantic import BaseModel


def answer(model: type[BaseModel], body: dict[str, Any], started: float, media: bytes | None = None,
           media_type: str = "", **headers: str) -> Response:
    """JSON of `body` through `model`, or `media` (an image) when there is one."""
    headers = {"Cache-Control": "no-store",
               "Server-Timing": f"inference;dur={(time.perf_counter() - started) * 1000:.1f}", **headers}
    if media is not None:
        return Response(media, media_type=media_type, headers=headers)
    return Response(model.model_validate(body).model_dump_json(), media_type="application/json", headers=headers)
