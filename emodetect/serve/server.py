"""How `emodetect serve` runs the app on uvicorn, so that idle sockets cannot lock clients out.

uvicorn's `limit_concurrency` counts open sockets, and nothing times out a request head: 99 clients
that connect and never send a byte made every request, /healthz too, a 503 for as long as they
stayed (issue 34, point 3). So here
- a connection must send a complete request head within `ServeConfig.head_timeout_s` of opening
  (or of its previous answer), else it is closed (`HeadTimeoutProtocol`);
- past `ServeConfig.max_sockets` open sockets, the one that has waited longest for a head is closed
  to make room, instead of refusing the newcomer;
- the 503 cap counts requests in flight, in the app (`emodetect.serve.inflight`), and health
  checks are never refused;
- on SIGTERM (or Ctrl-C) work in flight gets `ServeConfig.shutdown_grace_s`, then stops at its next
  cancel check (`emodetect.serve.work`): a shutdown waited for a video analysis (issue 34, point 4).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import Server

from emodetect.serve.state import ServeConfig


# On SIGTERM, work in flight gets ServeConfig.shutdown_grace_s, then stops at its next check and
# answers 503; uvicorn waits this much longer for those answers before it cancels what is left.
# Without a bound a shutdown waited for a video analysis, and a supervisor's SIGKILL left its upload
# on disk.
ANSWER_MARGIN_S = 5.0


class HeadTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request head and eviction of idle sockets.

    The settings are class attributes: `server_config` makes a subclass per server.
    """

    head_timeout_s: float = 10.0
    max_sockets: int = 1000

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_deadline: asyncio.TimerHandle | None = None
        self.waiting_since = time.monotonic()
        super().connection_made(transport)
        self._arm_head_deadline()
        if len(self.connections) > self.max_sockets:
            self._evict_longest_waiting()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.waiting_for_head():
            self.waiting_since = time.monotonic()
            self._arm_head_deadline()

    def waiting_for_head(self) -> bool:
        """No request head received in this cycle (bytes of one may have arrived)."""
        return self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)

    def _arm_head_deadline(self) -> None:
        self._disarm_head_deadline()
        self._head_deadline = self.loop.call_later(self.head_timeout_s, self._head_deadline_passed)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_deadline_passed(self) -> None:
        # A head that arrived in time moved h11 out of IDLE: its body has the app's own timeout.
        self._head_deadline = None
        if self.waiting_for_head() and not self.transport.is_closing():
            self.transport.close()

    def _evict_longest_waiting(self) -> None:
        idle = [c for c in self.connections if isinstance(c, HeadTimeoutProtocol) and c.waiting_for_head()
                and not c.transport.is_closing()]
        if idle:
            min(idle, key=lambda c: c.waiting_since).transport.close()


def server_config(app: Any, host: str = "127.0.0.1", port: int = 8000, **uvicorn_settings: Any) -> Config:
    """The uvicorn settings `emodetect serve` runs `app` (from `create_app`) with; more uvicorn
    settings (ssl_certfile, access_log, log_level) pass through."""
    config: ServeConfig = app.state.emodetect.config
    protocol = type("EmodetectH11Protocol", (HeadTimeoutProtocol,),
                    {"head_timeout_s": config.head_timeout_s, "max_sockets": config.max_sockets})
    settings: dict[str, Any] = {"log_level": "warning", "timeout_keep_alive": 5,
                                "timeout_graceful_shutdown": config.shutdown_grace_s + ANSWER_MARGIN_S,
                                **uvicorn_settings}
    # limit_concurrency stays None: uvicorn would count idle sockets; the app counts requests.
    return Config(app, host=host, port=port, http=protocol, limit_concurrency=None, **settings)


class EmodetectServer(Server):
    """uvicorn's server, telling the app when a shutdown begins: from then on, work in flight has
    `shutdown_grace_s` before its cancel check stops it (`serve.work.Shutdown`)."""

    def __init__(self, config: Config):
        super().__init__(config)
        self.shutdown_state = config.app.state.emodetect

    def handle_exit(self, sig: int, frame: Any) -> None:
        state = self.shutdown_state
        state.shutdown.begin(state.config.shutdown_grace_s)
        super().handle_exit(sig, frame)


def make_server(app: Any, host: str = "127.0.0.1", port: int = 8000, **uvicorn_settings: Any) -> EmodetectServer:
    """The server `emodetect serve` runs (`server_config`'s settings)."""
    return EmodetectServer(server_config(app, host, port, **uvicorn_settings))


def check_model_files(config: ServeConfig) -> None:
    """Open the model files the settings name (bundled names are tested already): a damaged
    `--model` is a ModelError naming it, before uvicorn starts, not a traceback at start-up."""
    from pathlib import Path

    from emodetect.modalities import modalities
    from emodetect.runtime import OnnxModel

    for modality in modalities():
        given = config.model_for(modality.name) if modality.router else None
        if given and Path(given).suffix == ".onnx":
            OnnxModel(given, threads=1)


def run(app: Any, host: str = "127.0.0.1", port: int = 8000, **uvicorn_settings: Any) -> None:
    """Serve `app` until interrupted (what `emodetect serve` does); model files are checked first."""
    check_model_files(app.state.emodetect.config)
    make_server(app, host, port, **uvicorn_settings).run()
