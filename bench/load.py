"""Load and soak test for `emodetect serve`: N concurrent clients posting a photo for T seconds,
beside hostile ones.

Starts `emodetect serve` as a subprocess on a free localhost port (or uses --url), then N asyncio
clients each post the image to /v1/detect back to back. With --slow-clients, that many more open
an upload, send a trickle and stall (the server must answer 408 after its body timeout and free
the memory); with --oversize-clients, that many post a body over the upload limit again and again
(the server must answer 413 without reading it). With --idle-sockets, that many raw sockets connect
and send nothing (reconnecting when the server closes them after its head timeout); with
--video-clients and --explain-clients, that many post a long video to /v1/video or a photo tiled
with many faces to /v1/explain back to back, the requests that once held every worker for minutes
(worker starvation). A prober asks /healthz every --health-every seconds throughout. Reports
requests/s, latency percentiles and the longest gap between answers of /v1/detect and of /healthz,
errors (any answer a client did not expect), the hostile clients' answers, and the server's
resident memory over time (RSS, read from /proc) against --rss-bound-mb. Writes
bench/results/load.json.

    nice -n 15 python bench/load.py --clients 50 --duration 60
    python bench/load.py --clients 20 --slow-clients 20 --oversize-clients 5 --duration 180 --body-timeout 5 \
        --out bench/results/soak.json
    nice -n 10 python bench/load.py --clients 4 --idle-sockets 50 --video-clients 1 --explain-clients 1 \
        --duration 60 --out bench/results/soak_starvation.json

Client and server share the machine, so requests/s is a floor for a dedicated server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "emodetect" / "assets" / "samples" / "astronaut.jpg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def start_server(port: int, workers: int, threads: int, extra: list[str] = ()) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("emodetect")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "emodetect"]
    proc = subprocess.Popen([*command, "serve", "--port", str(port), "--workers", str(workers),
                             "--threads", str(threads), *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode(errors='replace')}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server not ready after 120 s")


class MemoryWatch:
    """Samples the server's RSS every 100 ms in a thread; keeps the peak."""

    def __init__(self, pid: int | None, every_s: float = 5.0):
        self.pid, self.peak_kb, self._stop = pid, 0, threading.Event()
        self.timeline_kb: list[int] = []  # one sample every `every_s`: a plateau means bounded memory
        self.every_s = every_s
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        next_mark = time.monotonic()
        while not self._stop.is_set():
            now_kb = rss_kb(self.pid)
            self.peak_kb = max(self.peak_kb, now_kb)
            if time.monotonic() >= next_mark:
                self.timeline_kb.append(now_kb)
                next_mark += self.every_s
            self._stop.wait(0.1)

    def __enter__(self) -> "MemoryWatch":
        if self.pid:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self.pid:
            self._thread.join()


async def slow_client(url: str, deadline: float, answers: dict[str, int]) -> None:
    """Open an upload, send its first bytes, stall; count what the server answers; repeat."""
    from urllib.parse import urlsplit

    where = urlsplit(url)
    while time.perf_counter() < deadline:
        reader, writer = await asyncio.open_connection(where.hostname, where.port)
        writer.write(f"POST /v1/detect HTTP/1.1\r\nHost: {where.netloc}\r\nContent-Type: image/jpeg\r\n"
                     "Content-Length: 1000000\r\n\r\n".encode() + b"\xff\xd8\xff")
        await writer.drain()
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=max(1.0, deadline - time.perf_counter()) + 60)
            key = f"HTTP {line.split()[1].decode()}" if len(line.split()) > 1 else "closed without an answer"
        except asyncio.TimeoutError:
            key = "no answer"
        answers[key] = answers.get(key, 0) + 1
        writer.close()


def tally(answers: dict[str, int], key: str) -> None:
    answers[key] = answers.get(key, 0) + 1


def percentiles(seconds: list[float]) -> dict[str, float | None]:
    ms = np.array(seconds) * 1000
    pct = (lambda q: round(float(np.percentile(ms, q)), 1)) if len(ms) else (lambda q: None)
    return {"p50": pct(50), "p90": pct(90), "p99": pct(99), "max": pct(100)}


def longest_gap(times: list[float], began: float, ended: float) -> float:
    """The longest stretch of the run without an answer (from the start, between answers, to the end)."""
    edges = [began, *sorted(times), ended]
    return round(max(b - a for a, b in zip(edges, edges[1:])), 2)


