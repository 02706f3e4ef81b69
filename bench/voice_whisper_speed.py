"""Throughput of voice ONNX models through VoiceEmotion: seconds of audio scored per second of wall
time, on the same clips, one model after another in one process (so they share the machine's load).

    python bench/voice_whisper_speed.py ../shared/data/speech/ravdess --models default run.onnx run_int8.onnx
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--models", nargs="+", default=["default"])
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from emodetect.voice import features as F
    from emodetect.voice.data import read_manifest, select
    from emodetect.voice.pipeline import VoiceEmotion

    clips = select(read_manifest(args.corpus), "test")[:args.clips]
    waves = [F.load_audio(c.path) for c in clips]
    seconds = sum(len(w) for w in waves) / F.SAMPLE_RATE
    report = {}
    for name in args.models:
        reader = VoiceEmotion(name, threads=args.threads, words=False)
        reader.predict(waves[0], F.SAMPLE_RATE)  # warm-up
        started = time.perf_counter()
        for wave in waves:
            reader.predict(wave, F.SAMPLE_RATE)
        took = time.perf_counter() - started
        report[name] = {"audio_s": round(seconds, 1), "wall_s": round(took, 2),
                        "audio_s_per_s": round(seconds / took, 1)}
        print(name, json.dumps(report[name]), flush=True)


if __name__ == "__main__":
    main()
