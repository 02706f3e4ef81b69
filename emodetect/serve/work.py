"""Every request's deadline, and the cancel check that stops its work in the worker thread.

A few requests held every worker for minutes to hours, went on after their client had left, and
made SIGTERM wait for them (issue 34, point 4). So each request (health checks excepted) gets a
`Work` with a deadline (`ServeConfig.request_timeout_s`), and the work it runs in a worker thread
(`ServeState.run`) makes the cancel check, `check()`, between frames and batches: the check raises
once the deadline has passed (504), the client has disconnected (499), or the service is shutting
down and its grace is over (503), and the worker is free for the next request.

The library knows nothing of requests: the routes make the check themselves between batches, pass
`checked(model)` (every method call checks first) where a library loop calls the model once per
frame, or give a `progress` callback that checks.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from emodetect.serve.inflight import UNCAPPED_PATHS
from emodetect.errors import EmodetectError
from emodetect.serve.uploads import UploadError

T = TypeVar("T")

CLIENT_GONE = 499  # nginx's "client closed request": nobody reads it, the log does


class WorkStopped(EmodetectError):
    """The request's work was stopped: past its deadline, its client gone, or the service stopping.
    An HTTP status and a message, as an UploadError, but no InputError (nor ValueError): raised
    inside the work, it must pass every `except InputError` that skips a bad part of an input (a
    video's unreadable sound track) and stop the request."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Shutdown:
    """When the service began to stop: work then has `grace_s` more to finish (shared by all requests)."""

    def __init__(self) -> None:
        self.deadline: float | None = None

    def begin(self, grace_s: float) -> None:
        if self.deadline is None:
            self.deadline = time.monotonic() + grace_s


class Work:
    """One request's deadline and stop flag, read by the worker thread between frames and batches."""

    def __init__(self, timeout_s: float, receive: Callable | None = None, shutdown: Shutdown | None = None):
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s
        self.receive = receive
        self.shutdown = shutdown or Shutdown()
        self.stopped: WorkStopped | None = None  # set from the event loop when the client goes
        self.checks = 0  # cancel checks made (tests read it)

    def check(self) -> None:
        """Raise WorkStopped if the work must stop; else return at once."""
        self.checks += 1
        if self.stopped is not None:
            raise self.stopped
        now = time.monotonic()
        if self.shutdown.deadline is not None and now > self.shutdown.deadline:
            raise WorkStopped(503, "the service is shutting down and stopped this request's work; retry shortly")
        if now > self.deadline:
            raise self.expired()

    def expired(self) -> WorkStopped:
        return WorkStopped(504, f"the request ran past its deadline of {self.timeout_s:g} s (request_timeout_s); "
                                "send a shorter video or fewer texts, or ask the operator for a longer deadline")

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    async def run(self, func: Callable[..., T], args: tuple, limiter: Any) -> T:
        """`func(*args)` in a worker thread with this work as the thread's current one; the wait
        for a free worker counts against the deadline, and a client that disconnects meanwhile
        stops the work at its next check."""
        import anyio

        self.check()

        def call() -> T:
            _thread.work = self
            try:
                self.check()  # the deadline may have passed while queued
                return func(*args)
            finally:
                _thread.work = None

        watcher = asyncio.ensure_future(self._watch_disconnect()) if self.receive is not None else None
        try:
            # The thread itself is not abandoned when the deadline passes (its worker would be
            # counted free while still busy): it stops at its next check instead.
            with anyio.move_on_after(self.remaining()):
                return await anyio.to_thread.run_sync(call, limiter=limiter)
            raise self.expired()  # still waiting for a worker at the deadline
        finally:
            if watcher is not None:
                watcher.cancel()

    async def _watch_disconnect(self) -> None:
        # The body has been read: the next ASGI message is a disconnect (or the end of the response).
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.stopped = WorkStopped(CLIENT_GONE, "the client disconnected; its work was stopped")
                return


_thread = threading.local()
_current: ContextVar[Work | None] = ContextVar("emodetect_work", default=None)


def current() -> Work | None:
    """The work of the request being answered (in the event loop) or run (in its worker thread)."""
    return getattr(_thread, "work", None) or _current.get()


def check() -> None:
    """The cancel check: raises WorkStopped when this thread's request must stop; outside a
    request it does nothing."""
    work = getattr(_thread, "work", None)
    if work is not None:
        work.check()


class _Checked:
    """`target` whose method calls each make the cancel check first; other attributes pass through."""

    def __init__(self, target: Any):
        object.__setattr__(self, "_target", target)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not inspect.isroutine(value):  # labels, names, a face detector object: as they are
            return value

        def checked(*args: Any, **kwargs: Any) -> Any:
            check()
            return value(*args, **kwargs)

        return checked


def checked(target: T) -> T:
    """`target` (an EmotionDetector, VoiceEmotion, TextEmotion) making the cancel check before each
    of its method calls: a library loop calling it once per frame stops between frames."""
    return target if target is None else _Checked(target)  # type: ignore[return-value]


class RequestDeadline:
    """Pure ASGI middleware: each HTTP request (health checks excepted) gets a `Work` with a
    deadline `timeout_s` from its arrival, which `ServeState.run` uses."""

    def __init__(self, app: Any, timeout_s: float, shutdown: Shutdown):
        self.app = app
        self.timeout_s = timeout_s
        self.shutdown = shutdown

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"] in UNCAPPED_PATHS:
            await self.app(scope, receive, send)
            return
        token = _current.set(Work(self.timeout_s, receive, self.shutdown))
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)


class ByteBudget:
    """Bytes of uploads held by the requests in flight of one kind, at most `limit` together: past
    it a request is refused with 503 rather than held (40 video uploads of 50 MB held open cost
    +1.9 GB before their 408; issue 34, point 7)."""

    def __init__(self, limit: int, setting: str):
        self.limit = limit
        self.setting = setting
        self.held = 0

    def refuse(self) -> UploadError:
        return UploadError(503, f"uploads in flight of this kind already hold {self.held:,} bytes; the budget is "
                                f"{self.limit:,} bytes ({self.setting}): retry shortly")

    @contextmanager
    def hold(self, declared: int | None = None) -> Iterator[Callable[[int], None]]:
        """A `take(n)` that counts n more bytes of this request against the budget (raising the
        503 past it); all of them are given back when the block ends. `declared` (the request's
        Content-Length) is refused at once if it cannot fit."""
        if declared is not None and self.held + declared > self.limit:
            raise self.refuse()
        taken = 0

        def take(n: int) -> None:
            nonlocal taken
            if self.held + n > self.limit:
                raise self.refuse()
            self.held += n
            taken += n

        try:
            yield take
        finally:
            self.held -= taken
