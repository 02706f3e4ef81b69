"""The service's settings, `ServeConfig`: a plain dataclass, importable without the serve extra.

`emodetect serve` builds its flags from these fields, as `emodetect train` does from `TrainConfig`:
a field with `help` metadata is a flag (`serve_option`), named after the field unless the metadata
names it, in the unit the metadata gives (megabytes for byte limits). The model each modality's
router loads is named by the option its row of the modality table gives (`Modality.model_option`):
the built-in rows name a field here (`model`, `text_model`, `voice_model`); an installed package's
row has no field and its flag's value goes into `models`. `ServeConfig.model_for(modality)` reads
either.
"""

from __future__ import annotations

import os
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Callable

from emodetect.errors import InputError
from emodetect.vision.images import DEFAULT_MAX_PIXELS

MB = 1024 * 1024

DEFAULT_MAX_UPLOAD_BYTES = 10 * MB
# 10 minutes: at 48 kHz that is 115 MB of mono float32 per request in flight, checked from the header.
DEFAULT_MAX_AUDIO_SECONDS = 600.0
# Videos: 50 MB and 2 minutes (about a minute of analysis here with the default face model).
DEFAULT_MAX_VIDEO_BYTES = 50 * MB
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


def serve_option(default: Any = MISSING, help: str | Callable[[], str] = "", *, flag: str | None = None,
                 unit: int | None = None, unset: Any = MISSING, default_factory: Any = MISSING,
                 **typer_settings: Any) -> Any:
    """A ServeConfig field that is an `emodetect serve` flag: `help` (or a function that writes it
    when the flags are built, from a registry), `flag` (its name where it is not the field's),
    `unit` (the field holds the flag's value times this: megabytes to bytes), `unset` (the flag's
    value that leaves the field at its default); typer's settings (`min`) pass through."""
    metadata = {"help": help, **({"flag": flag} if flag else {}), **({"unit": unit} if unit else {}),
                **({"unset": unset} if unset is not MISSING else {}), **typer_settings}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def _detector_help() -> str:
    from emodetect.vision.cli import DETECTOR_HELP  # built from the detector table, plugins included

    return DETECTOR_HELP


@dataclass(frozen=True)
class ServeConfig:
    """Settings of `emodetect serve`; each field with help is one of its flags."""

    model: str | None = serve_option(None, "bundled face model name or ONNX file")  # None: the default model
    detector: str | None = serve_option(None, _detector_help)  # None: the pipeline's default
    text_model: str | None = serve_option(None, "text model of /v1/text: a bundled name (default, minilm-int8, "
                                                "...) or ONNX file")
    voice_model: str | None = serve_option(None, "voice model of /v1/voice and /v1/video: a bundled name (default: "
                                                 "Whisper's encoder; fast: a small CNN) or ONNX file")
    # The words of speech on /v1/voice and /v1/video (Whisper, the speech extra); None: where installed.
    words: bool | None = serve_option(None, "transcribe speech on /v1/voice and /v1/video (default: where the "
                                            "speech extra is installed)")
    threads: int = serve_option(1, "onnxruntime threads per worker")
    workers: int = serve_option(help="inferences at the same time (0 = one per core, at most 4)",
                                default_factory=default_workers, unset=0)
    max_upload_bytes: int = serve_option(DEFAULT_MAX_UPLOAD_BYTES, "largest upload accepted, in MB (413 above)",
                                         flag="max_upload_mb", unit=MB)
    # per image; decoded RGB is 3 bytes a pixel per request in flight
    max_pixels: int = serve_option(DEFAULT_MAX_PIXELS, "largest image accepted, in pixels (decompression bombs)")
    max_audio_seconds: float = serve_option(DEFAULT_MAX_AUDIO_SECONDS, "longest recording accepted by /v1/voice, "
                                            "in seconds (413 above; checked on the header before decoding)")
    # /v1/video only; other uploads keep max_upload_bytes
    max_video_bytes: int = serve_option(DEFAULT_MAX_VIDEO_BYTES, "largest video accepted by /v1/video, in MB "
                                        "(413 above)", flag="max_video_mb", unit=MB)
    max_video_seconds: float = serve_option(DEFAULT_MAX_VIDEO_SECONDS, "longest video accepted by /v1/video, in "
                                            "seconds (413 above; read from the container header first)")
    max_video_frames: int = serve_option(DEFAULT_MAX_VIDEO_FRAMES, "most frames in a video on /v1/video (413 "
                                         "above; counted while decoding, whatever the header says)")
    max_video_segments: int = serve_option(DEFAULT_MAX_VIDEO_SEGMENTS, "most segments in a /v1/video answer: "
                                           "subtitle cues, or the duration over ?segment= (413 above)")
    # Upload bytes of the /v1/video requests in flight together (at least max_video_bytes); past it 503.
    max_video_bytes_in_flight: int = serve_option(
        DEFAULT_MAX_VIDEO_BYTES_IN_FLIGHT, "MB of uploads all /v1/video requests in flight may hold together "
        "(503 above; at least --max-video-mb)", flag="video_budget_mb", unit=MB)
    # Seconds from a request's arrival (health checks excepted) until its work stops at the next frame
    # or batch (504); a client that disconnects stops it too (serve.work).
    request_timeout_s: float = serve_option(DEFAULT_REQUEST_TIMEOUT_S, "seconds a request may take from its "
                                            "arrival: its work stops at the next frame or batch after it (504)",
                                            flag="request_timeout")
    # Host header names answered (DNS rebinding); None answers any. `emodetect serve` on a loopback
    # address sets the loopback names when none are given.
    allowed_hosts: tuple[str, ...] | None = serve_option(
        None, "a Host name this server answers to (repeat for several); default on a loopback address: "
        "127.0.0.1, localhost, ::1 (against DNS rebinding); elsewhere any", flag="allowed_host")
    # Requests in flight answered at once (health checks excepted); more get 503. Sockets are not
    # counted: idle ones are closed after head_timeout_s, or evicted past max_sockets (serve.server).
    max_in_flight: int = serve_option(100, "requests in flight at once (health checks excepted); more are "
                                           "answered 503", flag="max_connections", min=1)
    head_timeout_s: float = serve_option(10.0, "seconds a connection may take to send a whole request head; "
                                               "idle sockets are closed after it", flag="head_timeout")
    body_timeout_s: float = serve_option(30.0, "seconds an upload may take to arrive (408 after)",
                                         flag="body_timeout")
    # Settings without a flag (create_app(ServeConfig(...)) sets them):
    max_sockets: int = 1000  # open connections; past it the one idle longest is closed
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
    # The models of modalities whose table row names no field here (an installed package's):
    # modality -> bundled name or file; `emodetect serve --<its model_option>` fills it.
    models: dict[str, str] = field(default_factory=dict)

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
        if self.models:
            self._check_models()

    def _check_models(self) -> None:
        from emodetect.modalities import get_modality

        for name in self.models:
            option = get_modality(name).model_option  # an unknown modality: an InputError listing them
            if option in FIELD_NAMES:
                raise InputError(f"models[{name!r}]: the {name} model is ServeConfig.{option}; set that", "invalid")

    def model_for(self, modality: str) -> str | None:
        """The model `modality`'s router loads (a bundled name or file; None: its default): the
        field its table row names (`Modality.model_option`), else its entry in `models`."""
        from emodetect.modalities import get_modality

        option = get_modality(modality).model_option
        return getattr(self, option) if option in FIELD_NAMES else self.models.get(modality)


FIELD_NAMES = frozenset(f.name for f in fields(ServeConfig))
