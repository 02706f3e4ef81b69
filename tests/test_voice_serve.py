"""POST /v1/voice on the bundled default voice model: uploads in every form, and bad ones."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from emodetect.serve import ServeConfig, create_app

ROUTES = ("emodetect.serve.routes_health", "emodetect.serve.routes_voice")


@pytest.fixture(scope="module")
def client():
    app = create_app(ServeConfig(workers=1, max_upload_bytes=400_000), route_modules=ROUTES)
    with TestClient(app) as c:
        yield c


def audio_bytes(x: np.ndarray, rate: int, fmt: str = "WAV") -> bytes:
    out = io.BytesIO()
    sf.write(out, x, rate, format=fmt)
    return out.getvalue()


def voice_like(seconds: float, rate: int) -> np.ndarray:
    """A gliding harmonic tone with a syllable-rate envelope: enough to be scored, not silent."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 160 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2)
    return (0.1 * x).astype(np.float32)


def test_multipart_upload_gives_a_label_and_a_timeline(client):
    data = audio_bytes(voice_like(7.0, 22_050), 22_050, "FLAC")
    response = client.post("/v1/voice", files={"file": ("clip.flac", data, "audio/flac")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source"] == "clip.flac" and body["sample_rate"] == 22_050
    assert body["label"] in body["probabilities"]
    assert sum(body["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    assert len(body["windows"]) >= 3 and body["windows"][-1]["end_s"] == pytest.approx(7.0, abs=0.05)


def test_raw_body_and_no_timeline(client):
    data = audio_bytes(voice_like(2.0, 8000), 8000)
    response = client.post("/v1/voice?timeline=false", content=data, headers={"content-type": "audio/wav"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["windows"] == [] and body["label"] is not None
    assert any("8000 Hz" in note for note in body["notes"])


def test_silent_upload_is_a_result_without_a_label(client):
    response = client.post("/v1/voice", content=audio_bytes(np.zeros(16_000, np.float32), 16_000),
                           headers={"content-type": "audio/wav"})
    assert response.status_code == 200 and response.json()["label"] is None


@pytest.mark.parametrize("content, content_type, status, words", [
    (b"", "audio/wav", 400, "empty"),
    (b"definitely not audio" * 50, "audio/wav", 415, "not a readable audio"),
    (b"{}", "application/json", 415, "Content-Type"),
    (b"\0" * 500_000, "application/octet-stream", 413, "too large"),
])
def test_bad_uploads_are_refused_with_a_message(client, content, content_type, status, words):
    response = client.post("/v1/voice", content=content, headers={"content-type": content_type})
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]
    assert " object at 0x" not in response.json()["detail"]  # no internal address leaves the server


def test_zero_length_wav_is_a_400(client):
    response = client.post("/v1/voice", files={"file": ("empty.wav", audio_bytes(np.zeros(0, np.float32), 16_000))})
    assert response.status_code == 400 and "zero length" in response.json()["detail"]


def test_models_marks_the_loaded_voice_model(client):
    listed = client.get("/v1/models").json()["models"]
    loaded = [m["file"] for m in listed if m["loaded"] and m["modality"] == "voice"]
    assert loaded == ["voice_default.onnx"]


def test_an_audio_bomb_is_refused_before_it_is_decoded():
    """A FLAC of an hour of stereo silence is a few hundred KB; decoded it would be over a GB."""
    import resource

    app = create_app(ServeConfig(workers=1, max_audio_seconds=120), route_modules=ROUTES)
    rate = 8_000
    out = io.BytesIO()
    with sf.SoundFile(out, "w", rate, 2, format="FLAC") as handle:
        block = np.zeros((rate * 60, 2), np.float32)
        for _ in range(60):
            handle.write(block)
    bomb = out.getvalue()
    assert len(bomb) < 2_000_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with TestClient(app) as c:
        answer = c.post("/v1/voice", content=bomb, headers={"Content-Type": "audio/flac"})
        assert answer.status_code == 413
        assert "3,600 s of audio is over the limit of 120 s" in answer.json()["detail"]
        ok = c.post("/v1/voice", content=audio_bytes(voice_like(3.0, 16_000), 16_000),
                    headers={"Content-Type": "audio/wav"})
        assert ok.status_code == 200
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200, f"peak memory grew {grown_mb:.0f} MB"


def test_a_sample_rate_bomb_is_refused_from_the_header():
    """599 s at 655,350 Hz passed the seconds limit and decoded to gigabytes (issue 34): the rate is
    bounded as well as the length, and nothing is decoded."""
    import resource

    rate = 655_350
    out = io.BytesIO()
    with sf.SoundFile(out, "w", rate, 1, format="FLAC") as handle:
        block = np.zeros(rate * 10, np.float32)
        for _ in range(60):
            handle.write(block)
    bomb = out.getvalue()
    assert len(bomb) < 2_000_000
    app = create_app(ServeConfig(workers=1, max_audio_seconds=600), route_modules=ROUTES)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with TestClient(app) as c:
        answer = c.post("/v1/voice", content=bomb, headers={"Content-Type": "audio/flac"})
    assert answer.status_code == 413, answer.text
    assert "655,350 Hz is over the limit of 192,000 Hz" in answer.json()["detail"]
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 200


def test_high_rate_uploads_are_resampled_block_by_block_and_keep_their_rate(client):
    from emodetect.voice.features import decode_audio, resample

    x = voice_like(3.0, 96_000)
    decoded = decode_audio(audio_bytes(x, 96_000), to_rate=16_000)
    assert decoded.sample_rate == 16_000 and decoded.source_rate == 96_000
    whole = resample(x, 96_000)
    assert abs(len(decoded.samples) - len(whole)) <= 1
    n = min(len(whole), len(decoded.samples))
    assert np.abs(decoded.samples[:n] - whole[:n]).max() < 1e-3  # streamed equals one-shot
    many = np.tile(x[:, None], (1, 8))  # 8 channels: blocks of 2**20 samples in all, not 10 s x 8
    assert np.allclose(decode_audio(audio_bytes(many, 96_000), to_rate=16_000).samples, decoded.samples, atol=1e-4)
    answer = client.post("/v1/voice", content=audio_bytes(voice_like(2.0, 48_000), 48_000),
                         headers={"Content-Type": "audio/wav"})
    assert answer.status_code == 200 and answer.json()["sample_rate"] == 48_000
