"""The service against hostile clients: foreign Host and Origin headers, missing security headers,
many-part multipart bodies, slow uploads and connection floods, on a real uvicorn server."""

from __future__ import annotations

import socket
import threading
import time
import warnings

import pytest

pytest.importorskip("fastapi")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from emodetect.serve import ServeConfig, create_app
from emodetect.serve.security import LOOPBACK_HOSTS

ROUTES = ("emodetect.serve.routes_health", "emodetect.serve.routes_text")


@pytest.fixture(scope="module")
def client():
    app = create_app(ServeConfig(workers=1, allowed_hosts=("testserver",)), route_modules=ROUTES)
    with TestClient(app) as c:
        yield c


def test_a_foreign_host_header_is_refused(client):
    assert client.get("/healthz").status_code == 200
    answer = client.get("/healthz", headers={"Host": "attacker.example:8000"})
    assert answer.status_code == 400 and "attacker.example" in answer.json()["detail"]


def test_a_host_with_anything_after_the_name_and_port_is_refused():
    app = create_app(ServeConfig(workers=1, allowed_hosts=LOOPBACK_HOSTS), route_modules=ROUTES)
    with TestClient(app) as c:
        for good in ("127.0.0.1:8000", "localhost", "[::1]:8000", "[::1]"):
            assert c.get("/healthz", headers={"Host": good}).status_code == 200, good
        for bad in ("[::1]evil.example", "127.0.0.1:1@evil.example", "[::1]:80.evil.example", "localhost:80:80",
                    "localhost/evil", "[::1", ""):
            assert c.get("/healthz", headers={"Host": bad}).status_code == 400, bad


def test_a_missing_card_answer_does_not_echo_a_huge_name(client):
    answer = client.get("/v1/models/vision/" + "x" * 20_000 + "/card")
    assert answer.status_code == 404
    detail = answer.json()["detail"]
    assert len(detail) < 200 and "20,000 characters" in detail


def test_cross_origin_posts_are_refused_and_same_origin_ones_pass(client):
    body = {"texts": ["great news"]}
    assert client.post("/v1/text", json=body, headers={"Origin": "http://testserver"}).status_code == 200
    for origin in ("https://evil.example", "null", "http://testserver.evil.example"):
        answer = client.post("/v1/text", json=body, headers={"Origin": origin})
        assert answer.status_code == 403 and "cross-origin" in answer.json()["detail"]
    assert client.post("/v1/text", json=body).status_code == 200  # curl and scripts send no Origin


def test_the_page_and_the_api_carry_security_headers(client):
    page = client.get("/")
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["x-frame-options"] == "DENY"
    assert client.get("/healthz").headers["x-content-type-options"] == "nosniff"
    assert client.get("/docs").status_code == 200


