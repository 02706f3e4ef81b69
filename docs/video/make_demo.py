"""Build the demo clip of docs/video.md: a sample photo panned slowly, speech synthesised by
espeak-ng, and SubRip subtitles timed to it. Run from the repository root:

    python docs/video/make_demo.py /tmp/demo        # writes demo.mp4 and demo.srt there
    emodetect video /tmp/demo/demo.mp4 --subtitles /tmp/demo/demo.srt --out /tmp/demo/out --captions

Needs espeak-ng (`apt-get install espeak-ng`); PyAV and Pillow come with emodetect.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np
import soundfile as sf
from PIL import Image

LINES = ["Thank you so much, this made my day!", "I can't believe they cancelled it. This is awful.",
         "Well, I suppose we will try again next week."]
PHOTO = Path(__file__).resolve().parents[2] / "emodetect" / "assets" / "samples" / "grace_hopper.jpg"
FPS, RATE, GAP_S = 15, 22_050, 0.6


def speak(text: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "line.wav"
        subprocess.run(["espeak-ng", "-s", "150", "-w", str(wav), text], check=True)
        samples, rate = sf.read(wav, dtype="float32")
    assert rate == RATE, rate
    return samples


def stamp(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    audio, cues, t = [np.zeros(int(GAP_S * RATE), np.float32)], [], GAP_S
    for line in LINES:
        speech = speak(line)
        cues.append((t, t + len(speech) / RATE, line))
        audio += [speech, np.zeros(int(GAP_S * RATE), np.float32)]
        t += len(speech) / RATE + GAP_S
    samples = np.concatenate(audio)
    (out_dir / "demo.srt").write_text("\n".join(f"{i + 1}\n{stamp(a)} --> {stamp(b)}\n{text}\n"
                                                for i, (a, b, text) in enumerate(cues)))
    photo = np.asarray(Image.open(PHOTO).convert("RGB").resize((640, 800)))
    container = av.open(str(out_dir / "demo.mp4"), "w")
    video = container.add_stream("libx264", rate=FPS)
    video.width, video.height, video.pix_fmt = 640, 480, "yuv420p"
    sound = container.add_stream("aac", rate=RATE)
    sound.layout = "mono"
    frames = int(len(samples) / RATE * FPS)
    for i in range(frames):  # a slow pan down the photo
        top = int(200 * i / max(frames - 1, 1))
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(photo[top:top + 480]), format="rgb24")
        picture.pts = i
        for packet in video.encode(picture):
            container.mux(packet)
    for packet in video.encode(None):
        container.mux(packet)
    for start in range(0, len(samples), 1024):
        block = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[start:start + 1024][None]),
                                           format="fltp", layout="mono")
        block.sample_rate, block.pts = RATE, start
        for packet in sound.encode(block):
            container.mux(packet)
    for packet in sound.encode(None):
        container.mux(packet)
    container.close()
    print(f"wrote {out_dir / 'demo.mp4'} ({len(samples) / RATE:.1f} s) and {out_dir / 'demo.srt'}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "demo"))
