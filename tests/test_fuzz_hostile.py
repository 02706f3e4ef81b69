"""Property-based fuzzing of the hostile kinds of input of issue 34 (hypothesis, derandomized, a few
examples each so the file runs in a couple of minutes on 2 cores):

- playlists and nested references (HLS, ffconcat, image-sequence patterns, protocol names, mp4 and
  Matroska polyglots, an mp4 whose data reference says "elsewhere") to /v1/video and /v1/voice:
  a 4xx, never a 200 analysing a file on the server, never a 5xx;
- frame-count and frame-size bombs (tiny files whose header lies about duration and size) and
  sample-rate bombs (WAV and FLAC headers with absurd rates): 413 past the limit, never a 5xx;
- idle sockets that connect and send nothing (or half a head): /healthz and a real request answer;
- many faces to /v1/explain: answered, maps capped; many subtitle cues: 413 past MAX_CUES;
- names that are not UTF-8 (multipart filenames, `emodetect detect`, `emodetect batch`'s listing);
- damaged Parquet files in a batch output folder: moved aside, never a failed rerun;
- hostile ONNX files to `--model` (truncated, flipped, wrong shapes, NaN, huge declared dims):
  a ModelError naming the file, never another exception;
- garbage frames on WS /v1/voice/stream: closed with 1003/1007/1008/1009, the service goes on.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import struct
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("fastapi")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

from conftest import speech_like, write_clip  # noqa: E402
from emodetect.serve import ServeConfig, create_app  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "emodetect" / "assets" / "samples"


def fuzz(examples: int):
    """Few examples, no deadline (a busy 2-core machine), the same examples every run."""
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz_hostile")


# ---- playlists and nested references -------------------------------------------------------------

SECRET_FRAMES = 37  # a count no upload below has: a 200 with 37 frames read the server's file


@pytest.fixture(scope="module")
def secrets(scratch) -> dict[str, Path]:
    """Files on the server that no client sent: what a hostile playlist names."""
    import soundfile as sf

    video = write_clip(scratch / "private_video.ts", [np.full((64, 64, 3), 5 * i, np.uint8)
                                                      for i in range(SECRET_FRAMES)], 10, container="mpegts")
    shutil.copy(video, scratch / "private_video.mp4")
    sf.write(scratch / "private_voice.wav", speech_like(3.7), 16_000)
    return {"video": video, "video_mp4": scratch / "private_video.mp4", "audio": scratch / "private_voice.wav"}


@pytest.fixture(scope="module")
def small_clip(scratch) -> bytes:
    frames = [np.full((64, 64, 3), 9 * i, np.uint8) for i in range(10)]
    return write_clip(scratch / "small.mp4", frames, 10).read_bytes()


@st.composite
def references(draw, target: str) -> str:
    """One way of naming a server file inside an upload."""
    return draw(st.sampled_from([target, f"file:{target}", f"file://{target}", f"concat:{target}|{target}",
                                 f"subfile,,start,0,end,0,,:{target}", "../" * 8 + target.lstrip("/"),
                                 "http://127.0.0.1:1/x.ts", f"crypto:{target}", f"async:file:{target}"]))


@st.composite
def nested_uploads(draw, secret: str, clip: bytes) -> tuple[str, bytes]:
    """(upload name, bytes) of a playlist, list or container that names another file."""
    ref = draw(references(secret))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    bom = draw(st.sampled_from(["", "\ufeff"]))
    kind = draw(st.sampled_from(["hls", "hls_master", "m3u", "ffconcat", "pattern", "sdp", "mp4_polyglot",
                                 "mkv_polyglot", "mp4_dref"]))
    lines = {
        "hls": ["#EXTM3U", "#EXT-X-TARGETDURATION:1", "#EXT-X-MEDIA-SEQUENCE:0", "#EXTINF:1.0,", ref,
                "#EXT-X-ENDLIST"],
        "hls_master": ["#EXTM3U", "#EXT-X-STREAM-INF:BANDWIDTH=1", ref],
        "m3u": ["#EXTM3U", ref],
        "ffconcat": ["ffconcat version 1.0", f"file '{ref}'", "duration 1"],
        "sdp": ["v=0", "o=- 0 0 IN IP4 127.0.0.1", "s=x", "c=IN IP4 127.0.0.1", "t=0 0", "m=video 1 RTP/AVP 96"],
    }
    name = draw(st.sampled_from(["x.m3u8", "x.m3u", "list.ffconcat", "list.txt", "clip.mp4", "a.mkv", "x.sdp",
                                 "frames%03d.png", "*.png", f"file:{secret}"]))
    if kind in lines:
        return name, (bom + newline.join(lines[kind]) + newline).encode()
    if kind == "pattern":  # an image-sequence name over a PNG body: image2 would read frames001.png...
        pattern = draw(st.sampled_from(["frames%03d.png", "img%d.jpg", "*.png", "x_%04d.bmp"]))
        return pattern, b"\x89PNG\r\n\x1a\n" + bytes(64)
    playlist = newline.join(lines["hls"]).encode()
    if kind == "mp4_polyglot":  # an ftyp box (what sniffing looks at) in front of a playlist
        return name, b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + newline.encode() + playlist
    if kind == "mkv_polyglot":
        return name, b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x88matroska" + playlist
    # mp4_dref: a real clip whose data reference says "not in this file" (flags 0); FFmpeg's mov
    # demuxer would open the named file with enable_drefs
    data = bytearray(clip)
    at = data.find(b"url \x00\x00\x00\x01")
    if at >= 0:
        data[at + 7] = 0
    return name, bytes(data)


def _post(client, route: str, name: str, body: bytes, multipart: bool, content_type: str):
    if multipart:
        return client.post(route, files={"file": (name, body, content_type)})
    return client.post(route, content=body, headers={"content-type": content_type})


@pytest.fixture(scope="module")
def media_client():
    with TestClient(create_app(ServeConfig(workers=1, words=False)), raise_server_exceptions=False) as c:
        yield c


@fuzz(25)
@given(data=st.data(), multipart=st.booleans())
def test_nested_references_never_read_a_server_file(media_client, secrets, small_clip, data, multipart):
    target = data.draw(st.sampled_from([secrets["video"], secrets["video_mp4"]]))
    name, body = data.draw(nested_uploads(str(target), small_clip))
    answer = _post(media_client, "/v1/video", name, body, multipart, "video/mp4")
    assert answer.status_code < 500, (name, body[:80], answer.text[:300])
    if answer.status_code == 200:  # only the mp4 with a foreign data reference may pass: as itself
        assert answer.json()["faces"]["frames_read"] == 10, (name, body[:80])
    else:
        assert 400 <= answer.status_code < 500
        assert str(target.parent) not in answer.text  # the server's folders are not named either


@fuzz(20)
@given(data=st.data(), multipart=st.booleans())
def test_nested_references_to_voice_are_refused(media_client, secrets, small_clip, data, multipart):
    name, body = data.draw(nested_uploads(str(secrets["audio"]), small_clip))
    answer = _post(media_client, "/v1/voice", name, body, multipart, "audio/wav")
    assert answer.status_code < 500, (name, body[:80], answer.text[:300])
    if answer.status_code == 200:  # the silent 1 s clip's own sound track, never 3.7 s of speech
        assert abs(answer.json()["duration_s"] - 3.7) > 0.3, (name, body[:80])


# ---- frame-count and frame-size bombs ---------------------------------------------------------------

MAX_FRAMES, MAX_PIXELS = 48, 160 * 160


def _lie_about_duration(data: bytes) -> bytes:
    """The container's header says the clip is a tiny fraction of a second long."""
    data = bytearray(data)
    for box in (b"mvhd", b"mdhd"):  # mp4: version 0 boxes, duration after the timescale
        at = data.find(box)
        if at >= 0 and data[at + 4] == 0:
            data[at + 20:at + 24] = struct.pack(">I", 1)
    at = data.find(b"\x44\x89\x88")  # Matroska: an 8-byte float Duration element
    if at >= 0:
        data[at + 3:at + 11] = struct.pack(">d", 0.001)
    return bytes(data)


