"""Live voice: VoiceEmotion.stream, `emodetect listen` and WS /v1/voice/stream give the windows a
finished recording gives, as soon as each is complete; silence is marked; the stream route is
bounded like every route (busy, oversize, garbage, NaN, idle, too fast, too long, foreign page)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import emodetect
from emodetect.voice.pipeline import VoiceEmotion
from emodetect.voice.words import words_available

SPEECH = Path(emodetect.__file__).parent / "assets" / "samples" / "speech.flac"


@pytest.fixture(scope="module")
def engine():
    return VoiceEmotion(words=False)


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """Speech, 4 s of silence, speech twice: 20 s at 16 kHz."""
    speech, rate = sf.read(SPEECH, dtype="float32")
    path = tmp_path_factory.mktemp("live") / "talk.flac"
    sf.write(path, np.concatenate([speech, np.zeros(4 * rate, np.float32), speech, speech]), rate)
    return path


def chunks(x: np.ndarray, seed: int = 0):
    """Blocks of uneven sizes, as a microphone callback or a network delivers them."""
    rng = np.random.default_rng(seed)
    at = 0
    while at < len(x):
        size = int(rng.integers(100, 6000))
        yield x[at:at + size]
        at += size


def test_stream_gives_the_windows_of_the_streamed_recording(engine, recording):
    whole = VoiceEmotion(words=False, stream_above_s=1).predict(recording)  # read block by block, untrimmed
    samples, rate = sf.read(recording, dtype="float32")
    live = [u for u in engine.stream(chunks(samples), rate) if u.kind == "window"]
    assert [round(u.start_s, 3) for u in live] == [round(w.start_s, 3) for w in whole.windows]
    assert [u.silent for u in live] == [w.silent for w in whole.windows]
    assert any(u.silent for u in live) and not all(u.silent for u in live)
    for u, w in zip(live, whole.windows):
        assert u.label == w.label
        if not u.silent:
            assert np.allclose([u.probabilities[k] for k in engine.labels],
                               [w.probabilities[k] for k in engine.labels], atol=1e-4)


def test_any_rate_in_blocks_agrees_with_the_16_khz_stream(engine, recording):
    import soxr

    samples, rate = sf.read(recording, dtype="float32")
    at16 = [u.label for u in engine.stream(chunks(samples), rate)]
    at48 = [u.label for u in engine.stream(chunks(soxr.resample(samples, rate, 48_000), 1), 48_000)]
    assert len(at48) == len(at16)
    assert np.mean([a == b for a, b in zip(at16, at48)]) >= 0.8


@pytest.mark.parametrize("rate", [999, 192_001, 384_000])
def test_a_rate_the_file_readers_would_refuse_is_refused_before_any_work(engine, rate):
    from emodetect.media import AudioError

    with pytest.raises(AudioError, match="192,000 Hz"):
        next(engine.stream(iter([np.zeros(rate, np.float32)]), rate))


def test_silence_is_marked_and_the_running_state_holds(engine):
    speech, rate = sf.read(SPEECH, dtype="float32")
    updates = list(engine.stream([speech, np.zeros(6 * rate, np.float32)], rate, smoothing_s=3))
    silent = [u for u in updates if u.silent]
    assert silent and all(u.label is None for u in silent)
    last_voiced = [u for u in updates if not u.silent][-1]
    assert all(u.smoothed_label == last_voiced.smoothed_label for u in silent)
    # The running state moves slower than the windows: it is an average, not the last window.
    voiced = [u for u in updates if not u.silent]
    assert voiced[1].smoothed[voiced[1].label] < voiced[1].probabilities[voiced[1].label] or \
        voiced[1].label == voiced[0].label


def test_listen_on_a_file_gives_the_labels_voice_gives(tmp_path):
    from emodetect.cli import app

    runner = CliRunner()
    heard = runner.invoke(app, ["voice", str(SPEECH), "--json", "--no-words"])
    live = runner.invoke(app, ["listen", "--source", str(SPEECH), "--speed", "0", "--json", "--no-words",
                               "--csv", str(tmp_path / "live.csv")])
    assert heard.exit_code == 0 and live.exit_code == 0, live.output
    windows = {round(w["start_s"], 1): w["label"] for w in json.loads(heard.stdout)["windows"]}
    updates = [json.loads(line) for line in live.stdout.splitlines()]
    matched = [(u["label"], windows[round(u["start_s"], 1)]) for u in updates if round(u["start_s"], 1) in windows]
    assert len(matched) >= 2 and all(a == b for a, b in matched), (updates, windows)
    rows = (tmp_path / "live.csv").read_text().splitlines()
    assert len(rows) == len(updates) + 1 and rows[0].startswith("kind,start_s")


def test_listen_without_a_microphone_says_so_in_one_line():
    run = subprocess.run([sys.executable, "-m", "emodetect", "listen", "--seconds", "1"],
                         capture_output=True, text=True, timeout=120)
    if run.returncode == 0:
        pytest.skip("this machine has a microphone")
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and ("audio" in lines[0] or "listen" in lines[0])


# ---- WS /v1/voice/stream

@pytest.fixture(scope="module")
def app_factory():
    pytest.importorskip("fastapi")
    from emodetect.serve import ServeConfig, create_app

    def make(**limits):
        return create_app(ServeConfig(workers=1, words=False, **limits),
                          route_modules=("emodetect.serve.routes_health", "emodetect.serve.routes_voice"))
    return make


def run_stream(ws, samples: np.ndarray, dtype: str = "<f4", block: int = 1600) -> list[dict]:
    ready = ws.receive_json()
    assert ready["kind"] == "ready" and ready["window_s"] == 3.0
    for at in range(0, len(samples), block):
        part = samples[at:at + block]
        ws.send_bytes((part * 32767).astype(dtype).tobytes() if dtype == "<i2" else part.astype(dtype).tobytes())
    ws.send_text(json.dumps({"end": True}))
    messages = []
    while (message := ws.receive_json())["kind"] != "end":
        messages.append(message)
    return messages


def test_the_stream_route_answers_the_windows_of_the_recording(app_factory, engine, recording):
    from fastapi.testclient import TestClient

    samples, rate = sf.read(recording, dtype="float32")
    heard = (samples * 32767).astype("<i2").astype(np.float32) / 32768  # what the server reads of s16
    expected = [(round(u.start_s, 3), u.label) for u in engine.stream([heard], rate)]
    with TestClient(app_factory()) as client:
        with client.websocket_connect(f"/v1/voice/stream?sample_rate={rate}&format=s16") as ws:
            got = run_stream(ws, samples, "<i2")
    assert [(m["start_s"], m["label"]) for m in got] == expected
    assert all(set(m) >= {"silent", "smoothed_label", "probabilities"} for m in got)


def close_code(client, url: str, send) -> tuple[int, str]:
    from starlette.websockets import WebSocketDisconnect

    with client.websocket_connect(url) as ws:
        try:
            ws.receive_json()
            send(ws)
            for _ in range(1000):
                ws.receive_json()
        except WebSocketDisconnect as closed:
            return closed.code, closed.reason
    raise AssertionError("the stream was not closed")


@pytest.mark.parametrize("limits, url, send, code, words", [
    ({"max_stream_frame_bytes": 4000}, "?sample_rate=16000", lambda ws: ws.send_bytes(bytes(8000)), 1009, "limit"),
    ({}, "?sample_rate=16000&format=s16", lambda ws: ws.send_bytes(b"\x01\x02\x03"), 1003, "whole"),
    ({}, "?sample_rate=16000", lambda ws: ws.send_bytes(np.full(400, np.nan, "<f4").tobytes()), 1007, "NaN"),
    ({}, "?sample_rate=16000", lambda ws: ws.send_text("hello"), 1003, "end"),
    ({"stream_idle_s": 0.5}, "?sample_rate=16000", lambda ws: None, 1008, "no audio"),
    ({"max_audio_seconds": 2}, "?sample_rate=16000",
     lambda ws: [ws.send_bytes(np.zeros(16000, "<f4").tobytes()) for _ in range(3)], 1009, "limit per stream"),
    ({}, "?sample_rate=16000", lambda ws: [ws.send_bytes(np.zeros(16000, "<f4").tobytes()) for _ in range(90)],
     1008, "faster than"),
    ({}, "?sample_rate=5", lambda ws: None, 1008, "sample_rate"),
])
def test_the_stream_route_closes_hostile_streams_with_a_reason(app_factory, limits, url, send, code, words):
    from fastapi.testclient import TestClient

    with TestClient(app_factory(**limits)) as client:
        got, reason = close_code(client, "/v1/voice/stream" + url, send)
        assert got == code and words in reason, (got, reason)
        assert client.get("/healthz").status_code == 200  # and the service goes on


def test_a_full_service_refuses_another_stream_politely(app_factory):
    from fastapi.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    with TestClient(app_factory(max_voice_streams=1)) as client:
        with client.websocket_connect("/v1/voice/stream") as first:
            assert first.receive_json()["kind"] == "ready"
            with client.websocket_connect("/v1/voice/stream") as second:
                with pytest.raises(WebSocketDisconnect) as closed:
                    second.receive_json()
            assert closed.value.code == 1013 and "try again" in closed.value.reason
        with client.websocket_connect("/v1/voice/stream") as again:  # the slot is free again
            assert again.receive_json()["kind"] == "ready"


def test_another_site_s_page_cannot_stream(app_factory):
    from fastapi.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    with TestClient(app_factory()) as client:
        with pytest.raises(WebSocketDisconnect):
            with client.websocket_connect("/v1/voice/stream", headers={"origin": "http://evil.example"}) as ws:
                ws.receive_json()
        with client.websocket_connect("/v1/voice/stream", headers={"origin": "http://testserver"}) as ws:
            assert ws.receive_json()["kind"] == "ready"


@pytest.mark.skipif(not words_available(), reason="needs the speech extra")
def test_the_stream_sends_each_utterance_s_words_when_it_ends():
    from fastapi.testclient import TestClient

    from emodetect.serve import ServeConfig, create_app

    speech, rate = sf.read(SPEECH, dtype="float32")
    samples = np.concatenate([speech, np.zeros(4 * rate, np.float32)])
    app = create_app(ServeConfig(workers=1), route_modules=("emodetect.serve.routes_health", "emodetect.serve.routes_voice"))
    with TestClient(app) as client:
        with client.websocket_connect(f"/v1/voice/stream?sample_rate={rate}") as ws:
            messages = run_stream(ws, samples)
    said = [m for m in messages if m["kind"] == "utterance"]
    assert "luggage" in " ".join(m["text"] for m in said).lower() and all(m["label"] for m in said)
    # The words come once the speech has ended: after the windows that heard it.
    first_word = messages.index(said[0])
    assert any(m["kind"] == "window" and not m["silent"] for m in messages[:first_word])
