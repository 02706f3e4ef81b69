"""Live voice latency: from the moment the last sample of a window arrives to its answer.

Two paths, on the spoken sample repeated with pauses (20 s), sent in 0.1 s blocks at real time:
the library (`LiveVoice.feed` in this process) and the service (WS /v1/voice/stream on a real
uvicorn server on 127.0.0.1, client and server on the same machine). Prints a table, writes
bench/results/live_voice.json. Words off (`--words` to include the transcription of each
utterance, which runs when an utterance ends and delays the windows behind it).

    python bench/live_voice.py [--runs 3] [--words]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import time
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE = Path(__file__).resolve().parent.parent / "emodetect" / "assets" / "samples" / "speech.flac"
BLOCK_S = 0.1


def recording() -> tuple[np.ndarray, int]:
    speech, rate = sf.read(SAMPLE, dtype="float32")
    pause = np.zeros(int(2 * rate), np.float32)
    return np.concatenate([speech, pause, speech, pause, speech]), rate


def library_latencies(engine, samples: np.ndarray, rate: int) -> list[float]:
    from emodetect.voice.live import LiveVoice

    live = LiveVoice(engine, rate)
    block = int(BLOCK_S * rate)
    latencies = []
    for at in range(0, len(samples), block):
        started = time.perf_counter()
        updates = live.feed(samples[at:at + block])
        spent = time.perf_counter() - started
        latencies += [spent] * sum(u.kind == "window" for u in updates)
    return latencies


async def service_latencies(url: str, samples: np.ndarray, rate: int) -> list[float]:
    """Blocks sent at real time; a window's latency runs from sending the block holding its last sample."""
    import websockets

    block = int(BLOCK_S * rate)
    sent_at: dict[int, float] = {}  # stream sample count -> time its block was sent
    latencies: list[float] = []
    async with websockets.connect(f"{url}?sample_rate={rate}&format=f32") as ws:
        ready = json.loads(await ws.recv())
        window, hop = int(ready["window_s"] * rate), int(ready["hop_s"] * rate)
        next_end = window

        async def receive() -> None:
            nonlocal next_end
            async for message in ws:
                m = json.loads(message)
                if m["kind"] == "end":
                    return
                if m["kind"] != "window" or round(m["end_s"] * rate) != next_end:
                    continue  # the final flush-right window, or an utterance
                done = time.perf_counter()
                first_holding = min(n for n in sent_at if n >= next_end)
                latencies.append(done - sent_at[first_holding])
                next_end += hop

        reader = asyncio.create_task(receive())
        start = time.perf_counter()
        for i, at in enumerate(range(0, len(samples), block)):
            await asyncio.sleep(max(0.0, start + i * BLOCK_S - time.perf_counter()))
            await ws.send(samples[at:at + block].astype("<f4").tobytes())
            sent_at[min(at + block, len(samples))] = time.perf_counter()
        await ws.send(json.dumps({"end": True}))
        await reader
    return latencies


def summary(name: str, values: list[float]) -> dict:
    ms = np.array(values) * 1000
    return {"path": name, "windows": len(ms), "median_ms": round(float(np.median(ms)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1), "max_ms": round(float(ms.max()), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--words", action="store_true")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "live_voice.json")
    args = parser.parse_args()
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from conftest import live_server  # `emodetect serve` as a user starts it, as the tests run it

    from emodetect.voice.pipeline import VoiceEmotion

    samples, rate = recording()
    engine = VoiceEmotion(words=args.words)
    library, service = [], []
    with live_server("--words" if args.words else "--no-words") as base:
        url = base.replace("http://", "ws://") + "/v1/voice/stream"
        for _ in range(args.runs):
            library += library_latencies(engine, samples, rate)
            service += asyncio.run(service_latencies(url, samples, rate))
    rows = [summary("library (LiveVoice.feed)", library), summary("service (WS /v1/voice/stream)", service)]
    print(f"{'path':32} {'windows':>7} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}")
    for r in rows:
        print(f"{r['path']:32} {r['windows']:>7} {r['median_ms']:>10} {r['p95_ms']:>8} {r['max_ms']:>8}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cpu": platform.processor() or platform.machine(), "runs": args.runs,
                                    "words": args.words, "block_s": BLOCK_S, "results": rows}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
