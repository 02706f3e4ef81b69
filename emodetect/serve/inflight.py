"""The service's 503 cap: requests in flight, not sockets, and never on the health checks.

Counting sockets (uvicorn's `limit_concurrency`) let 99 idle connections refuse every request
(issue 34, point 3); a request is counted from its head to its last answer byte. Refusals are
logged as one WARNING line a minute at most, with how many there were: a flood of 503s must not
become a flood of log lines (issue 34, point 12).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("emodetect.serve")

# Liveness and readiness answer whatever the load: a probe that gets 503 restarts a busy service.
UNCAPPED_PATHS = frozenset({"/healthz", "/readyz"})
REFUSAL_LOG_INTERVAL_S = 60.0

Scope = dict[str, Any]
App = Callable[[Scope, Callable, Callable], Awaitable[None]]


class RefusalLog:
    """Counts 503s and logs them at most once per `interval_s` (the first one at once)."""

    def __init__(self, interval_s: float = REFUSAL_LOG_INTERVAL_S, clock: Callable[[], float] = time.monotonic):
        self.interval_s = interval_s
        self.clock = clock
        self.unlogged = 0
        self.last_logged: float | None = None

    def refused(self, in_flight: int, cap: int) -> None:
        self.unlogged += 1
        now = self.clock()
        if self.last_logged is not None and now - self.last_logged < self.interval_s:
            return
        log.warning("503: %d request(s) refused since the last line: %d in flight, the cap is %d "
                    "(emodetect serve --max-connections)", self.unlogged, in_flight, cap)
        self.unlogged, self.last_logged = 0, now


class InFlightLimit:
    """Pure ASGI middleware: answer 503 past `cap` HTTP requests in flight, health checks excepted."""

    def __init__(self, app: App, cap: int, refusals: RefusalLog | None = None):
        self.app = app
        self.cap = cap
        self.in_flight = 0
        self.refusals = refusals or RefusalLog()

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"] in UNCAPPED_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.cap:
            self.refusals.refused(self.in_flight, self.cap)
            await _busy(send, self.cap)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


async def _busy(send: Callable, cap: int) -> None:
    body = json.dumps({"detail": f"the service is busy: {cap} requests in flight; retry shortly"}).encode()
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"retry-after", b"1")]})
    await send({"type": "http.response.body", "body": body})
