"""The HTTP service: every route, and every way an upload can be bad (never a 500 for bad input)."""

from __future__ import annotations

import io
import struct
import threading
import time
import warnings
import zlib
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
with warnings.catch_warnings():  # starlette 1.x nudges towards httpx2; httpx still works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from emodetect.serve import ServeConfig, create_app
from emodetect.serve import routes_vision

SAMPLES = Path(str(resources.files("emodetect.assets"))) / "samples"
BAD_INPUT = {400, 413, 415, 422}


@pytest.fixture(scope="module")
def astronaut() -> bytes:
    return (SAMPLES / "astronaut.jpg").read_bytes()


@pytest.fixture(scope="module")
def client():
    # Small limits so that the limit tests need no big payloads.
    app = create_app(ServeConfig(workers=2, max_upload_bytes=2_000_000, max_pixels=4_000_000))
    with TestClient(app) as c:
        yield c


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def png_claiming_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height: a decompression bomb's calling card."""
    data = bytearray(png_bytes(Image.new("L", (8, 8))))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr:ihdr + 17])) & 0xFFFFFFFF
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", crc)
    return bytes(data)


def detail(response) -> str:
    body = response.json()
    assert isinstance(body["detail"], str), body
    return body["detail"]


# ---- health, readiness, models

def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_is_503_before_start_up_and_200_after():
    app = create_app(workers=1)
    cold = TestClient(app)  # without `with`, the lifespan (model loading) has not run
    response = cold.get("/readyz")
    assert response.status_code == 503 and response.json()["ready"] is False
    assert cold.post("/v1/detect", content=b"x").status_code == 503
    with TestClient(app) as warm:
        response = warm.get("/readyz")
        assert response.status_code == 200
        body = response.json()  # other modalities (text, voice) add their own services
        assert body["ready"] is True and body["services"]["vision"] is True and all(body["services"].values())


def test_models_lists_every_bundled_model_and_marks_the_loaded_one(client):
    from emodetect.runtime import bundled_models

    response = client.get("/v1/models")
    assert response.status_code == 200
    listed = response.json()["models"]
    assert sorted(m["file"] for m in listed) == sorted(m.path.name for m in bundled_models())
    loaded = [m for m in listed if m["loaded"] and m["modality"] == "vision"]  # one per modality
    assert [m["file"] for m in loaded] == ["emotion_default.onnx"]
    assert loaded[0]["labels"] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


# ---- detection

def test_detect_returns_the_same_json_as_the_library(client, astronaut):
    from emodetect import EmotionDetector

    expected = EmotionDetector().detect(astronaut).to_dict()
    response = client.post("/v1/detect", files={"file": ("astronaut.jpg", astronaut, "image/jpeg")})
    assert response.status_code == 200, response.text
    assert response.json() == expected
    assert response.headers["x-faces"] == str(len(expected["faces"])) and expected["faces"]
    assert response.headers["cache-control"] == "no-store"


def test_raw_body_and_multipart_give_the_same_answer(client, astronaut):
    multipart = client.post("/v1/detect", files={"file": ("a.jpg", astronaut, "image/jpeg")}).json()
    for content_type in ("image/jpeg", "application/octet-stream", None):
        headers = {"content-type": content_type} if content_type else {}
        raw = client.post("/v1/detect", content=astronaut, headers=headers)
        assert raw.status_code == 200, (content_type, raw.text)
        assert raw.json() == multipart


def test_annotate_returns_the_image_with_boxes_drawn(client, astronaut):
    response = client.post("/v1/detect?annotate=true", content=astronaut, headers={"content-type": "image/jpeg"})
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    annotated = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"), dtype=np.int16)
    original = np.asarray(Image.open(io.BytesIO(astronaut)).convert("RGB"), dtype=np.int16)
    assert annotated.shape == original.shape
    face = client.post("/v1/detect", content=astronaut).json()["faces"][0]["box"]
    # The box outline changes the pixels on the face's top edge far beyond JPEG noise.
    edge = np.abs(annotated - original)[face["y"], face["x"]:face["x"] + face["width"]]
    assert edge.mean() > 40


def test_png_in_gives_png_out_and_format_overrides(client, astronaut):
    png = png_bytes(Image.open(io.BytesIO(astronaut)))
    response = client.post("/v1/detect?annotate=true", content=png, headers={"content-type": "image/png"})
    assert response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).format == "PNG"
    response = client.post("/v1/detect?annotate=true&format=jpeg", content=png)
    assert Image.open(io.BytesIO(response.content)).format == "JPEG"


