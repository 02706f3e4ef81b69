"""POST /v1/video: the three streams over HTTP; limits checked before decoding; nothing kept."""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from emodetect.serve import ServeConfig, create_app  # noqa: E402
from test_multimodal import SECONDS, SRT, write_clip  # noqa: E402


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    return write_clip(tmp_path_factory.mktemp("video_serve") / "clip.mp4").read_bytes()


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(ServeConfig(workers=1, max_video_seconds=30, max_video_bytes=3_000_000))) as c:
        yield c


def _leftovers() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("emodetect-video-*")}


def test_video_with_subtitles_gives_three_streams_and_media_and_keeps_nothing(client, clip):
    before = _leftovers()
    answer = client.post("/v1/video?media=true", files={"file": ("talk.mp4", clip, "video/mp4"),
                                                         "subtitles": ("talk.srt", SRT.encode(), "text/plain")})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["source"] == "talk.mp4" and body["text"]["cues"] == 2 and body["voice"]["voiced_windows"] >= 1
    assert [(s["start_s"], s["end_s"]) for s in body["segments"]] == [(0.5, 2.0), (2.5, 4.5)]
    assert all(s["face"] and s["voice"] and s["text"] for s in body["segments"])
    assert base64.b64decode(body["timeline_png_base64"]).startswith(b"\x89PNG")
    mp4 = Path(tempfile.mkdtemp()) / "answer.mp4"
    mp4.write_bytes(base64.b64decode(body["video_mp4_base64"]))
    from emodetect.media import probe

    assert {s["codec"] for s in probe(mp4)["streams"]} == {"h264", "aac"}
    assert _leftovers() == before  # the temporary folder is gone


