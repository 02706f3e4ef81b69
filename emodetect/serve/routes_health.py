"""GET /healthz, GET /readyz and GET /v1/models: liveness, readiness and the model catalogue."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse, Response

from emodetect.serve.schemas import ErrorBody, Health, ModelInfo, ModelList, Readiness
from emodetect.serve.state import StateDep

router = APIRouter(tags=["service"])


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Health:
    return Health()


@router.get("/readyz", response_model=Readiness, summary="Every model is loaded",
            responses={503: {"model": Readiness, "description": "still loading"}})
async def readyz(state: StateDep) -> Any:
    body = Readiness(ready=state.ready, services={name: svc is not None for name, svc in state.services.items()})
    return body if state.ready else JSONResponse(body.model_dump(), status_code=503)


def _figures(raw: str | None) -> dict[str, Any] | str | None:
    # Model cards store their test figures as JSON text in the ONNX metadata; older files as prose.
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, dict) else raw


@router.get("/v1/models/{modality}/{name}/card", summary="A bundled model's card (Markdown)",
            response_class=Response, responses={200: {"content": {"text/markdown": {}}},
                                                404: {"model": ErrorBody, "description": "no such bundled model"}})
async def model_card(modality: str, name: str, state: StateDep) -> Response:
    """Intended use and uses to avoid, training data and its terms, test figures per class and per
    group, known gaps, privacy: generated from the model's metadata and its evaluation evidence."""
    from emodetect.cards import model_card as make_card
    from emodetect.errors import InputError

    try:
        text = await state.run(make_card, name, modality)
    except InputError as err:  # an unknown modality, a ModelNotFoundError, a name several share
        # The path is the client's: echoed whole, a 20,000-character name makes a 20 KB answer.
        raise HTTPException(404, detail=f"no bundled {_clipped(modality)} model named {_clipped(name)}") from err
    return Response(text, media_type="text/markdown; charset=utf-8")


def _clipped(text: str, limit: int = 64) -> str:
    """`text` quoted, cut to `limit` characters with a note of how long it was."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text):,} characters)"


@router.get("/v1/models", response_model=ModelList, summary="Bundled models and their test figures")
async def list_models(state: StateDep) -> ModelList:
    if state.catalogue is None:
        from emodetect.runtime import bundled_models

        state.catalogue = await state.run(bundled_models)
    def is_loaded(m: Any) -> bool:
        svc = state.services.get(m.modality)
        if svc is None:
            return False
        file = getattr(svc, "model_file", None)  # the exact file when the service knows it
        return m.path.name == file if file else getattr(svc, "model_name", None) in (m.name, m.path.stem)

    return ModelList(models=[
        ModelInfo(name=m.name, modality=m.modality, file=m.path.name, version=m.metadata.get("version"),
                  labels=list(m.labels), test_figures=_figures(m.metadata.get("test_figures")),
                  loaded=is_loaded(m), card=f"/v1/models/{m.modality}/{m.name}/card")
        for m in state.catalogue
    ])