def test_blur_hides_the_face(client, astronaut):
    box = client.post("/v1/detect", content=astronaut).json()["faces"][0]["box"]
    plain = client.post("/v1/detect?annotate=true&format=png", content=astronaut)
    blurred = client.post("/v1/detect?blur=true&format=png", content=astronaut)
    assert blurred.status_code == 200 and blurred.headers["content-type"] == "image/png"

    def detail_energy(data: bytes) -> float:
        grey = np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=np.float32)
        inner = grey[box["y"] + 10:box["y"] + box["height"] - 10, box["x"] + 10:box["x"] + box["width"] - 10]
        return float(np.abs(np.diff(inner, axis=1)).mean())

    assert detail_energy(blurred.content) < 0.5 * detail_energy(plain.content)


# ---- bad input: a JSON error naming the problem, never a 500

@pytest.mark.parametrize("kwargs", [
    {"content": b""},
    {"content": b"", "headers": {"content-type": "image/jpeg"}},
    {"files": {"file": ("empty.jpg", b"", "image/jpeg")}},
])
def test_empty_upload_is_400(client, kwargs):
    response = client.post("/v1/detect", **kwargs)
    assert response.status_code == 400
    assert "empty upload" in detail(response)


def test_text_file_uploaded_as_image_is_415(client):
    response = client.post("/v1/detect", files={"file": ("notes.jpg", b"dear diary, " * 50, "image/jpeg")})
    assert response.status_code == 415
    assert "not an image" in detail(response) and "JPEG" in detail(response)


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", "application/x-www-form-urlencoded"])
def test_non_image_content_type_is_415_naming_it(client, astronaut, content_type):
    response = client.post("/v1/detect", content=astronaut, headers={"content-type": content_type})
    assert response.status_code == 415
    assert content_type in detail(response)


