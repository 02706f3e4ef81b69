"""Property-based fuzzing (hypothesis) of what users and clients send: corrupt and odd images,
odd audio arrays, odd texts, through the library and the HTTP routes. The property: a result or
the documented error (an `InputError`, a 4xx), never another exception, never a 5xx."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emodetect.errors import InputError

SAMPLES = Path(__file__).resolve().parent.parent / "emodetect" / "assets" / "samples"
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow])


def _small_images() -> dict[str, bytes]:
    from PIL import Image

    rgb = Image.open(SAMPLES / "astronaut.jpg").convert("RGB").resize((64, 64))
    out = {}
    for fmt, mode in (("JPEG", "RGB"), ("PNG", "RGBA"), ("GIF", "P"), ("TIFF", "I;16"), ("BMP", "L"),
                      ("WEBP", "RGB"), ("PPM", "RGB")):
        buffer = io.BytesIO()
        rgb.convert(mode if mode != "I;16" else "L").convert(mode).save(buffer, format=fmt)
        out[fmt] = buffer.getvalue()
    return out


IMAGES = _small_images()


@st.composite
def damaged_images(draw) -> bytes:
    """A real small image of some format, then bytes flipped, cut or spliced."""
    data = bytearray(IMAGES[draw(st.sampled_from(sorted(IMAGES)))])
    for _ in range(draw(st.integers(0, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    if draw(st.booleans()):
        data += draw(st.binary(max_size=64))
    return bytes(data)


@pytest.fixture(scope="module")
def detector():
    from emodetect.vision.pipeline import EmotionDetector

    return EmotionDetector(threads=1)


@FUZZ
@given(data=damaged_images())
def test_any_damaged_image_gives_a_result_or_an_image_error(detector, data):
    try:
        result = detector.detect(data)
    except InputError:
        return
    assert all(0 <= f.confidence <= 1 for f in result.faces)


@FUZZ
@given(shape=st.sampled_from([(0,), (7,), (8000,), (16000, 2), (2, 16000), (16000, 6), (3, 3, 3)]),
       fill=st.sampled_from(["noise", "nan", "inf", "huge", "zeros", "tiny"]),
       rate=st.sampled_from([8000, 16000, 44100, 1, 0, -5]))
def test_any_audio_array_gives_a_result_or_an_audio_error(shape, fill, rate):
    from emodetect.voice.pipeline import VoiceEmotion

    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.3, shape).astype(np.float32)
    if fill == "nan" and x.size:
        x.flat[x.size // 2] = np.nan
    elif fill == "inf" and x.size:
        x.flat[0] = np.inf
    elif fill == "huge":
        x *= 1e30
    elif fill == "zeros":
        x[:] = 0
    elif fill == "tiny":
        x *= 1e-30
    try:
        result = _voice(VoiceEmotion).predict(x, sample_rate=rate)
    except InputError:
        return
    assert result.label is None or np.isfinite(result.confidence)
    assert all(np.isfinite(v) for v in result.probabilities.values())


_ENGINES: dict = {}


def _voice(cls):
    if "voice" not in _ENGINES:
        _ENGINES["voice"] = cls(threads=1)
    return _ENGINES["voice"]


@FUZZ
@given(texts=st.lists(st.one_of(st.text(max_size=300), st.sampled_from(["", " ", "\0", "😀" * 50, "مرحبا بالعالم",
                                                                       "a" * 5000, "\u202e reversed"])),
                      min_size=1, max_size=5))
def test_any_text_gives_a_result_per_text(texts):
    from emodetect.text.pipeline import TextEmotion

    if "text" not in _ENGINES:
        _ENGINES["text"] = TextEmotion(threads=1)
    results = _ENGINES["text"].predict(texts)
    assert len(results) == len(texts)
    for r in results:
        assert (r.label is None) == (r.error is not None)
        assert r.label is None or r.label in r.labels


@pytest.fixture(scope="module")
def client():
    pytest.importorskip("fastapi")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from emodetect.serve import ServeConfig, create_app

    with TestClient(create_app(ServeConfig(workers=1, max_upload_bytes=200_000)), raise_server_exceptions=False) as c:
        yield c


@FUZZ
@given(route=st.sampled_from(["/v1/detect", "/v1/voice", "/v1/text"]),
       body=st.one_of(damaged_images(), st.binary(max_size=2000),
                      st.text(max_size=200).map(lambda t: ('{"texts": ["' + t + '"]}').encode("utf-8", "surrogatepass"))),
       content_type=st.sampled_from(["image/jpeg", "audio/wav", "application/json", "", "multipart/form-data",
                                     "multipart/form-data; boundary=x", "text/plain"]))
def test_no_request_body_makes_the_service_fail(client, route, body, content_type):
    answer = client.post(route, content=body, headers={"Content-Type": content_type} if content_type else {})
    assert answer.status_code < 500, (route, content_type, answer.text[:300])
    assert answer.headers["content-type"].startswith("application/json")