@pytest.fixture(scope="module")
def bomb_client():
    config = ServeConfig(workers=1, words=False, max_video_frames=MAX_FRAMES, max_pixels=MAX_PIXELS)
    with TestClient(create_app(config), raise_server_exceptions=False) as c:
        yield c


@fuzz(15)
@given(side=st.sampled_from([(16, 16), (64, 48), (160, 160), (176, 160), (320, 32), (512, 512)]),
       frames=st.integers(1, 120), fps=st.sampled_from([1, 5, 25, 1000, 5000]),
       container=st.sampled_from(["mp4", "mkv"]), lie=st.booleans())
def test_frame_count_and_size_bombs_are_refused_whatever_the_header_says(bomb_client, scratch, side, frames, fps,
                                                                          container, lie):
    width, height = side
    path = write_clip(scratch / f"bomb.{container}", [np.full((height, width, 3), (7 * i) % 250, np.uint8)
                                                       for i in range(frames)], fps)
    body = _lie_about_duration(path.read_bytes()) if lie else path.read_bytes()
    assert len(body) < 200_000  # bombs stay small in bytes
    answer = bomb_client.post("/v1/video", files={"file": (path.name, body, "video/mp4")})
    assert answer.status_code < 500, answer.text[:300]
    if width * height > MAX_PIXELS:
        assert answer.status_code == 413 and "limit is" in answer.json()["detail"], answer.text[:300]
    elif frames > MAX_FRAMES:
        assert answer.status_code == 413 and f"limit is {MAX_FRAMES}" in answer.json()["detail"], answer.text[:300]
    elif answer.status_code == 200:
        assert answer.json()["faces"]["frames_read"] <= MAX_FRAMES