def test_truncated_jpeg_is_422(client, astronaut):
    response = client.post("/v1/detect", content=astronaut[: len(astronaut) // 3])
    assert response.status_code == 422
    assert "truncated" in detail(response)


def test_corrupt_png_is_422(client, astronaut):
    png = bytearray(png_bytes(Image.open(io.BytesIO(astronaut))))
    start = png.index(b"IDAT") + 200
    png[start:start + 2000] = bytes(2000)  # zeroes in the middle of the compressed pixels
    response = client.post("/v1/detect", content=bytes(png))
    assert response.status_code == 422, response.text
    assert "PNG" in detail(response)


def test_upload_over_the_byte_limit_is_413(client):
    big = b"\xff\xd8" + bytes(2_000_001)
    for kwargs in ({"content": big}, {"files": {"file": ("big.jpg", big, "image/jpeg")}}):
        response = client.post("/v1/detect", **kwargs)
        assert response.status_code == 413
        assert "2,000,000 bytes" in detail(response)


def test_streamed_upload_without_length_is_cut_at_the_limit(client):
    sent = []

    def chunks():
        for _ in range(100):  # up to 6.4 MB, but the server stops reading after 2 MB
            sent.append(1)
            yield bytes(64 * 1024)

    response = client.post("/v1/detect", content=chunks())
    assert response.status_code == 413


def test_default_limit_is_10_mb():
    config = ServeConfig()
    assert config.max_upload_bytes == 10 * 1024 * 1024
    with TestClient(create_app(config)) as c:
        assert c.post("/v1/detect", content=bytes(10 * 1024 * 1024 + 1)).status_code == 413
        # Just under the limit the body is read and judged on its content instead.
        assert c.post("/v1/detect", content=bytes(10 * 1024 * 1024)).status_code == 415


def test_decompression_bomb_is_413_before_decoding(client):
    header_only = png_claiming_size(100_000, 100_000)
    response = client.post("/v1/detect", content=header_only)
    assert response.status_code == 413
    assert "10,000,000,000" in detail(response) and "4,000,000" in detail(response)
    # Over this app's limit but under PIL's own: refused by the service's check of the header.
    response = client.post("/v1/detect", content=png_claiming_size(5000, 1000))
    assert response.status_code == 413 and "5000x1000" in detail(response)
    # A real one: 3000 x 3000 zeros compress to a few KB but decode to 9 MP, over this app's 4 MP.
    bomb = png_bytes(Image.new("L", (3000, 3000)))
    assert len(bomb) < 100_000
    response = client.post("/v1/detect", content=bomb)
    assert response.status_code == 413 and "3000x3000" in detail(response)


def test_multipart_without_file_field_is_422_naming_what_came(client, astronaut):
    response = client.post("/v1/detect", files={"photo": ("a.jpg", astronaut, "image/jpeg")})
    assert response.status_code == 422
    assert "'file'" in detail(response) and "'photo'" in detail(response)


def test_malformed_multipart_is_400(client):
    no_boundary = client.post("/v1/detect", content=b"--x\r\n", headers={"content-type": "multipart/form-data"})
    assert no_boundary.status_code == 400 and "boundary" in detail(no_boundary)
    truncated = client.post("/v1/detect", content=b'--xyz\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc',
                            headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert truncated.status_code == 400 and "truncated" in detail(truncated)


@pytest.mark.parametrize("query, name", [("annotate=maybe", "annotate"), ("format=gif", "format"),
                                         ("colour=red", "colour")])
def test_bad_query_parameter_is_422_naming_it(client, astronaut, query, name):
    response = client.post(f"/v1/detect?{query}", content=astronaut)
    assert response.status_code == 422
    assert f"query parameter {name}" in detail(response)


def test_garbage_never_gives_a_500(client, astronaut):
    rng = np.random.default_rng(0)
    bodies = [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in (1, 7, 100, 5000)]
    bodies += [b"\x89PNG\r\n\x1a\n" + bytes(50), b"\xff\xd8\xff" + bytes(50), b"GIF89a" + bytes(20),
               b"BM" + bytes(60), b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(30), astronaut[:600],
               astronaut[:-4000], png_claiming_size(0, 10)]
    for body in bodies:
        for kwargs in ({"content": body}, {"files": {"file": ("x", body, "application/octet-stream")}}):
            response = client.post("/v1/detect", **kwargs)
            assert response.status_code in BAD_INPUT | {200}, (body[:12], response.status_code, response.text)
            if response.status_code != 200:
                assert detail(response)


# ---- privacy and architecture

def test_uploads_are_never_written_to_disk(client, monkeypatch):
    import builtins
    import tempfile

    def refuse(*args, **kwargs):
        raise AssertionError("the service tried to write an upload to disk")

    real_open = builtins.open

    def read_only_open(file, mode="r", *args, **kwargs):
        if any(flag in mode for flag in "wax+"):
            refuse()
        return real_open(file, mode, *args, **kwargs)

    for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    monkeypatch.setattr(builtins, "open", read_only_open)
    # 1.5 MB: over the 1 MB at which FastAPI's UploadFile would spill to a temporary file.
    noise = np.random.default_rng(1).integers(0, 256, (600, 850, 3), dtype=np.uint8)
    payload = png_bytes(Image.fromarray(noise))
    assert len(payload) > 1_100_000
    response = client.post("/v1/detect", files={"file": ("noise.png", payload, "image/png")})
    assert response.status_code == 200, response.text


def test_uploads_are_not_logged(client, astronaut, caplog):
    caplog.set_level("DEBUG")
    marker = "secret-holiday-photo"
    client.post("/v1/detect", files={"file": (f"{marker}.jpg", astronaut, "image/jpeg")})
    client.post("/v1/detect", files={"file": (f"{marker}.jpg", b"not an image", "image/jpeg")})
    assert marker not in caplog.text
    assert all(not isinstance(r.msg, (bytes, bytearray)) for r in caplog.records)


def test_inference_runs_off_the_event_loop(client, astronaut, monkeypatch):
    release = threading.Event()
    entered = threading.Event()
    real = routes_vision.analyse

    def slow_analyse(*args):
        entered.set()
        release.wait(timeout=10)  # if this blocked the event loop, /healthz would wait 10 s
        return real(*args)

    monkeypatch.setattr(routes_vision, "analyse", slow_analyse)
    results = {}
    worker = threading.Thread(target=lambda: results.update(r=client.post("/v1/detect", content=astronaut)))
    worker.start()
    assert entered.wait(timeout=10)
    start = time.perf_counter()
    assert client.get("/healthz").status_code == 200
    answered_in = time.perf_counter() - start
    release.set()
    worker.join(timeout=20)
    assert answered_in < 2.0
    assert results["r"].status_code == 200


def test_each_app_keeps_its_own_settings(astronaut):
    strict = create_app(workers=1, max_upload_bytes=1000)
    lenient = create_app(workers=1)
    with TestClient(strict) as a, TestClient(lenient) as b:
        assert a.post("/v1/detect", content=astronaut).status_code == 413
        assert b.post("/v1/detect", content=astronaut).status_code == 200


def test_concurrent_requests_all_answered(client, astronaut):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: client.post("/v1/detect", content=astronaut).status_code, range(16)))
    assert codes == [200] * 16


def test_page_and_api_docs_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "not kept" in page.text and "/static/app.js" in page.text
    assert "getUserMedia" in client.get("/static/app.js").text
    spec = client.get("/openapi.json").json()
    detect = spec["paths"]["/v1/detect"]["post"]
    assert "file" in detect["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert {"400", "413", "415", "422"} <= set(detect["responses"])
    assert {"/healthz", "/readyz", "/v1/models"} <= set(spec["paths"])


def test_cli_serve_refuses_an_unknown_model():
    from typer.testing import CliRunner

    from emodetect.cli import app

    result = CliRunner().invoke(app, ["serve", "--model", "no-such-model"])
    assert result.exit_code == 2
    assert "no-such-model" in result.output


def test_config_refuses_nonsense_limits():
    with pytest.raises(ValueError, match="max_upload_bytes"):
        ServeConfig(max_upload_bytes=0)
    with pytest.raises(ValueError, match="workers"):
        ServeConfig(workers=0)
