"""Load and soak test for `emodetect serve`: N concurrent clients posting a photo for T seconds,
beside hostile ones.

Starts `emodetect serve` as a subprocess on a free localhost port (or uses --url), then N asyncio
clients each post the image to /v1/detect back to back. With --slow-clients, that many more open
an upload, send a trickle and stall (the server must answer 408 after its body timeout and free
the memory); with --oversize-clients, that many post a body over the upload limit again and again
(the server must answer 413 without reading it). Reports requests/s, latency percentiles of the
normal clients, errors (any answer a client did not expect), the hostile clients' answers, and the
server's resident memory over time (RSS, read from /proc). Writes bench/results/load.json.

    nice -n 15 python bench/load.py --clients 50 --duration 60
    python bench/load.py --clients 20 --slow-clients 20 --oversize-clients 5 --duration 180 --body-timeout 5 \
        --out bench/results/soak.json

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
                      slow: int = 0, oversize: int = 0, upload_limit: int = 10 * 2**20) -> dict:
    import httpx

    latencies: list[float] = []
    errors: dict[str, int] = {}
    faces: list[int] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
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
                    faces.append(len(r.json()["faces"]))
                else:
                    key = f"HTTP {r.status_code}"
                    errors[key] = errors.get(key, 0) + 1

        slow_answers: dict[str, int] = {}
        oversize_answers: dict[str, int] = {}
        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)),
                             *(slow_client(url, deadline, slow_answers) for _ in range(slow)),
                             *(oversize_client(http, upload_limit, deadline, oversize_answers) for _ in range(oversize)))
        elapsed = time.perf_counter() - began
    ms = np.array(latencies) * 1000
    pct = (lambda q: round(float(np.percentile(ms, q)), 1)) if len(ms) else (lambda q: None)
    return {
        "requests_ok": len(latencies), "errors": sum(errors.values()), "errors_by_kind": errors,
        "elapsed_s": round(elapsed, 2), "requests_per_s": round(len(latencies) / elapsed, 2),
        "latency_ms": {"p50": pct(50), "p90": pct(90), "p99": pct(99), "max": pct(100)},
        "faces_per_response": sorted(set(faces)),
        "slow_clients": slow, "slow_client_answers": slow_answers,
        "oversize_clients": oversize, "oversize_client_answers": oversize_answers,
    }


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
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "load.json")
    args = parser.parse_args()
    extra = ["--max-upload-mb", str(args.max_upload_mb)]
    if args.body_timeout is not None:
        extra += ["--body-timeout", str(args.body_timeout)]
    if args.slow_clients:  # each stalled upload holds a connection: leave room for them all
        extra += ["--max-connections", str(100 + args.clients + args.slow_clients + args.oversize_clients)]

    image = args.image.read_bytes()
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
                                            int(args.max_upload_mb * 1024 * 1024)))
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
        **stats,
        "server_rss_mb": {"start": mb(rss_start), "peak_sampled": mb(watch.peak_kb), "peak_vmhwm": mb(rss_hwm),
                          "end": mb(rss_end)},
        "server_rss_timeline_mb": {"every_s": watch.every_s, "samples": [mb(kb) for kb in watch.timeline_kb]},
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
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
