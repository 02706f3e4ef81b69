"""What the service holds while it runs: its settings, the loaded models, and the inference limiter.

All of it lives on one `ServeState` attached to the app by `create_app` (`app.state.emodetect`), never
in module globals, so two apps (two tests, two ports) never share anything.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from fastapi import HTTPException, Request

from emodetect.errors import InputError
from emodetect.vision.images import DEFAULT_MAX_PIXELS

T = TypeVar("T")

DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# 10 minutes: at 48 kHz that is 115 MB of mono float32 per request in flight, checked from the header.
DEFAULT_MAX_AUDIO_SECONDS = 600.0
# Videos: 50 MB and 2 minutes (about a minute of analysis here with the default face model).
DEFAULT_MAX_VIDEO_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_VIDEO_SECONDS = 120.0
# Explanations: a face map is one batch of 129 crops (about 2 s here: 256 faces of one photo ran
# 526 s), so 8 faces hold a worker for about 16 s; a text's explanation is one row per token read, and
# 1,000 texts of 200 words (200,000 rows) ran about 49 minutes, so 5,000 tokens is about 75 s.
DEFAULT_MAX_EXPLAIN_FACES = 8
DEFAULT_MAX_EXPLAIN_TOKENS = 5_000
# Frames per video, counted while decoding: 2 minutes at 60 frames/s. The header's duration alone let
# 30 s at 1000 frames/s, or a Matroska file saying 1 s with 10,000 frames, hold a worker (issue 34).
DEFAULT_MAX_VIDEO_FRAMES = 7_200
# Segments in a video answer: each subtitle cue is one, else the duration over ?segment=. 100,000 cues
# made a 75 MB answer (issue 34); 1,000 segments are about 1 MB of JSON.
DEFAULT_MAX_VIDEO_SEGMENTS = 1_000
# Video upload bytes held by the requests in flight together: four uploads at the byte limit (40 held
# uploads of 50 MB cost +1.9 GB before their 408; issue 34).
DEFAULT_MAX_VIDEO_BYTES_IN_FLIGHT = 4 * DEFAULT_MAX_VIDEO_BYTES
# Every request's deadline, checked between frames and batches: the longest request the other limits
# allow (a 2-minute video with its media) takes about a minute here. A video or an explanation held a
# worker for minutes to hours, and went on after its client had left (issue 34).
DEFAULT_REQUEST_TIMEOUT_S = 300.0
# After SIGTERM, work in flight gets this long, then stops at its next check (503).
DEFAULT_SHUTDOWN_GRACE_S = 10.0


def default_workers() -> int:
    """One inference worker per core, at most 4: more only queue up behind each other."""
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class ServeConfig:
    """Settings of `emodetect serve`; the CLI flags have the same names."""

    model: str | None = None  # bundled face model name or .onnx path; None = the default model
    detector: str | None = None  # face detector name; None = the pipeline's default
    text_model: str | None = None  # bundled text model name or .onnx path (/v1/text); None = the text default
    # The words of speech on /v1/voice and /v1/video (Whisper, the speech extra); None: where installed.
    words: bool | None = None
    threads: int = 1  # onnxruntime threads per worker
    workers: int = field(default_factory=default_workers)  # inferences run at the same time
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS  # per image; decoded RGB is 3 bytes a pixel per request in flight
    max_audio_seconds: float = DEFAULT_MAX_AUDIO_SECONDS
    max_video_bytes: int = DEFAULT_MAX_VIDEO_BYTES  # /v1/video only; other uploads keep max_upload_bytes
    max_video_seconds: float = DEFAULT_MAX_VIDEO_SECONDS  # read from the container header first
    max_video_frames: int = DEFAULT_MAX_VIDEO_FRAMES  # counted while decoding, whatever the header says
    max_video_segments: int = DEFAULT_MAX_VIDEO_SEGMENTS  # per answer: subtitle cues, or duration / segment
    # Upload bytes of the /v1/video requests in flight together (at least max_video_bytes); past it 503.
    max_video_bytes_in_flight: int = DEFAULT_MAX_VIDEO_BYTES_IN_FLIGHT
    # Host header names answered (DNS rebinding); None answers any. `emodetect serve` on a
    # loopback address sets the loopback names.
    allowed_hosts: tuple[str, ...] | None = None
    body_timeout_s: float = 30.0  # an upload must arrive within this; slow clients get 408
    # Requests in flight answered at once (health checks excepted); more get 503. Sockets are not
    # counted: idle ones are closed after head_timeout_s, or evicted past max_sockets (serve.server).
    max_in_flight: int = 100
    head_timeout_s: float = 10.0  # a connection must send a whole request head within this
    max_sockets: int = 1000  # open connections; past it the one idle longest is closed
    # Seconds from a request's arrival (health checks excepted) until its work stops at the next frame
    # or batch (504); a client that disconnects stops it too (serve.work).
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    shutdown_grace_s: float = DEFAULT_SHUTDOWN_GRACE_S  # after SIGTERM, then work in flight stops (503)
    # /v1/explain maps the largest this many faces; the rest come back labelled, in `unexplained`.
    max_explain_faces: int = DEFAULT_MAX_EXPLAIN_FACES
    # /v1/text?explain=true: tokens read over all texts (one model row each); more get 413.
    max_explain_tokens: int = DEFAULT_MAX_EXPLAIN_TOKENS
    # WS /v1/voice/stream: live streams at once (more are closed with 1013 "try again later"), the
    # largest binary frame, the longest silence between frames; max_audio_seconds bounds each stream.
    max_voice_streams: int = 4
    max_report_rows: int = 100_000  # POST /v1/text/report: rows of one CSV (413 above, counted before parsing)
    max_stream_frame_bytes: int = 256 * 1024
    stream_idle_s: float = 10.0

    def __post_init__(self) -> None:
        for name in ("workers", "max_upload_bytes", "max_pixels", "max_audio_seconds", "body_timeout_s",
                     "max_video_bytes", "max_video_seconds", "max_video_frames", "max_in_flight", "max_sockets",
                     "max_voice_streams", "max_stream_frame_bytes", "max_report_rows"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_explain_faces < 1 or self.max_explain_tokens < 1:
            raise InputError(f"max_explain_faces and max_explain_tokens must be at least 1, got "
                             f"{self.max_explain_faces} and {self.max_explain_tokens}")
        if self.head_timeout_s <= 0:
            raise InputError(f"head_timeout_s must be above 0, got {self.head_timeout_s}")
        for name in ("request_timeout_s", "shutdown_grace_s"):
            if getattr(self, name) <= 0:
                raise InputError(f"{name} must be above 0, got {getattr(self, name)}")
        if self.max_video_segments < 1:
            raise InputError(f"max_video_segments must be at least 1, got {self.max_video_segments}")
        if self.max_video_bytes_in_flight < self.max_video_bytes:
            raise InputError(f"max_video_bytes_in_flight ({self.max_video_bytes_in_flight:,}) must be at least "
                             f"max_video_bytes ({self.max_video_bytes:,}), or no video at the limit could pass")
        if self.threads < 0:
            raise InputError(f"threads must be 0 (all cores) or more, got {self.threads}")


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


def service(name: str) -> Callable[[Request], Any]:
    """Dependency factory: the service a route module loaded at start-up, or 503 while it is not."""

    def dependency(request: Request) -> Any:
        state: ServeState = request.app.state.emodetect
        loaded = state.services.get(name)
        if loaded is None:
            raise HTTPException(status_code=503, detail=f"the {name} model is not loaded (yet)")
        return loaded

    dependency.__name__ = f"{name}_service"
    return dependency
