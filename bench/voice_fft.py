"""Log-mel FFT block size: one FFT over each 3 s window (as before) against blocks of frames
(`features.FFT_BLOCK_FRAMES`), timed in one process with the settings interleaved round by round,
for `log_mel` alone and for `VoiceEmotion` on the RAVDESS test clips (decode to probabilities,
single onnxruntime thread). Medians over rounds; ratios against the one-FFT baseline.

    python bench/voice_fft.py --rounds 7          # writes bench/results/voice_fft.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, markdown_table, median, write_json  # noqa: E402
from voice import SPEECH  # noqa: E402

WHOLE = 1 << 30  # a block larger than any window: one FFT per window, the old behaviour


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--blocks", type=int, nargs="+", default=[WHOLE, 32, 64, 128])
    args = parser.parse_args()

    from emodetect.voice import features as F
    from emodetect.voice.data import load_corpus, select
    from emodetect.voice.features import audio_info
    from emodetect.voice.pipeline import VoiceEmotion

    clips = [c.path for c in select(load_corpus(SPEECH / "ravdess")[0], "test")]
    audio_s = sum(audio_info(p).duration_s for p in clips)
    window = (np.random.default_rng(0).standard_normal(3 * F.SAMPLE_RATE) * 0.1).astype(np.float32)
    engine = VoiceEmotion(threads=1, words=False)
    reference = F.log_mel(window)
    mel_ms: dict[int, list[float]] = {b: [] for b in args.blocks}
    pipeline_s: dict[int, list[float]] = {b: [] for b in args.blocks}
    for _ in range(args.rounds):
        for block in args.blocks:
            F.FFT_BLOCK_FRAMES = block
            assert np.array_equal(F.log_mel(window), reference), "a block size changed the features"
            t0 = time.perf_counter()
            for _ in range(200):
                F.log_mel(window)
            mel_ms[block].append((time.perf_counter() - t0) / 200 * 1e3)
            t0 = time.perf_counter()
            for path in clips:
                engine.predict(path)
            pipeline_s[block].append(time.perf_counter() - t0)
    base_mel, base_pipe = median(mel_ms[WHOLE]), median(pipeline_s[WHOLE])
    rows, results = [], {}
    for block in args.blocks:
        name = "one FFT per window (before)" if block == WHOLE else f"blocks of {block} frames"
        mel, pipe = median(mel_ms[block]), median(pipeline_s[block])
        results[name] = {"log_mel_ms": round(mel, 3), "pipeline_wall_s": round(pipe, 3),
                         "audio_s_per_s": round(audio_s / pipe, 1), "log_mel_speedup": round(base_mel / mel, 2),
                         "pipeline_speedup": round(base_pipe / pipe, 3)}
        rows.append([name, f"{mel:.3f}", f"{base_mel / mel:.2f}x", f"{pipe:.3f}", f"{audio_s / pipe:.1f}",
                     f"{base_pipe / pipe:.3f}x"])
    print(markdown_table(["log-mel FFT", "log_mel of 3 s (ms)", "vs before", "360 RAVDESS test clips (s)",
                          "audio s per s", "vs before"], rows))
    path = write_json("voice_fft.json", {"machine": machine_info(), "rounds": args.rounds,
                                         "audio_s": round(audio_s, 1), "results": results})
    print(f"\nmedians of {args.rounds} interleaved rounds; wrote {path}")


if __name__ == "__main__":
    main()