async def idle_socket(url: str, deadline: float, counts: dict[str, int]) -> None:
    """Connect and send nothing; when the server closes the socket (its head timeout), connect again."""
    from urllib.parse import urlsplit

    where = urlsplit(url)
    while time.perf_counter() < deadline:
        opened = time.perf_counter()
        try:
            reader, writer = await asyncio.open_connection(where.hostname, where.port)
        except OSError as err:
            tally(counts, f"connect failed ({type(err).__name__})")
            await asyncio.sleep(0.5)
            continue
        try:
            got = await asyncio.wait_for(reader.read(1), timeout=max(0.1, deadline - time.perf_counter()))
            tally(counts, "closed by the server" if not got else "answered")
            held = round(time.perf_counter() - opened, 1)  # the server's head timeout, if it holds
            counts["longest_held_s"] = max(counts.get("longest_held_s", 0), held)
        except asyncio.TimeoutError:
            tally(counts, "still open at the end")
        except OSError:
            tally(counts, "reset by the server")
        writer.close()


def video_clip(seconds: float, fps: int = 10, size: int = 320) -> bytes:
    """An H.264 mp4 of the sample photo drifting across the frame (a face in every frame), made here
    with PyAV: `seconds` long, small in bytes, slow to analyse."""
    import av
    from PIL import Image

    face = np.asarray(Image.open(SAMPLE).convert("RGB").resize((size, size)))
    path = Path(__import__("tempfile").mkdtemp()) / "soak.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.roll(face, 2 * i, axis=1)), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    data = path.read_bytes()
    path.unlink()
    path.parent.rmdir()
    return data