# ---- sample-rate bombs ------------------------------------------------------------------------------------

def _wav(rate: int, channels: int, payload: bytes, data_size: int | None) -> bytes:
    size = len(payload) if data_size is None else data_size
    fmt = struct.pack("<HHIIHH", 1, channels, rate & 0xFFFFFFFF, (rate * channels * 2) & 0xFFFFFFFF, channels * 2, 16)
    return (b"RIFF" + struct.pack("<I", (36 + size) & 0xFFFFFFFF) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", size & 0xFFFFFFFF) + payload)


def _flac(rate: int, total_samples: int | None) -> bytes:
    """A real 16 kHz FLAC whose STREAMINFO says `rate` (20 bits) and maybe another length (36 bits)."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, speech_like(0.5), 16_000, format="FLAC")
    data = bytearray(buffer.getvalue())
    assert data[:4] == b"fLaC"
    bits = int.from_bytes(data[18:26], "big")  # rate 20 | channels-1 3 | bits-1 5 | samples 36
    bits = (bits & ((1 << 44) - 1)) | ((rate & 0xFFFFF) << 44)
    if total_samples is not None:
        bits = (bits & ~((1 << 36) - 1)) | (total_samples & ((1 << 36) - 1))
    data[18:26] = bits.to_bytes(8, "big")
    return bytes(data)


@fuzz(20)
@given(kind=st.sampled_from(["wav", "flac"]),
       rate=st.one_of(st.integers(192_001, 2**32 - 1), st.sampled_from([192_001, 655_350, 1_048_575, 2**31, 0, 1])),
       channels=st.sampled_from([1, 2, 8]), samples=st.integers(0, 4000), lie=st.booleans())
def test_sample_rate_bombs_are_refused_from_the_header(media_client, kind, rate, channels, samples, lie):
    if kind == "wav":
        body = _wav(rate, channels, bytes(2 * channels * samples), 0xFFFFFFF0 if lie else None)
    else:
        rate = min(rate, 0xFFFFF)  # STREAMINFO has 20 bits for it
        body = _flac(rate, 2**35 if lie else None)
    answer = media_client.post("/v1/voice", content=body, headers={"content-type": "audio/wav"})
    assert answer.status_code < 500, (kind, rate, answer.text[:300])
    if rate > 192_000:  # refused: 413 from the header, or libsndfile's own refusal of an odd one
        assert answer.status_code in (400, 413, 415, 422), (kind, rate, answer.status_code, answer.text[:300])


# ---- idle sockets ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli_like_server():
    """A real uvicorn server with `emodetect serve`'s settings (serve.server.server_config)."""
    from test_serve_hardening import ROUTES, _start

    from emodetect.serve.security import LOOPBACK_HOSTS

    app = create_app(ServeConfig(workers=1, allowed_hosts=LOOPBACK_HOSTS, max_in_flight=5, head_timeout_s=2.0),
                     route_modules=ROUTES)
    server, thread, port = _start(app)
    yield port
    server.should_exit = True
    thread.join(10)


@fuzz(12)
@given(openers=st.lists(st.sampled_from([b"", b"GET /healthz HTTP/1.1\r\n", b"POST /v1/text HTTP/1.1\r\nHost: l",
                                         b"G", b"\x16\x03\x01\x02\x00\x01"]), min_size=1, max_size=40))
def test_idle_sockets_never_keep_health_or_requests_from_answering(cli_like_server, openers):
    from test_serve_hardening import _get, _post_text, _status

    port = cli_like_server
    idle = []
    try:
        for first in openers:  # connect, maybe send the start of a head (or a TLS hello), then nothing
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            if first:
                s.sendall(first)
            idle.append(s)
        time.sleep(0.1)
        started = time.monotonic()
        assert _status(_get(port, "/healthz")).endswith(b"200 OK")
        assert _status(_post_text(port)).endswith(b"200 OK")
        assert time.monotonic() - started < 5
    finally:
        for s in idle:
            s.close()


# ---- many faces, many cues ------------------------------------------------------------------------------

EXPLAIN_CAP = 2


@pytest.fixture(scope="module")
def explain_client():
    config = ServeConfig(workers=1, model="realtime-int8", max_explain_faces=EXPLAIN_CAP)
    with TestClient(create_app(config), raise_server_exceptions=False) as c:
        yield c


@fuzz(6)
@given(rows=st.integers(1, 6), cols=st.integers(1, 6), tile=st.sampled_from([64, 96, 128]))
def test_many_faces_are_answered_with_maps_capped(explain_client, rows, cols, tile):
    from PIL import Image

    face = Image.open(SAMPLES / "astronaut.jpg").convert("RGB").resize((tile, tile))
    sheet = Image.new("RGB", (cols * tile, rows * tile))
    for r in range(rows):
        for c in range(cols):
            sheet.paste(face, (c * tile, r * tile))
    buffer = io.BytesIO()
    sheet.save(buffer, format="JPEG")
    answer = explain_client.post("/v1/explain?method=occlusion", content=buffer.getvalue(),
                                 headers={"content-type": "image/jpeg"})
    assert answer.status_code == 200, answer.text[:300]
    body = answer.json()
    found = len(body["faces"]) + len(body["unexplained"])
    assert len(body["faces"]) == min(found, EXPLAIN_CAP)
    assert answer.headers["X-Faces"] == str(found) and answer.headers["X-Faces-Explained"] == str(len(body["faces"]))


@st.composite
def subtitles(draw) -> tuple[int, bytes]:
    """(cues, file) of SRT or WebVTT with more cues than the segment cap, in odd spellings."""
    from emodetect.multimodal import MAX_CUES

    n = draw(st.one_of(st.integers(1_001, 1_200), st.integers(MAX_CUES - 3, MAX_CUES + 3),
                       st.sampled_from([2 * MAX_CUES, 5 * MAX_CUES])))
    vtt = draw(st.booleans())
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    numbered = draw(st.booleans())
    arrow = draw(st.sampled_from(["-->", " --> ", "  -->  "]))
    comma = "." if vtt else ","
    cues = []
    for i in range(n):
        start = f"00:{(i // 600) % 60:02d}:{(i // 10) % 60:02d}{comma}{(i % 10) * 100:03d}"
        end = f"00:{(i // 600) % 60:02d}:{(i // 10) % 60:02d}{comma}{(i % 10) * 100 + 50:03d}"
        cues.append(newline.join(([str(i + 1)] if numbered else []) + [start + arrow + end, "hi"]))
    text = ("WEBVTT" + newline * 2 if vtt else "") + (newline * 2).join(cues) + newline
    return n, (draw(st.sampled_from(["", "\ufeff"])) + text).encode()


@fuzz(10)
@given(cues=subtitles())
def test_many_cues_are_refused_before_any_frame(media_client, small_clip, cues):
    from emodetect.multimodal import MAX_CUES

    n, text = cues
    started = time.monotonic()
    name = "a.vtt" if text.lstrip(b"\xef\xbb\xbf").startswith(b"WEBVTT") else "a.srt"
    answer = media_client.post("/v1/video", files={"file": ("a.mp4", small_clip, "video/mp4"),
                                                   "subtitles": (name, text, "text/plain")})
    assert answer.status_code == 413, (n, answer.text[:300])  # over the cues or the segments cap
    if n > MAX_CUES:
        assert "cues" in answer.json()["detail"] and f"{MAX_CUES:,}" in answer.json()["detail"], answer.text[:300]
    assert time.monotonic() - started < 30


# ---- names that are not UTF-8 -----------------------------------------------------------------------------

odd_names = st.lists(st.one_of(st.integers(0x80, 0xFF), st.sampled_from(list(b"az_. -(%"))),
                     min_size=1, max_size=24).map(bytes).filter(lambda b: b not in (b".", b".."))


def _multipart(name: bytes, body: bytes, content_type: str) -> tuple[bytes, str]:
    boundary = b"fuzzfuzzfuzz"
    return (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="' + name + b'"\r\n'
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body + b"\r\n--" + boundary + b"--\r\n",
            f"multipart/form-data; boundary={boundary.decode()}")


@fuzz(20)
@given(name=odd_names, route=st.sampled_from(["/v1/detect", "/v1/voice", "/v1/video"]))
def test_multipart_names_that_are_not_utf8_are_answered(media_client, small_clip, name, route):
    import soundfile as sf

    if route == "/v1/detect":
        upload, content_type = (SAMPLES / "astronaut.jpg").read_bytes(), "image/jpeg"
    elif route == "/v1/voice":
        buffer = io.BytesIO()
        sf.write(buffer, speech_like(1.0), 16_000, format="WAV")
        upload, content_type = buffer.getvalue(), "audio/wav"
    else:
        upload, content_type = small_clip, "video/mp4"
    body, header = _multipart(name + b".bin", upload, content_type)
    answer = media_client.post(route, content=body, headers={"content-type": header})
    assert answer.status_code == 200, (name, route, answer.text[:300])  # the name does not matter
    assert answer.headers["content-type"].startswith("application/json")
    json.dumps(answer.json()).encode("utf-8")  # an answer any client can read


@fuzz(6)
@given(name=odd_names)
def test_detect_on_a_file_named_in_bytes_that_are_not_utf8(scratch, name):
    from typer.testing import CliRunner

    from emodetect.cli import app

    folder = scratch / "odd_detect"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    path = Path(os.fsdecode(bytes(folder)) + "/" + os.fsdecode(name + b".jpg"))
    shutil.copy(SAMPLES / "astronaut.jpg", path)
    result = CliRunner().invoke(app, ["detect", str(path), "--json"])
    assert result.exit_code == 0, (name, result.output[-500:], result.exception)
    assert "Traceback" not in result.output
    assert json.loads(result.output.strip().splitlines()[-1])


@fuzz(10)
@given(names=st.lists(odd_names, min_size=1, max_size=6, unique=True))
def test_batch_lists_every_odd_name_as_a_row_parquet_can_hold(scratch, names):
    pa = pytest.importorskip("pyarrow")
    from emodetect.distributed import list_inputs

    folder = scratch / "odd_batch"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for name in names:
        shutil.copy(SAMPLES / "astronaut.jpg", os.fsdecode(bytes(folder)) + "/" + os.fsdecode(name + b".jpg"))
    kind, items = list_inputs(folder)
    assert kind == "images" and len(items) == len(names)
    pa.table({"source": [item["source"] for item in items]})  # Parquet strings are UTF-8: this once failed
    assert all(os.path.exists(item["path"]) for item in items)


# ---- damaged outputs -----------------------------------------------------------------------------------------

@fuzz(20)
@given(damage=st.sampled_from(["cut", "flip", "garbage", "empty", "no_source", "magic_only", "footer_cut"]),
       at=st.floats(0.0, 1.0), files=st.integers(1, 3))
def test_a_damaged_output_file_is_moved_aside_and_never_fails_a_rerun(scratch, damage, at, files):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    from emodetect.distributed import DAMAGED_PREFIX, done_sources

    out = scratch / "damaged_out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    for i in range(files):
        pq.write_table(pa.table({"source": [f"/in/{i}-{j}.jpg" for j in range(5)], "label": ["happy"] * 5}),
                       out / f"part-{i}.parquet")
    victim = out / "part-0.parquet"
    data = bytearray(victim.read_bytes())
    cut = int(at * (len(data) - 1))
    if damage == "cut":
        data = data[:cut]
    elif damage == "flip":  # flip a run of bytes, header and footer included
        for k in range(cut, min(cut + 16, len(data))):
            data[k] ^= 0xFF
    elif damage == "garbage":
        data = bytearray(np.random.default_rng(cut).integers(0, 256, 600, dtype=np.uint8).tobytes())
    elif damage == "empty":
        data = bytearray()
    elif damage == "no_source":
        buffer = io.BytesIO()
        pq.write_table(pa.table({"other": [1, 2]}), buffer)
        data = bytearray(buffer.getvalue())
    elif damage == "magic_only":
        data = bytearray(b"PAR1" + bytes(cut % 64) + b"PAR1")
    else:
        data = data[:-8] + data[-4:]  # the footer's length gone
    victim.write_bytes(bytes(data))
    damaged: list[str] = []
    done = done_sources(out, damaged)  # never raises: a damaged file once failed every rerun
    good = {f"/in/{i}-{j}.jpg" for i in range(1, files) for j in range(5)}
    assert done >= good
    if damaged:
        assert [Path(p).name for p in damaged] == [DAMAGED_PREFIX + "part-0.parquet"] and not victim.exists()
        assert done == good
    else:  # a flip that left the file readable: it stays, and is read as it is
        assert victim.exists()
    pq.read_table(out)  # what is left in the folder reads as one table


# ---- hostile ONNX files -------------------------------------------------------------------------------

@st.composite
def hostile_models(draw, folder: Path) -> Path:
    """An .onnx file: a cut or flipped real model, or a tiny graph with a wrong shape, a NaN or inf
    answer, a wrong output width or a huge declared input."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from emodetect.runtime import bundled_model_path

    path = folder / "hostile.onnx"
    kind = draw(st.sampled_from(["cut", "flip", "graph", "graph"]))
    if kind in ("cut", "flip"):
        data = bytearray(bundled_model_path("realtime-int8", "vision").read_bytes())
        if kind == "cut":
            data = data[:draw(st.integers(0, len(data) - 1))]
        else:
            rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
            for k in rng.integers(0, len(data), draw(st.integers(1, 64))):
                data[k] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(data))
        return path
    # Declared inputs too large to build one example of (the load check once tried: 112 GiB), or
    # of the wrong rank or batch, or plain.
    huge = st.sampled_from([["batch", 3, 100_000, 100_000], ["batch", 2**40, 4], ["batch", 9_223_372_036_854_775_807],
                            [1, 65_536, 65_536]])
    odd = st.sampled_from([["batch", 4], [1, 4], ["batch", 1, 48, 48], [2, 4], ["batch"], [4]])
    dims = draw(st.one_of(huge, odd))
    node = draw(st.sampled_from(["Identity", "Log", "Neg_Log", "Div_zero", "Sqrt_neg", "Reduce"]))
    labels = draw(st.sampled_from([["a", "b", "c", "d"], ["a"], [], ["a"] * 1000]))
    x_type = draw(st.sampled_from([TensorProto.FLOAT, TensorProto.INT64, TensorProto.DOUBLE]))
    inits, nodes = [], []
    if node == "Neg_Log":
        nodes += [helper.make_node("Neg", ["x"], ["n"]), helper.make_node("Log", ["n"], ["y"])]
    elif node == "Div_zero":
        inits.append(helper.make_tensor("z", x_type, [1], [0]))
        nodes.append(helper.make_node("Div", ["x", "z"], ["y"]))
    elif node == "Sqrt_neg":
        nodes += [helper.make_node("Neg", ["x"], ["n"]), helper.make_node("Sqrt", ["n"], ["y"])]
    elif node == "Reduce":
        nodes.append(helper.make_node("ReduceMean", ["x"], ["y"], keepdims=0))
    else:
        nodes.append(helper.make_node(node, ["x"], ["y"]))
    graph = helper.make_graph(nodes, "hostile", [helper.make_tensor_value_info("x", x_type, dims)],
                              [helper.make_tensor_value_info("y", x_type, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    helper.set_model_props(model, {"labels": json.dumps(labels)})
    onnx.save(model, path)
    return path


@fuzz(25)
@given(data=st.data())
def test_hostile_model_files_load_or_give_a_model_error_naming_the_file(scratch, data):
    from emodetect.errors import ModelError
    from emodetect.runtime import load_model

    path = data.draw(hostile_models(scratch))
    try:
        model = load_model(path)
    except ModelError as err:
        assert "hostile.onnx" in str(err)
        return
    # loaded: then one example answered finitely, one value per label
    spec = model.session.get_inputs()[0]
    from emodetect.runtime import _dummy_input

    answer = model.predict(_dummy_input(spec))
    assert np.isfinite(answer).all() and answer.shape[-1] == len(model.labels or answer[0])


@fuzz(6)
@given(data=st.data(), command=st.sampled_from(["detect", "predict"]))
def test_hostile_model_files_end_a_command_in_one_line(scratch, data, command):
    from typer.testing import CliRunner

    from emodetect.cli import app

    path = data.draw(hostile_models(scratch))
    face = scratch / "face.jpg"
    shutil.copy(SAMPLES / "astronaut.jpg", face)
    result = CliRunner().invoke(app, [command, str(face), "--model", str(path)])
    assert result.exit_code in (0, 2), (result.output[-500:], result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert isinstance(result.exception, SystemExit) and "hostile.onnx" in result.output


# ---- garbage on WS /v1/voice/stream ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def stream_client():
    app = create_app(ServeConfig(workers=1, words=False, max_stream_frame_bytes=64 * 1024),
                     route_modules=("emodetect.serve.routes_health", "emodetect.serve.routes_voice"))
    with TestClient(app) as c:
        yield c


frames = st.lists(st.one_of(
    st.binary(min_size=0, max_size=3000).map(lambda b: ("bytes", b)),
    st.integers(1, 9).map(lambda n: ("bytes", bytes(4 * 400 + n))),  # not whole samples
    st.just(("bytes", bytes(70 * 1024))),  # over the frame limit
    st.sampled_from(["hello", "{", '{"end": 1}', '{"end": "yes"}', "[]", "\0" * 5, "😀"]).map(lambda t: ("text", t)),
    st.just(("nan", np.full(400, np.nan, "<f4").tobytes())),
), min_size=1, max_size=8)


@fuzz(20)
@given(sent=frames, fmt=st.sampled_from(["f32", "s16"]))
def test_garbage_on_the_voice_stream_closes_it_with_a_reason_and_the_service_goes_on(stream_client, sent, fmt):
    from starlette.websockets import WebSocketDisconnect

    code, kinds = None, []
    with stream_client.websocket_connect(f"/v1/voice/stream?sample_rate=16000&format={fmt}") as ws:
        assert ws.receive_json()["kind"] == "ready"
        try:
            for kind, payload in sent:
                if kind == "text":
                    ws.send_text(payload)
                else:
                    ws.send_bytes(payload)
            ws.send_text("not json: every stream ends closed")
            for _ in range(1000):
                kinds.append(ws.receive_json()["kind"])
        except WebSocketDisconnect as closed:
            code = closed.code
    if code == 1000:  # a text frame the route read as the end ({"end": 1}): a normal end, said so
        assert kinds[-1:] == ["end"], (kinds, sent)
    else:
        assert code in (1003, 1007, 1008, 1009), (code, [(k, len(p)) for k, p in sent])
    assert stream_client.get("/healthz").status_code == 200
