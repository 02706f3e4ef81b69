"""Requests that would hold a worker for long: every request has a deadline, its work stops between
frames and batches past it or when its client goes, SIGTERM does not wait for it, and a video answer
and the video uploads in flight are bounded (issue 34, points 4 and 7). On a real uvicorn server
(`emodetect.serve.server.make_server`), since a disconnect and a shutdown only happen there."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("av")

from conftest import write_clip  # noqa: E402
from emodetect.serve import ServeConfig, create_app  # noqa: E402
from emodetect.serve.security import LOOPBACK_HOSTS  # noqa: E402

FRAMES = 200  # at SLOW_FRAME_S a frame, the whole clip takes 10 s to analyse
SLOW_FRAME_S = 0.05
VIDEO_ROUTES = ("emodetect.serve.routes_health", "emodetect.serve.routes_vision", "emodetect.serve.routes_video")
TEXT_ROUTES = ("emodetect.serve.routes_health", "emodetect.serve.routes_text")


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> bytes:
    frames = [np.full((64, 64, 3), 40 + i % 100, np.uint8) for i in range(FRAMES)]
    return write_clip(tmp_path_factory.mktemp("deadlines") / "long.mp4", frames, fps=25).read_bytes()


class Server:
    """An app on the server `emodetect serve` runs, in a thread, on a free loopback port."""

    def __init__(self, routes: tuple[str, ...], **settings):
        from emodetect.serve.server import make_server

        self.app = create_app(ServeConfig(workers=1, allowed_hosts=LOOPBACK_HOSTS, **settings), route_modules=routes)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.server = make_server(self.app, "127.0.0.1", self.port)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        for _ in range(600):
            if self.server.started:
                break
            time.sleep(0.05)
        assert self.server.started

    @property
    def state(self):
        return self.app.state.emodetect

    def slow_frames(self) -> list[int]:
        """Make the face pipeline take SLOW_FRAME_S a frame; the list counts the frames analysed."""
        analysed = [0]
        for detector in self.state.services["vision"].pool.items:
            classify_with = detector.classify_with

            def slow(*args, _inner=classify_with, **kwargs):
                time.sleep(SLOW_FRAME_S)
                analysed[0] += 1
                return _inner(*args, **kwargs)

            detector.classify_with = slow
        return analysed

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture
def servers():
    started: list[Server] = []

    def start(routes=VIDEO_ROUTES, **settings) -> Server:
        started.append(Server(routes, **settings))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def _send(port: int, path: str, body: bytes, content_type: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Type: {content_type}\r\n"
              f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    return s


def _answer(s: socket.socket) -> tuple[int, dict]:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body or b"{}")


def _post(port: int, path: str, body: bytes, content_type: str) -> tuple[int, dict]:
    return _answer(_send(port, path, body, content_type))


def _wait_for(condition, seconds: float = 60) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("the condition never held")


def _png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 64), (90, 90, 90)).save(out, format="PNG")
    return out.getvalue()


def test_a_video_past_its_deadline_answers_504_naming_it_and_its_frame_loop_stops(servers, long_clip):
    """A video's work held a worker for as long as it took (issue 34, point 4): the request's
    deadline now stops it between frames."""
    server = servers(request_timeout_s=3.0)
    analysed = server.slow_frames()
    status, body = _post(server.port, "/v1/video", long_clip, "video/mp4")
    assert status == 504, body
    assert "deadline of 3 s" in body["detail"] and "request_timeout_s" in body["detail"]
    stopped_at = analysed[0]
    assert stopped_at < FRAMES  # stopped long before the clip's end
    time.sleep(5 * SLOW_FRAME_S)
    assert analysed[0] == stopped_at  # and nothing goes on in the background


def test_a_client_that_disconnects_stops_its_video_and_frees_the_worker(servers, long_clip):
    """Work went on after its client had left, holding the only worker: now the next request gets
    it as soon as the loop reaches its next frame."""
    server = servers()
    analysed = server.slow_frames()
    gone = _send(server.port, "/v1/video", long_clip, "video/mp4")
    _wait_for(lambda: analysed[0] > 0)
    gone.close()
    status, body = _post(server.port, "/v1/detect", _png(), "image/png")  # needs the one face pipeline
    assert status == 200, body
    assert analysed[0] < FRAMES  # the video's loop stopped when its client went, not at its end


def test_sigterm_stops_long_work_after_the_grace_and_the_server_exits(servers, long_clip):
    """SIGTERM waited for a video analysis (issue 34, point 4): the work now gets shutdown_grace_s,
    then stops at its next frame with a 503 saying so, and the server ends."""
    server = servers(shutdown_grace_s=0.5)
    analysed = server.slow_frames()
    client = _send(server.port, "/v1/video", long_clip, "video/mp4")
    _wait_for(lambda: analysed[0] > 0)
    server.server.handle_exit(signal.SIGTERM, None)  # what uvicorn's signal handler calls
    status, body = _answer(client)
    assert status == 503 and "shutting down" in body["detail"], body
    server.thread.join(30)
    assert not server.thread.is_alive()
    assert analysed[0] < FRAMES


def test_text_explanations_past_the_deadline_stop_between_texts(servers):
    """/v1/text?explain=true explains one text after another: the deadline stops it between two."""
    server = servers(TEXT_ROUTES, request_timeout_s=3.0)
    model = server.state.services["text"]
    explained = [0]
    explain = model.explain

    def slow(*args, **kwargs):
        time.sleep(0.1)
        explained[0] += 1
        return explain(*args, **kwargs)

    model.explain = slow
    try:
        texts = [f"a good day number {i}" for i in range(300)]  # 30 s of explaining
        status, body = _post(server.port, "/v1/text?explain=true", json.dumps({"texts": texts}).encode(),
                             "application/json")
    finally:
        del model.explain
    assert status == 504 and "request_timeout_s" in body["detail"], body
    assert 0 < explained[0] < len(texts)


def test_a_video_answer_has_at_most_max_video_segments(servers, long_clip):
    """100,000 cues made a 75 MB answer (issue 34, point 7): segments (subtitle cues, or the
    duration over ?segment=) are capped, refused with 413 naming the limit before any frame."""
    server = servers(max_video_segments=3)
    status, body = _post(server.port, "/v1/video?segment=1", long_clip, "video/mp4")  # 8 s: 8 segments
    assert status == 413 and "max_video_segments" in body["detail"] and "8 segments" in body["detail"], body
    cues = "".join(f"{i + 1}\n00:00:0{i},000 --> 00:00:0{i},500\nline {i}\n\n" for i in range(4))
    boundary = "xyz"
    multipart = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n"
                 f"Content-Type: video/mp4\r\n\r\n").encode() + long_clip + (
        f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"subtitles\"; filename=\"a.srt\"\r\n\r\n"
        f"{cues}\r\n--{boundary}--\r\n").encode()
    status, body = _post(server.port, "/v1/video", multipart, f"multipart/form-data; boundary={boundary}")
    assert status == 413 and "4 subtitle cues" not in body["detail"], body
    assert "too many subtitle cues: 4" in body["detail"] and "max_video_segments" in body["detail"]
    status, body = _post(server.port, "/v1/video?segment=3", long_clip, "video/mp4")  # 3 segments: within
    assert status == 200 and len(body["segments"]) == 3, body


def test_video_uploads_in_flight_share_a_byte_budget(servers):
    """40 held video uploads of 50 MB cost +1.9 GB before their 408 (issue 34, point 7): uploads in
    flight together hold at most max_video_bytes_in_flight; past it 503 naming it, at once."""
    server = servers(max_video_bytes=1000, max_video_bytes_in_flight=1500, body_timeout_s=20)
    held = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    held.sendall(f"POST /v1/video HTTP/1.1\r\nHost: localhost:{server.port}\r\nContent-Type: video/mp4\r\n"
                 f"Content-Length: 1000\r\n\r\n".encode() + b"\0" * 900)  # 100 bytes never sent
    _wait_for(lambda: server.state.video_bytes.held == 900)
    status, body = _post(server.port, "/v1/video", b"\0" * 1000, "video/mp4")
    assert status == 503, body
    assert "max_video_bytes_in_flight" in body["detail"] and "900 bytes" in body["detail"]
    held.close()  # its bytes go back to the budget
    _wait_for(lambda: server.state.video_bytes.held == 0)
    status, body = _post(server.port, "/v1/video", b"\0" * 1000, "video/mp4")
    assert status == 415, body  # read whole, then refused as what it is: not a video


def test_the_new_limits_are_checked_at_start():
    with pytest.raises(ValueError, match="max_video_bytes_in_flight"):
        ServeConfig(max_video_bytes=100, max_video_bytes_in_flight=50)
    with pytest.raises(ValueError, match="request_timeout_s"):
        ServeConfig(request_timeout_s=0)
