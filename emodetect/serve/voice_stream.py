"""WS /v1/voice/stream: live voice emotion over a WebSocket, bounded like every route.

The client connects with `?sample_rate=48000&format=f32` (little-endian float32, or `s16`: 16-bit
integers), sends mono PCM as binary frames, and gets a JSON message per window as soon as the
window is complete (`LiveUpdate.to_dict()`, plus each utterance's words where the service
transcribes); the text frame `{"end": true}` flushes the last window and closes. The first message
is `{"kind": "ready", ...}` with the labels, the window and hop. Closed with a reason:
1013 when `max_voice_streams` are open; 1009 for a frame over `max_stream_frame_bytes` or a stream
over `max_audio_seconds`; 1008 after `stream_idle_s` without a frame, or for audio sent faster than
`MAX_SPEED` x real time (past a first `BURST_S`); 1003 for frames that are not whole samples;
1007 for NaN samples.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import numpy as np
from fastapi import WebSocket, WebSocketDisconnect

from emodetect.media import MAX_SAMPLE_RATE
from emodetect.serve.state import ServeState

FORMATS = {"f32": np.dtype("<f4"), "s16": np.dtype("<i2")}
MAX_SPEED = 4.0  # audio seconds per wall second a client may send, past the first BURST_S
BURST_S = 30.0


class StreamClosed(Exception):
    """Close the stream with this code and reason."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


def _parameters(websocket: WebSocket) -> tuple[int, np.dtype]:
    query = websocket.query_params
    try:
        rate = int(query.get("sample_rate", "16000"))
    except ValueError:
        raise StreamClosed(1008, f"sample_rate must be a whole number of Hz, got {query.get('sample_rate')!r}") from None
    if not 8_000 <= rate <= MAX_SAMPLE_RATE:
        raise StreamClosed(1008, f"sample_rate must be 8,000 to {MAX_SAMPLE_RATE:,} Hz, got {rate}")
    kind = query.get("format", "f32")
    if kind not in FORMATS:
        raise StreamClosed(1008, f"format must be f32 or s16, got {kind[:20]!r}")
    return rate, FORMATS[kind]


def _samples(data: bytes, dtype: np.dtype) -> np.ndarray:
    if len(data) % dtype.itemsize:
        raise StreamClosed(1003, f"a frame of {len(data)} bytes is not whole {dtype.itemsize}-byte samples")
    samples = np.frombuffer(data, dtype=dtype)
    if dtype.kind == "i":
        return samples.astype(np.float32) / 32768.0
    if not np.isfinite(samples).all():
        raise StreamClosed(1007, "the audio holds NaN or infinite samples")
    return samples.astype(np.float32)


async def serve_stream(websocket: WebSocket, state: ServeState, engine: Any) -> None:
    """One live stream, from accept to close."""
    from emodetect.voice.live import LiveVoice

    config = state.config
    await websocket.accept()
    if state.live_streams >= config.max_voice_streams:
        await websocket.close(1013, f"busy: {config.max_voice_streams} live streams already; try again later")
        return
    state.live_streams += 1
    try:
        rate, dtype = _parameters(websocket)
        live = LiveVoice(engine, rate)
        await websocket.send_json({"kind": "ready", "model": engine.model_name, "labels": list(engine.labels),
                                   "window_s": engine.window_s, "hop_s": engine.hop_s, "words": bool(engine.words),
                                   "sample_rate": rate})
        started = time.monotonic()
        while True:
            try:
                message = await asyncio.wait_for(websocket.receive(), config.stream_idle_s)
            except asyncio.TimeoutError:
                raise StreamClosed(1008, f"no audio for {config.stream_idle_s:g} s: closed") from None
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                data = message["bytes"]
                if len(data) > config.max_stream_frame_bytes:
                    raise StreamClosed(1009, f"a frame of {len(data):,} bytes is over the limit of "
                                             f"{config.max_stream_frame_bytes:,}; send smaller blocks")
                updates = await state.run(live.feed, _samples(data, dtype))
                if live.seconds > config.max_audio_seconds:
                    raise StreamClosed(1009, f"the stream passed {config.max_audio_seconds:g} s of audio, "
                                             "the limit per stream")
                if live.seconds > BURST_S + MAX_SPEED * (time.monotonic() - started):
                    raise StreamClosed(1008, f"audio sent faster than {MAX_SPEED:g} x real time")
            else:
                try:
                    ended = json.loads(message.get("text") or "null") == {"end": True}
                except json.JSONDecodeError:
                    ended = False
                if not ended:
                    raise StreamClosed(1003, 'text frames other than {"end": true} are not understood')
                updates = await state.run(live.close)
            for update in updates:
                await websocket.send_json(update.to_dict())
            if message.get("bytes") is None:
                await websocket.send_json({"kind": "end", "seconds": round(live.seconds, 3)})
                await websocket.close(1000)
                return
    except StreamClosed as closed:
        await websocket.close(closed.code, closed.reason)
    except WebSocketDisconnect:
        pass
    except ValueError as err:  # AudioError: a bad sample rate
        await websocket.close(1008, str(err)[:120])
    finally:
        state.live_streams -= 1
