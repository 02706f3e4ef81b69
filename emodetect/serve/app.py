"""The emodetect service: a FastAPI app that answers on the bundled models and serves the web page.

`create_app(config)` builds a fresh app; nothing lives in module globals. At start-up (the lifespan)
each route module's `load(config)` runs once, in a thread, and what it returns is kept on the app's
`ServeState`; routes reach it through a typed dependency (`Depends(service(name))`). Blocking work
(decoding, inference) goes through `state.run(...)`, which runs it in a worker thread so the event
loop stays free.

A modality's routes are one module, named as `router` in its row of the modality table
(emodetect/modalities.py); `create_app` mounts every row's router:

1. Write the module (e.g. `emodetect/serve/routes_text.py`) with
   - `SERVICE = "text"`;
   - `router = APIRouter(tags=["text"])` carrying the routes;
   - optionally `def load(config: ServeConfig) -> object`: load the model once (e.g. a
     `TextEmotion(config.model_for(SERVICE))`, or a `ModelPool` of them when it is not
     thread-safe) and return it;
   - its type named once, `TextDep = Annotated[TextEmotion, Depends(service(SERVICE))]`;
   - in each route: `state: StateDep` (serve.state), `model: TextDep`, and
     `await state.run(blocking_function, ...)` for the inference.
   Request/response bodies are Pydantic models (add them to schemas.py or the module), errors are
   `HTTPException`, or an `InputError` (`UploadError(status, message)` where the status is the
   route's own) with a message naming the problem, left to the app's one handler.
2. Name it in the modality's row (`router="emodetect.serve.routes_text"`). /readyz then waits for
   its model too, and /v1/models marks the bundled model it loaded (its `model_name` attribute);
   `emodetect serve --<row.model_option>` (e.g. --text-model) names the model it loads.
   New settings go into `ServeConfig` (serve/config.py): a field made with `serve_option(...)`,
   help included, is an `emodetect serve` flag.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from emodetect.errors import InputError, http_status
from emodetect.serve.inflight import InFlightLimit
from emodetect.serve.security import SecurityMiddleware
from emodetect.serve.state import ServeConfig, ServeState
from emodetect.serve.tempfiles import sweep_stale_uploads
from emodetect.serve.work import ByteBudget, RequestDeadline, Shutdown, WorkStopped

HEALTH_ROUTES = "emodetect.serve.routes_health"
# Routes over several modalities at once (a video: faces, voice and subtitles).
SHARED_ROUTES = ("emodetect.serve.routes_video", "emodetect.serve.routes_report")


def default_route_modules() -> tuple[str, ...]:
    """Health and the models list, each modality's router from the modality table, then the
    routes that combine modalities."""
    from emodetect.modalities import modalities

    return (HEALTH_ROUTES, *(m.router for m in modalities() if m.router), *SHARED_ROUTES)


def static_dir() -> Path:
    return Path(str(resources.files("emodetect.serve"))) / "static"


def create_app(config: ServeConfig | None = None, route_modules: Sequence[str] | None = None,
               **settings: Any) -> FastAPI:
    """A new service app. Pass a `ServeConfig`, or its fields as keywords (`max_pixels=...`)."""
    from emodetect import __version__

    config = config or ServeConfig(**settings)
    modules = [importlib.import_module(name) for name in (route_modules or default_route_modules())]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import anyio

        state: ServeState = app.state.emodetect
        state.limiter = anyio.CapacityLimiter(config.workers)
        # Uploads a SIGKILL left on disk go before anything else is served (issue 34, point 11).
        await anyio.to_thread.run_sync(sweep_stale_uploads)
        for module in modules:
            if hasattr(module, "load"):
                state.services[module.SERVICE] = await anyio.to_thread.run_sync(module.load, config)
        state.ready = True
        try:
            yield
        finally:
            state.ready = False
            state.services.clear()

    # FastAPIOffline: /docs and /redoc load Swagger UI and ReDoc from the installed package, not a CDN.
    app = FastAPIOffline(title="emodetect", version=__version__, lifespan=lifespan,
                         description="Emotion in faces, text and voice with CNNs, on bundled models. "
                                     "Uploads are processed in memory and never stored or logged.")
    app.state.emodetect = state = ServeState(config)
    state.shutdown = Shutdown()
    state.video_bytes = ByteBudget(config.max_video_bytes_in_flight, "max_video_bytes_in_flight")

    # The one translation of an error to an answer: every InputError a route lets through (an
    # ImageError, an AudioError, an UploadError with its own status) and work stopped (504, 503,
    # 499) is a JSON detail with the status errors.http_status gives it; anything else is a bug, a 500.
    async def error_answer(request: Request, err: InputError | WorkStopped) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=http_status(err))

    app.add_exception_handler(InputError, error_answer)
    app.add_exception_handler(WorkStopped, error_answer)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, err: RequestValidationError) -> JSONResponse:
        # One sentence per bad parameter, e.g. "query parameter 'annotate': Input should be a valid boolean".
        problems = []
        for e in err.errors():
            where = " ".join(str(part) for part in e.get("loc", ()))
            where = where.replace("query ", "query parameter ", 1)
            got = repr(e["input"]) if isinstance(e.get("input"), (str, int, float)) else ""
            got = f" (got {got[:60]}{'...' if len(got) > 60 else ''})" if got else ""  # never echo a huge input
            problems.append(f"{where}: {e.get('msg', 'invalid')}{got}")
        return JSONResponse({"detail": "; ".join(problems)}, status_code=422)

    for module in modules:
        app.include_router(module.router)

    static = static_dir()

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(static / "index.html")

    app.mount("/static", StaticFiles(directory=static), name="static")
    # Innermost: each request counted in flight gets its deadline (serve.work).
    app.add_middleware(RequestDeadline, timeout_s=config.request_timeout_s, shutdown=state.shutdown)
    app.add_middleware(InFlightLimit, cap=config.max_in_flight)  # inside: a foreign Host is not counted
    app.add_middleware(SecurityMiddleware, allowed_hosts=config.allowed_hosts)
    return app