def test_raw_video_body_without_subtitles_uses_fixed_segments(client, clip):
    answer = client.post("/v1/video?segment=1", content=clip, headers={"content-type": "video/mp4"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["segments"]) == SECONDS and body["video_mp4_base64"] is None


def test_limits_and_bad_uploads_are_refused_with_a_reason(clip, tmp_path):
    with TestClient(create_app(ServeConfig(workers=1, max_video_seconds=2, max_video_bytes=len(clip) + 10))) as c:
        too_long = c.post("/v1/video", content=clip, headers={"content-type": "video/mp4"})
        assert too_long.status_code == 413 and "limit is 2 s" in too_long.json()["detail"]
        too_big = c.post("/v1/video", content=clip + bytes(100), headers={"content-type": "video/mp4"})
        assert too_big.status_code == 413
        not_video = c.post("/v1/video", content=b"hello " * 100, headers={"content-type": "video/mp4"})
        assert not_video.status_code == 415 and "not a video" in not_video.json()["detail"]
        wav = c.post("/v1/video", content=b"RIFF....WAVEfmt ", headers={"content-type": "text/plain"})
        assert wav.status_code == 415
    before = _leftovers()
    with TestClient(create_app(ServeConfig(workers=1))) as c:
        bad_subs = c.post("/v1/video", files={"file": ("a.mp4", clip, "video/mp4"),
                                              "subtitles": ("a.srt", b"1\nnot a time\nhi\n", "text/plain")})
        assert bad_subs.status_code == 422 and "malformed subtitles" in bad_subs.json()["detail"]
        assert "emodetect-video-" not in bad_subs.json()["detail"]  # no temporary path leaks out
    assert _leftovers() == before


def _secret_video(path: Path) -> Path:
    """A server-side MPEG-TS file that no client sent: what a hostile playlist would name."""
    import numpy as np

    from conftest import write_clip

    return write_clip(path, [np.full((64, 64, 3), 20 * i, np.uint8) for i in range(10)], 10, container="mpegts")


def test_uploaded_playlists_and_lists_never_open_server_files(client, tmp_path):
    secret = _secret_video(tmp_path / "private_video.ts")
    hostile = {
        "x.m3u8": f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n{secret}\n#EXT-X-ENDLIST\n",
        "y.m3u8": f"#EXTM3U\n#EXTINF:1.0,\nfile:{secret}\n#EXT-X-ENDLIST\n",
        "list.ffconcat": f"ffconcat version 1.0\nfile '{secret}'\n",
        "frames%03d.png": "\x89PNG\r\n\x1a\n",
    }
    for name, text in hostile.items():
        for how in ("multipart", "raw"):
            if how == "multipart":
                answer = client.post("/v1/video", files={"file": (name, text.encode(), "video/mp4")})
            else:
                answer = client.post("/v1/video", content=text.encode(), headers={"content-type": "video/mp4"})
            assert answer.status_code == 415, (name, how, answer.text)
            assert "playlists" in answer.json()["detail"]


def test_allowed_containers_are_read_by_their_own_demuxer_only(clip, tmp_path):
    from emodetect.media import AVCapture, MediaError, UPLOAD_FORMATS, sniff_container

    secret = _secret_video(tmp_path / "private_video.ts")
    playlist = tmp_path / "x.m3u8"
    playlist.write_text(f"#EXTM3U\n#EXTINF:1.0,\n{secret}\n#EXT-X-ENDLIST\n")
    assert sniff_container(clip[:16]) == "mp4"
    assert sniff_container(b"\x1a\x45\xdf\xa3\x01\x00") == "mkv" and sniff_container(b"RIFF\0\0\0\0AVI LIST") == "avi"
    assert sniff_container(playlist.read_bytes()[:16]) is None
    for container_format in UPLOAD_FORMATS.values():  # even told the name, no demuxer follows the playlist
        with pytest.raises(MediaError):
            AVCapture(playlist, container_format)
    mp4 = tmp_path / "clip"
    mp4.write_bytes(clip)
    capture = AVCapture(mp4, "mov")
    ok, frame = capture.read()
    assert ok and frame.shape == (360, 480, 3) and capture.get(__import__("cv2").CAP_PROP_FPS) == 10.0
    capture.release()


def test_matroska_upload_is_analysed_and_a_bad_header_hides_the_temp_path(client, tmp_path):
    from test_multimodal import write_clip

    mkv = write_clip(tmp_path / "talk.mkv", audio="none").read_bytes()
    answer = client.post("/v1/video?segment=2", files={"file": ("talk.mkv", mkv, "video/x-matroska")})
    assert answer.status_code == 200, answer.text
    assert answer.json()["source"] == "talk.mkv" and answer.json()["faces"]["frames_analysed"] > 0
    broken = client.post("/v1/video", content=b"\0\0\0\x18ftypmp42" + bytes(200), headers={"content-type": "video/mp4"})
    assert broken.status_code == 415, broken.text
    assert "emodetect-video-" not in broken.json()["detail"] and "/" not in broken.json()["detail"]


def _fast_video(path: Path, frames: int, rate: int, size: int = 64) -> bytes:
    """`frames` small grey frames at `rate` frames/s (a Matroska file says no frame count in its header)."""
    import numpy as np

    from conftest import write_clip

    return write_clip(path, [np.full((size, size, 3), i % 250, np.uint8) for i in range(frames)], rate).read_bytes()


def test_frames_are_counted_while_decoding_not_taken_from_the_header(tmp_path):
    mp4 = _fast_video(tmp_path / "fast.mp4", 300, 1000)  # 0.3 s at 1000 frames/s: short, yet 300 frames
    mkv = _fast_video(tmp_path / "fast.mkv", 300, 1000)  # Matroska: no frame count in the header
    small = _fast_video(tmp_path / "small.mkv", 40, 1000)
    with TestClient(create_app(ServeConfig(workers=1, max_video_frames=100))) as c:
        for name, data in (("fast.mp4", mp4), ("fast.mkv", mkv)):
            answer = c.post("/v1/video", files={"file": (name, data, "video/mp4")})
            assert answer.status_code == 413, (name, answer.text)
            assert "frames" in answer.json()["detail"] and "limit is 100" in answer.json()["detail"], name
        ok = c.post("/v1/video", files={"file": ("small.mkv", small, "video/x-matroska")})
        assert ok.status_code == 200, ok.text
        assert ok.json()["faces"]["frames_read"] == 40


def test_frames_over_the_pixel_limit_are_refused_before_decoding(tmp_path):
    from emodetect.media import AVCapture, MediaError

    big = _fast_video(tmp_path / "big.mkv", 3, 10, size=128)  # 16,384 pixels a frame
    with TestClient(create_app(ServeConfig(workers=1, max_pixels=10_000))) as c:
        answer = c.post("/v1/video", files={"file": ("big.mkv", big, "video/x-matroska")})
        assert answer.status_code == 413, answer.text
        assert "128x128" in answer.json()["detail"] and "limit is 10,000" in answer.json()["detail"]
    with pytest.raises(MediaError, match="limit is 10,000") as err:  # the reader itself, header or not
        AVCapture(tmp_path / "big.mkv", "matroska", max_pixels=10_000)
    assert err.value.reason == "too_large"
    capture = AVCapture(tmp_path / "big.mkv", "matroska", max_pixels=20_000)
    assert capture.read()[1].shape == (128, 128, 3)
    capture.release()


def test_subtitles_over_the_cue_limit_are_refused_naming_it(client, clip):
    from emodetect.multimodal import MAX_CUES

    many = "".join(f"{i + 1}\n00:00:00,{i % 1000:03d} --> 00:00:01,000\nhi\n\n" for i in range(MAX_CUES + 1))
    answer = client.post("/v1/video", files={"file": ("a.mp4", clip, "video/mp4"),
                                             "subtitles": ("a.srt", many.encode(), "text/plain")})
    assert answer.status_code == 413, answer.text
    assert f"limit is {MAX_CUES:,}" in answer.json()["detail"] and "cues" in answer.json()["detail"]