def face_sheet(faces: int, tile: int = 96) -> bytes:
    """The sample photo tiled into a square-ish sheet of `faces` small faces, as JPEG."""
    import io

    from PIL import Image

    cols = int(np.ceil(np.sqrt(faces)))
    rows = int(np.ceil(faces / cols))
    face = Image.open(SAMPLE).convert("RGB").resize((tile, tile))
    sheet = Image.new("RGB", (cols * tile, rows * tile), "white")
    for k in range(faces):
        sheet.paste(face, ((k % cols) * tile, (k // cols) * tile))
    buffer = io.BytesIO()
    sheet.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


async def heavy_client(http, path: str, body: bytes, content_type: str, deadline: float,
                       answers: dict[str, int], latencies: list[float]) -> None:
    """Post a long request (a video, a many-face explain) back to back; count the answers."""
    import httpx

    while time.perf_counter() < deadline:
        start = time.perf_counter()
        try:
            r = await http.post(path, content=body, headers={"content-type": content_type})
            tally(answers, f"HTTP {r.status_code}")
            if r.status_code == 200:
                latencies.append(time.perf_counter() - start)
        except httpx.HTTPError as err:
            tally(answers, type(err).__name__)


async def health_prober(http, every: float, deadline: float, times: list[float], latencies: list[float],
                        errors: dict[str, int]) -> None:
    """GET /healthz every `every` seconds; anything but a 200 within the client timeout is an error."""
    import httpx

    while time.perf_counter() < deadline:
        start = time.perf_counter()
        try:
            r = await http.get("/healthz", timeout=10.0)
            if r.status_code == 200:
                latencies.append(time.perf_counter() - start)
                times.append(time.perf_counter())
            else:
                tally(errors, f"HTTP {r.status_code}")
        except httpx.HTTPError as err:
            tally(errors, type(err).__name__)
        await asyncio.sleep(max(0.0, every - (time.perf_counter() - start)))


async def oversize_client(http, limit: int, deadline: float, answers: dict[str, int]) -> None:
    """Post a body one byte over the upload limit again and again; count the answers."""
    import httpx

    body = b"\xff" * (limit + 1)
    while time.perf_counter() < deadline:
        try:
            r = await http.post("/v1/detect", content=body, headers={"content-type": "image/jpeg"})
            key = f"HTTP {r.status_code}"
        except httpx.HTTPError as err:  # the server may close before the body is all sent
            key = f"refused mid-send ({type(err).__name__})"
        answers[key] = answers.get(key, 0) + 1
        await asyncio.sleep(0.2)


async def run_clients(url: str, image: bytes, clients: int, duration: float, timeout: float,
                      slow: int = 0, oversize: int = 0, upload_limit: int = 10 * 2**20, idle: int = 0,
                      video: bytes | None = None, video_clients: int = 0, sheet: bytes | None = None,
                      explain_clients: int = 0, health_every: float = 0.0) -> dict:
    import httpx

    latencies: list[float] = []
    answered_at: list[float] = []
    errors: dict[str, int] = {}
    faces: list[int] = []
    extra = video_clients + explain_clients + (1 if health_every else 0)
    limits = httpx.Limits(max_connections=clients + extra, max_keepalive_connections=clients + extra)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as http:
        for _ in range(3):  # warm-up, not counted
            await http.post("/v1/detect", content=image, headers={"content-type": "image/jpeg"})
        deadline = time.perf_counter() + duration

        async def client() -> None:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    r = await http.post("/v1/detect", content=image, headers={"content-type": "image/jpeg"})
                except httpx.HTTPError as err:
                    errors[type(err).__name__] = errors.get(type(err).__name__, 0) + 1
                    continue
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - start)
                    answered_at.append(time.perf_counter())
                    faces.append(len(r.json()["faces"]))
                else:
                    key = f"HTTP {r.status_code}"
                    errors[key] = errors.get(key, 0) + 1

        slow_answers: dict[str, int] = {}
        oversize_answers: dict[str, int] = {}
        idle_counts: dict[str, int] = {}
        video_answers: dict[str, int] = {}
        explain_answers: dict[str, int] = {}
        video_latencies: list[float] = []
        explain_latencies: list[float] = []
        health_at: list[float] = []
        health_latencies: list[float] = []
        health_errors: dict[str, int] = {}
        began = time.perf_counter()
        await asyncio.gather(
            *(client() for _ in range(clients)),
            *(slow_client(url, deadline, slow_answers) for _ in range(slow)),
            *(oversize_client(http, upload_limit, deadline, oversize_answers) for _ in range(oversize)),
            *(idle_socket(url, deadline, idle_counts) for _ in range(idle)),
            *(heavy_client(http, "/v1/video", video, "video/mp4", deadline, video_answers, video_latencies)
              for _ in range(video_clients)),
            *(heavy_client(http, "/v1/explain?method=occlusion", sheet, "image/jpeg", deadline, explain_answers,
                           explain_latencies) for _ in range(explain_clients)),
            *([health_prober(http, health_every, deadline, health_at, health_latencies, health_errors)]
              if health_every else []))
        elapsed = time.perf_counter() - began
    # Gaps are measured up to the deadline: probes stop there, while the last long request may
    # still be finishing (elapsed_s includes it).
    ended = min(began + elapsed, deadline)
    report = {
        "requests_ok": len(latencies), "errors": sum(errors.values()), "errors_by_kind": errors,
        "elapsed_s": round(elapsed, 2), "requests_per_s": round(len(latencies) / elapsed, 2),
        "latency_ms": percentiles(latencies),
        "detect_longest_gap_s": longest_gap(answered_at, began, ended),
        "faces_per_response": sorted(set(faces)),
        "slow_clients": slow, "slow_client_answers": slow_answers,
        "oversize_clients": oversize, "oversize_client_answers": oversize_answers,
    }
    if idle:
        report.update(idle_sockets=idle, idle_socket_outcomes=idle_counts)
    if video_clients:
        report.update(video_clients=video_clients, video_answers=video_answers,
                      video_latency_ms=percentiles(video_latencies))
    if explain_clients:
        report.update(explain_clients=explain_clients, explain_answers=explain_answers,
                      explain_latency_ms=percentiles(explain_latencies))
    if health_every:
        report.update(health_every_s=health_every, health_ok=len(health_latencies),
                      health_errors=sum(health_errors.values()), health_errors_by_kind=health_errors,
                      health_latency_ms=percentiles(health_latencies),
                      health_longest_gap_s=longest_gap(health_at, began, ended))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--image", type=Path, default=SAMPLE)
    parser.add_argument("--url", default=None, help="an already running server (memory is then not measured)")
    parser.add_argument("--workers", type=int, default=0, help="server workers (0 = its default)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads per server worker")
    parser.add_argument("--timeout", type=float, default=120.0, help="per-request timeout, seconds")
    parser.add_argument("--slow-clients", type=int, default=0, help="clients that start an upload and stall")
    parser.add_argument("--oversize-clients", type=int, default=0, help="clients posting over the upload limit")
    parser.add_argument("--body-timeout", type=float, default=None, help="the server's --body-timeout")
    parser.add_argument("--max-upload-mb", type=float, default=10.0, help="the server's --max-upload-mb")
    parser.add_argument("--idle-sockets", type=int, default=0, help="raw sockets that connect and send nothing")
    parser.add_argument("--video-clients", type=int, default=0, help="clients posting a long video to /v1/video")
    parser.add_argument("--video-seconds", type=float, default=30.0, help="length of their video (10 frames/s)")
    parser.add_argument("--explain-clients", type=int, default=0, help="clients posting a many-face /v1/explain")
    parser.add_argument("--explain-faces", type=int, default=36, help="faces tiled into their photo")
    parser.add_argument("--health-every", type=float, default=0.5, help="seconds between /healthz probes (0: none)")
    parser.add_argument("--request-timeout", type=float, default=None, help="the server's --request-timeout")
    parser.add_argument("--rss-bound-mb", type=float, default=1024.0,
                        help="the server's resident memory must stay under this (reported, not enforced)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "load.json")
    args = parser.parse_args()
    extra = ["--max-upload-mb", str(args.max_upload_mb)]
    if args.body_timeout is not None:
        extra += ["--body-timeout", str(args.body_timeout)]
    if args.request_timeout is not None:
        extra += ["--request-timeout", str(args.request_timeout)]
    if args.slow_clients:  # each stalled upload holds a connection: leave room for them all
        extra += ["--max-connections", str(100 + args.clients + args.slow_clients + args.oversize_clients)]

    image = args.image.read_bytes()
    video = video_clip(args.video_seconds) if args.video_clients else None
    sheet = face_sheet(args.explain_faces) if args.explain_clients else None
    proc = None
    if args.url:
        url = args.url.rstrip("/")
    else:
        port = free_port()
        proc = start_server(port, args.workers, args.threads, extra)
        url = f"http://127.0.0.1:{port}"
    try:
        pid = proc.pid if proc else None
        rss_start = rss_kb(pid) if pid else None
        with MemoryWatch(pid) as watch:
            stats = asyncio.run(run_clients(url, image, args.clients, args.duration, args.timeout,
                                            args.slow_clients, args.oversize_clients,
                                            int(args.max_upload_mb * 1024 * 1024), args.idle_sockets,
                                            video, args.video_clients, sheet, args.explain_clients,
                                            args.health_every))
        rss_end = rss_kb(pid) if pid else None
        rss_hwm = rss_kb(pid, "VmHWM") if pid else None
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=30)

    mb = lambda kb: round(kb / 1024, 1) if kb else None  # noqa: E731
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "clients": args.clients, "duration_s": args.duration, "image": args.image.name,
        "image_bytes": len(image), "server_workers": args.workers or "default",
        "server_threads": args.threads, "cpus": os.cpu_count(), "python": platform.python_version(),
        "load_average_before": list(os.getloadavg()), "nice": os.nice(0),
        **({"video_bytes": len(video), "video_seconds": args.video_seconds} if video else {}),
        **({"explain_photo_bytes": len(sheet), "explain_faces_tiled": args.explain_faces} if sheet else {}),
        **stats,
        "server_rss_mb": {"start": mb(rss_start), "peak_sampled": mb(watch.peak_kb), "peak_vmhwm": mb(rss_hwm),
                          "end": mb(rss_end)},
        "server_rss_timeline_mb": {"every_s": watch.every_s, "samples": [mb(kb) for kb in watch.timeline_kb]},
        "rss_bound_mb": args.rss_bound_mb,
        "rss_within_bound": bool(rss_hwm) and rss_hwm / 1024 <= args.rss_bound_mb if pid else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")

    lat = report["latency_ms"]
    rss = report["server_rss_mb"]
    print("| clients | seconds | requests ok | errors | req/s | p50 ms | p90 ms | p99 ms | max ms "
          "| RSS start MB | RSS peak MB | RSS end MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.clients} | {report['elapsed_s']} | {report['requests_ok']} | {report['errors']} "
          f"| {report['requests_per_s']} | {lat['p50']} | {lat['p90']} | {lat['p99']} | {lat['max']} "
          f"| {rss['start']} | {rss['peak_vmhwm']} | {rss['end']} |")
    print(f"server RSS every {watch.every_s:g} s (MB): {report['server_rss_timeline_mb']['samples']}")
    if args.slow_clients or args.oversize_clients:
        print(f"slow clients ({args.slow_clients}): {report['slow_client_answers']}; "
              f"oversize clients ({args.oversize_clients}): {report['oversize_client_answers']}")
    if args.health_every:
        print(f"/healthz: {report['health_ok']} ok, {report['health_errors']} errors, latency ms "
              f"{report['health_latency_ms']}, longest gap {report['health_longest_gap_s']} s; /v1/detect longest "
              f"gap {report['detect_longest_gap_s']} s")
    for key in ("idle_socket_outcomes", "video_answers", "explain_answers"):
        if key in report:
            print(f"{key}: {report[key]}")
    if pid:
        print(f"server RSS peak {rss['peak_vmhwm']} MB, bound {args.rss_bound_mb:g} MB: "
              f"{'within' if report['rss_within_bound'] else 'OVER'}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
