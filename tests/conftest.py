"""Small self-made data: FER-style CSVs and image folders with a pattern per class."""

from __future__ import annotations

import gzip
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from emodetect.labels import EMOTIONS


def synthetic_faces(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """48x48 images whose class is the number of horizontal stripes: learnable in one epoch."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(EMOTIONS)
    rng.shuffle(labels)
    rows = np.arange(48)[:, None]
    images = []
    for label in labels:
        stripes = 127 + 90 * np.sin(2 * np.pi * (label + 1) * rows / 48 + rng.uniform(0, 0.3))
        image = np.repeat(stripes, 48, axis=1) + rng.normal(0, 12, (48, 48))
        images.append(np.clip(image, 0, 255).astype(np.uint8))
    return np.stack(images), labels


def write_fer_csv(path: Path, splits: dict[str, int], seed: int = 0, extra_lines: list[str] = ()) -> Path:
    lines = ["emotion,pixels,Usage"]
    for offset, (usage, n) in enumerate(splits.items()):
        images, labels = synthetic_faces(n, seed + offset)
        lines += [f"{label},{' '.join(map(str, image.ravel()))},{usage}" for image, label in zip(images, labels)]
    lines += list(extra_lines)
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return path


@pytest.fixture
def fer_csv(tmp_path: Path) -> Path:
    return write_fer_csv(tmp_path / "fer.csv", {"Training": 700, "PublicTest": 140, "PrivateTest": 140})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(*flags: str) -> Iterator[str]:
    """`emodetect serve` as a user starts it, on a free port; yields its URL once /readyz says ready."""
    port = free_port()
    exe = Path(sys.executable).with_name("emodetect")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "emodetect"]
    proc = subprocess.Popen([*command, "serve", "--port", str(port), "--workers", "1", *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"emodetect serve did not become ready: {proc.stdout.read().decode(errors='replace')}")
        time.sleep(0.2)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def write_clip(path: Path, frames: list[np.ndarray], fps: int, container: str | None = None,
               audio: np.ndarray | None = None, audio_rate: int = 16_000) -> Path:
    """An H.264 clip of RGB `frames` (H x W x 3 uint8) at `fps`, written with PyAV; `container`
    names the format where the suffix does not (e.g. mpegts); `audio` (mono float samples at
    `audio_rate`) becomes an AAC sound track."""
    import av

    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        sound = out.add_stream("aac", rate=audio_rate, layout="mono") if audio is not None else None
        for i, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            picture.pts = i
            for packet in stream.encode(picture):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
        if sound is not None:
            pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
            for start in range(0, len(pcm), 1024):
                block = av.AudioFrame.from_ndarray(pcm[None, start:start + 1024], format="s16", layout="mono")
                block.sample_rate, block.pts = audio_rate, start
                for packet in sound.encode(block):
                    out.mux(packet)
            for packet in sound.encode(None):
                out.mux(packet)
    return path


def speech_like(seconds: float, rate: int = 16_000, seed: int = 0) -> np.ndarray:
    """Voiced, syllable-paced harmonics: a recording the voice pipeline does not call silent."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    syllables = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) ** 2
    return (0.2 * voice * syllables + 0.005 * rng.standard_normal(len(t))).astype(np.float32)


TEXT_FILLER = "the a today was it and my day at work with friend we went home then later".split()


def write_keyword_texts(path: Path, words: dict[str, list[str]], n: int = 360, seed: int = 0) -> Path:
    """A text CSV (text, label, split) of filler words with one of its label's words put in at
    random; the first two thirds train, the rest validate."""
    import csv
    import random

    rng = random.Random(seed)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "split"])
        for i in range(n):
            label = sorted(words)[i % len(words)]
            text = [rng.choice(TEXT_FILLER) for _ in range(rng.randint(3, 8))]
            text.insert(rng.randrange(len(text) + 1), rng.choice(words[label]))
            writer.writerow([" ".join(text), label, "train" if i < n * 2 // 3 else "validation"])
    return path