def test_a_multipart_body_with_thousands_of_parts_is_refused():
    app = create_app(ServeConfig(workers=1), route_modules=("emodetect.serve.routes_health",
                                                            "emodetect.serve.routes_vision"))
    boundary = "b0undary"
    parts = "".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nx\r\n" for i in range(5000))
    body = (parts + f"--{boundary}--\r\n").encode()
    with TestClient(app) as c:
        started = time.perf_counter()
        answer = c.post("/v1/detect", content=body,
                        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert answer.status_code == 400 and "more than 16 parts" in answer.json()["detail"]
        assert time.perf_counter() - started < 2


def _run_in_thread(config) -> tuple[object, threading.Thread, int]:
    """A uvicorn server for `config` on a free loopback port, in a daemon thread, once it has started."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    return server, thread, sock.getsockname()[1]


@pytest.fixture
def live_server():
    import uvicorn

    app = create_app(ServeConfig(workers=1, body_timeout_s=1.0, allowed_hosts=LOOPBACK_HOSTS), route_modules=ROUTES)
    server, thread, port = _run_in_thread(uvicorn.Config(app, log_level="warning", limit_concurrency=20))
    yield port
    server.should_exit = True
    thread.join(10)


def _get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n".encode())
        return s.recv(65536)


def test_a_slow_upload_gets_408_and_health_checks_still_answer(live_server):
    port = live_server
    slow = []
    for _ in range(5):  # half-sent uploads: headers, then a trickle, then silence
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(f"POST /v1/text HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: 100000\r\n\r\n{{\"texts\": [".encode())
        slow.append(s)
    assert _get(port, "/healthz").split(b"\r\n")[0].endswith(b"200 OK")
    time.sleep(1.5)
    for s in slow:
        answer = s.recv(65536)
        assert answer.split(b"\r\n")[0].endswith(b"408 Request Timeout"), answer[:200]
        assert b"did not arrive within 1 s" in answer
        s.close()
    assert _get(port, "/healthz").split(b"\r\n")[0].endswith(b"200 OK")


def _start(app) -> tuple[object, threading.Thread, int]:
    """`app` on a real uvicorn server with the settings `emodetect serve` uses (serve.server)."""
    from emodetect.serve.server import server_config

    return _run_in_thread(server_config(app, "127.0.0.1", 0))


@pytest.fixture
def serve_like_the_cli():
    servers = []

    def start(**settings):
        app = create_app(ServeConfig(workers=1, allowed_hosts=LOOPBACK_HOSTS, **settings), route_modules=ROUTES)
        server, thread, port = _start(app)
        servers.append((server, thread))
        return port

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


def _status(answer: bytes) -> bytes:
    return answer.split(b"\r\n")[0]


def _post_text(port: int) -> bytes:
    body = b'{"texts": ["great news"]}'
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"POST /v1/text HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        answer = b""
        for _ in range(100):  # the head and the body may come in separate reads
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def _closed_by_server(s: socket.socket) -> bool:
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, socket.timeout):
        return False


def test_idle_sockets_do_not_lock_anyone_out_and_are_closed_after_the_head_timeout(serve_like_the_cli):
    port = serve_like_the_cli(max_in_flight=5, head_timeout_s=1.0)
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(30)]
    idle[0].sendall(b"GET /healthz HTTP/1.1\r\n")  # half a head counts as idle too
    try:
        assert _status(_get(port, "/healthz")).endswith(b"200 OK")
        assert _status(_post_text(port)).endswith(b"200 OK")
        started = time.monotonic()
        assert all(_closed_by_server(s) for s in idle)
        assert time.monotonic() - started < 4
    finally:
        for s in idle:
            s.close()


def test_past_the_socket_cap_the_longest_idle_socket_makes_room(serve_like_the_cli):
    port = serve_like_the_cli(max_sockets=5, head_timeout_s=30.0)
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(5)]
    try:
        time.sleep(0.2)
        assert _status(_get(port, "/healthz")).endswith(b"200 OK")
        assert _closed_by_server(idle[0])
    finally:
        for s in idle:
            s.close()


def test_the_503_cap_counts_requests_in_flight_spares_health_and_logs_once(serve_like_the_cli, caplog):
    port = serve_like_the_cli(max_in_flight=2, body_timeout_s=1.5)
    slow = []
    for _ in range(2):  # two requests in flight: heads sent, bodies never finished
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(f"POST /v1/text HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: 1000\r\n\r\n{{".encode())
        slow.append(s)
    time.sleep(0.3)
    with caplog.at_level("WARNING", logger="emodetect.serve"):
        for _ in range(3):
            answer = _post_text(port)
            assert _status(answer).endswith(b"503 Service Unavailable") and b"2 requests in flight" in answer
        assert _status(_get(port, "/healthz")).endswith(b"200 OK")
    assert len([r for r in caplog.records if "503" in r.getMessage()]) == 1
    for s in slow:
        assert _status(s.recv(65536)).endswith(b"408 Request Timeout")
        s.close()
    assert _status(_post_text(port)).endswith(b"200 OK")


def test_refusals_are_logged_at_most_once_a_minute(caplog):
    from emodetect.serve.inflight import RefusalLog

    now = [0.0]
    refusals = RefusalLog(clock=lambda: now[0])
    with caplog.at_level("WARNING", logger="emodetect.serve"):
        for t in (0.0, 1.0, 30.0, 59.0, 61.0):
            now[0] = t
            refusals.refused(100, 100)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and lines[1].startswith("503: 4 request(s) refused")


def test_the_cli_server_answers_health_and_requests_with_20_idle_sockets_open():
    """`emodetect serve --max-connections 5` as a user starts it: the cap counts requests in flight,
    so 20 sockets that never send a byte lock nobody out (uvicorn's limit_concurrency did)."""
    from conftest import live_server as cli_server

    with cli_server("--max-connections", "5") as url:
        port = int(url.rsplit(":", 1)[1])
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(20)]
        try:
            time.sleep(0.2)  # the server has accepted them all
            assert _status(_get(port, "/healthz")).endswith(b"200 OK")
            assert _status(_post_text(port)).endswith(b"200 OK")
        finally:
            for s in idle:
                s.close()
