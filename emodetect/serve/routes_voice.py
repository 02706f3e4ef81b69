"""POST /v1/voice: the emotion in an uploaded speech recording, overall and window by window."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, WebSocket
from pydantic import BaseModel, Field

from emodetect.serve.answers import answer
from emodetect.serve.schemas import ErrorBody
from emodetect.serve.state import ServeConfig, ServeState, StateDep, service
from emodetect.serve.uploads import openapi_upload_body, read_upload
from emodetect.voice.pipeline import VoiceEmotion

SERVICE = "voice"
router = APIRouter(tags=["voice"])

READABLE = "WAV, FLAC, MP3, M4A/AAC, OGG (Vorbis/Opus), WebM, AIFF"
UPLOAD_BODY = openapi_upload_body("audio/*")


class VoiceWindowOut(BaseModel):
    start_s: float
    end_s: float
    silent: bool = Field(description="below the silence threshold: skipped, no probabilities")
    label: str | None
    confidence: float
    probabilities: dict[str, float]
    carries_label: bool = Field(False, description="this window's label is the recording's: it is where the label was heard")


class UtteranceOut(BaseModel):
    start_s: float
    end_s: float
    text: str = Field(description="the words heard (Whisper)")
    label: str | None = Field(description="the text model's emotion of these words")
    confidence: float
    probabilities: dict[str, float]


class VoiceResponse(BaseModel):
    source: str
    duration_s: float
    sample_rate: int = Field(description="of the upload, before resampling to 16 kHz")
    model: str
    label: str | None = Field(description="mean over the voiced windows; null when all silent")
    confidence: float
    probabilities: dict[str, float]
    windows: list[VoiceWindowOut] = Field(description="the timeline (empty with ?timeline=false)")
    notes: list[str]
    transcript: list[UtteranceOut] | None = Field(
        None, description="the words spoken, utterance by utterance with their emotion; null where the "
                          "service transcribes nothing (no speech extra, or --no-words)")


# A route's parameter `engine: VoiceDep` is the voice pipeline, or 503 while it loads.
VoiceDep = Annotated[VoiceEmotion, Depends(service(SERVICE))]


def load(config: ServeConfig) -> VoiceEmotion:
    """Start-up hook: one VoiceEmotion, shared (onnxruntime sessions are thread-safe and the
    pipeline keeps no per-call state); the words it hears are read by the service's text model."""
    return VoiceEmotion(config.model_for(SERVICE), threads=config.threads, words=config.words,
                        text_model=config.model_for("text"))


def analyse(engine: VoiceEmotion, data: bytes, name: str, timeline: bool, max_seconds: float) -> dict[str, Any]:
    """Blocking work of one request, run in a worker thread: decode, window, score."""
    from emodetect.voice.features import SAMPLE_RATE, AudioError, decode_audio

    # An AudioError is answered by the app's handler (its reason gives the status); here it only
    # gains the words a client needs: the formats this service reads, the file it was about.
    try:
        # Brought down to the model's rate block by block while decoding: a high-rate recording is
        # never held at its own rate.
        decoded = decode_audio(data, name, max_seconds=max_seconds, to_rate=SAMPLE_RATE)
    except AudioError as err:
        if err.reason != "unsupported":
            raise
        raise AudioError(f"{err} (this service reads {READABLE})", err.reason) from err
    try:
        result = engine.predict(decoded.samples, decoded.sample_rate)
    except AudioError as err:
        raise AudioError(f"{name}: {err}", err.reason) from err
    result.source, result.sample_rate = name, decoded.source_rate
    body = result.to_dict()
    if not timeline:
        body["windows"] = []
    return body


@router.post(
    "/v1/voice", response_model=VoiceResponse, summary="Emotion in a speech recording",
    openapi_extra=UPLOAD_BODY,
    responses={
        400: {"model": ErrorBody, "description": "empty or malformed upload, or audio with no samples"},
        413: {"model": ErrorBody, "description": "upload over the byte limit, or audio over the seconds limit"},
        415: {"model": ErrorBody, "description": "not a readable audio format, or an unsupported Content-Type"},
        422: {"model": ErrorBody, "description": "no 'file' field, or a bad query parameter"},
        503: {"model": ErrorBody, "description": "the voice model is not loaded yet"},
    },
)
async def voice(
    request: Request,
    state: StateDep,
    engine: VoiceDep,
    timeline: Annotated[bool, Query(description="include the per-window timeline")] = True,
) -> Any:
    """Send audio (any rate, any channel count) as multipart field `file` or as the raw body.

    The audio is held in memory for the request only: it is never written to disk or logged.
    """
    upload = await read_upload(request, state.config.max_upload_bytes, kind="audio",
                               examples="audio/wav, audio/flac, audio/ogg")
    start = time.perf_counter()
    body = await state.run(analyse, engine, upload.data, upload.filename or "upload", timeline,
                           state.config.max_audio_seconds)
    return answer(VoiceResponse, body, start)


@router.websocket("/v1/voice/stream")
async def voice_stream(websocket: WebSocket) -> None:
    """Live voice emotion: PCM in as binary frames, a JSON message per window out (see
    emodetect.serve.voice_stream for the protocol and its limits)."""
    from emodetect.serve.voice_stream import serve_stream

    state: ServeState = websocket.app.state.emodetect
    engine = state.services.get(SERVICE)
    if engine is None:
        await websocket.close(1013, "the voice model is not loaded yet")
        return
    await serve_stream(websocket, state, engine)
