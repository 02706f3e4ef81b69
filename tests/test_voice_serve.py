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


def pyav_audio(x: np.ndarray, rate: int, codec: str, container_format: str) -> bytes:
    """A recording encoded in memory by PyAV, as a phone (aac in m4a) or a browser (opus in webm) makes it."""
    import av

    out = io.BytesIO()
    with av.open(out, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = "mono"
        fmt = stream.codec_context.format.name
        resampler = av.AudioResampler(format=fmt, layout="mono", rate=rate)
        step = stream.codec_context.frame_size or 1024
        for start in range(0, len(x), step):
            frame = av.AudioFrame.from_ndarray(x[None, start:start + step].astype(np.float32), format="flt", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            for converted in resampler.resample(frame):
                for packet in stream.encode(converted):
                    container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


@pytest.mark.parametrize("name, codec, container_format, media_type", [
    ("call.m4a", "aac", "ipod", "audio/mp4"), ("note.webm", "libopus", "webm", "audio/webm")])
def test_an_m4a_or_webm_upload_is_read_as_the_cli_reads_it(client, name, codec, container_format, media_type):
    """/v1/voice answered 415 to a phone's .m4a that `emodetect voice` reads (issue 32, point 7)."""
    import av

    if codec not in av.codecs_available:
        pytest.skip(f"this FFmpeg has no {codec} encoder")
    rate = 48_000 if codec == "libopus" else 44_100
    data = pyav_audio(voice_like(3.0, rate), rate, codec, container_format)
    response = client.post("/v1/voice", files={"file": (name, data, media_type)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source"] == name and body["sample_rate"] == rate
    assert body["duration_s"] == pytest.approx(3.0, abs=0.1) and body["label"] is not None
    raw = client.post("/v1/voice", content=data, headers={"content-type": media_type})
    assert raw.status_code == 200, raw.text


def test_a_playlist_upload_is_not_opened(client):
    """Only the audio containers named by their first bytes reach FFmpeg: an HLS playlist naming a
    server file is refused, never followed."""
    playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
    response = client.post("/v1/voice", files={"file": ("list.m3u8", playlist, "audio/x-mpegurl")})
    assert response.status_code == 415 and "M4A" in response.json()["detail"]
