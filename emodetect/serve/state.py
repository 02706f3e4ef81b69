"""What the service holds while it runs: its settings, the loaded models, and the inference limiter.

All of it lives on one `ServeState` attached to the app by `create_app` (`app.state.emodetect`), never
in module globals, so two apps (two tests, two ports) never share anything.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, HTTPException, Request

# ServeConfig lives in serve.config, which the command line imports without FastAPI (it may still
# be imported from here, as before).
from emodetect.serve.config import ServeConfig

T = TypeVar("T")


class ModelPool(Generic[T]):
    """`size` copies of a model, each used by one thread at a time.

    onnxruntime sessions are thread-safe but OpenCV's face detectors are not, so each worker takes
    its own detector instead of sharing one under a lock.
    """

    def __init__(self, factory: Callable[[], T], size: int):
        self.items: list[T] = [factory() for _ in range(size)]
        self._free: queue.Queue[T] = queue.Queue()
        for item in self.items:
            self._free.put(item)

    @property
    def first(self) -> T:
        """Any copy, for reading attributes such as labels or the model name."""
        return self.items[0]

    @contextmanager
    def use(self) -> Iterator[T]:
        item = self._free.get()
        try:
            yield item
        finally:
            self._free.put(item)


@dataclass
class ServeState:
    """The per-app state: settings, one entry per loaded service, and the worker limiter."""

    config: ServeConfig
    services: dict[str, Any] = field(default_factory=dict)
    ready: bool = False
    shutdown: Any = None  # serve.work.Shutdown: when SIGTERM came; every request's Work reads it
    video_bytes: Any = None  # serve.work.ByteBudget: upload bytes of the /v1/video requests in flight
    limiter: Any = None  # anyio.CapacityLimiter, made inside the running event loop
    long_limiter: Any = None  # at most workers - 1 long requests at once (run_long), made on first use
    catalogue: list[Any] | None = None  # runtime.bundled_models(), read once
    live_streams: int = 0  # WS /v1/voice/stream connections open now

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Run blocking work (decoding, inference, encoding) in a worker thread, off the event loop.

        The limiter caps the threads at `config.workers`, so a burst of requests queues here rather
        than piling up decoded images in memory. In a request, the work runs under its deadline
        (`serve.work`): `check()` in the thread stops it past the deadline or when the client goes.
        """
        import anyio

        from emodetect.serve.work import current

        work = current()
        if work is None:  # outside a request (start-up)
            return await anyio.to_thread.run_sync(func, *args, limiter=self.limiter)
        return await work.run(func, args, self.limiter)

    async def run_long(self, func: Callable[..., T], *args: Any) -> T:
        """`run`, for work that can hold a worker for minutes (a video, explaining many faces, a
        report on a CSV): at most `workers - 1` of them at once, so a worker stays free for the
        short requests (/v1/detect, /v1/text) whatever the long ones do. With one worker, all wait."""
        import anyio

        if self.long_limiter is None:
            self.long_limiter = anyio.CapacityLimiter(max(1, self.config.workers - 1))
        async with self.long_limiter:
            return await self.run(func, *args)


def get_state(request: Request) -> ServeState:
    """Dependency: this app's state."""
    return request.app.state.emodetect


# A route's parameter `state: StateDep` is this app's state (FastAPI's Annotated dependencies); each
# router names its own service's type the same way (routes_text.TextDep, ...).
StateDep = Annotated[ServeState, Depends(get_state)]


def service(name: str) -> Callable[[Request], Any]:
    """Dependency factory: the service a route module loaded at start-up, or 503 while it is not;
    a router names it with its type once, e.g. `TextDep = Annotated[TextEmotion, Depends(service("text"))]`."""

    def dependency(request: Request) -> Any:
        state: ServeState = request.app.state.emodetect
        loaded = state.services.get(name)
        if loaded is None:
            raise HTTPException(status_code=503, detail=f"the {name} model is not loaded (yet)")
        return loaded

    dependency.__name__ = f"{name}_service"
    return dependency
