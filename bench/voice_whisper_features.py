"""Whisper encoder features of every speech clip, computed once and cached outside the checkout.

Each clip is cut as the voice pipeline cuts it (silence trimmed, 3 s windows every 1.5 s, a short
clip centred in one window), each window goes through Whisper's log-mel and encoder at its own
length (150 encoder frames, not the 1,500 of Whisper's 30 s input: 30x less work, measured in
docs/training/voice_whisper/README.md), and every layer's output is kept as float16, so a head can
be trained on any layer, or a learned mix of them, without running the encoder again.

Parts: `clean` for every split of every corpus, then `aug<k>` for the train split: copy k of each
clip through `emodetect.voice.augment.perturb` (speed, room, telephone band, noise, level), seeded
by the clip's position as `emodetect.voice.data.clip_rows` seeds it. With `--conditions`, the test
split as bench/voice_corpora.py degrades it (`telephone`, `noise`, `room`).

    nice -n 10 python bench/voice_whisper_features.py ~/.cache/emodetect-runs/whisper/tiny.en/model \
        ../shared/data/speech/ravdess ../shared/data/speech/emodb --out ~/.cache/emodetect-runs/whisper/feat-tiny \
        --copies 2
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

WINDOW_S, HOP_S = 3.0, 1.5


def clip_windows(wave: np.ndarray) -> np.ndarray:
    from emodetect.voice import features as F

    trimmed = F.trim_silence(wave)
    if len(trimmed) == 0:
        trimmed = wave
    windows, _ = F.clip_windows(trimmed, WINDOW_S, HOP_S)
    return windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="faster-whisper model folder (model.bin)")
    parser.add_argument("corpora", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--copies", type=int, default=2, help="augmented copies of each train clip")
    parser.add_argument("--conditions", nargs="+", choices=("clean", "telephone", "noise", "room"),
                        help="only the test split, in these conditions of bench/voice_corpora.py (made from the "
                             "untrimmed clip with its seed, as that bench makes them): the degraded columns")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True,
                        help="bfloat16 autocast for the encoder (AMX); features agree with float32 to "
                             "the cosine similarity printed at the start")
    args = parser.parse_args()

    import torch

    from emodetect.voice import features as F
    from emodetect.voice import whisper as W
    from emodetect.voice.augment import perturb
    from emodetect.voice.data import read_manifest

    torch.set_num_threads(args.threads)
    encoder = W.load_whisper_encoder(args.model).eval()
    front_end = W.build_front_end()
    args.out.mkdir(parents=True, exist_ok=True)

    def encode(windows: np.ndarray) -> np.ndarray:
        """windows x samples -> windows x layers x frames x width, float16."""
        out = []
        for start in range(0, len(windows), args.batch):
            x = torch.from_numpy(np.ascontiguousarray(windows[start:start + args.batch]))
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                states = encoder.hidden_states(front_end(x))
            out.append(torch.stack([s.float() for s in states], dim=1).half().numpy())
        return np.concatenate(out)

    # How far bfloat16 moves the features: cosine similarity per frame against float32.
    probe = np.random.default_rng(0).standard_normal((2, int(WINDOW_S * F.SAMPLE_RATE))).astype(np.float32) * 0.05
    with torch.no_grad():
        exact = torch.stack(encoder.hidden_states(front_end(torch.from_numpy(probe))), 1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            approx = torch.stack(encoder.hidden_states(front_end(torch.from_numpy(probe))), 1).float()
    cos = torch.nn.functional.cosine_similarity(exact, approx, dim=-1)
    print(f"bf16 vs fp32 per-frame cosine: min {cos.min():.4f}, mean {cos.mean():.5f}", flush=True)

    corpora = {path.name: read_manifest(path) for path in args.corpora}
    jobs = [(name, split, "clean") for name, clips in corpora.items() for split in ("train", "validation", "test")]
    jobs += [(name, "train", f"aug{k}") for k in range(args.copies) for name in corpora]
    if args.conditions:
        jobs = [(name, "test", cond) for cond in args.conditions for name in corpora]
    for corpus, split, part in jobs:
        target = args.out / f"{corpus}_{split}_{part}.npy"
        if target.exists():
            continue
        clips = [(i, c) for i, c in enumerate(corpora[corpus]) if c.split == split]
        started, rows, owners, all_windows = time.time(), [], [], []
        for position, (i, clip) in enumerate(clips):
            wave = F.load_audio(clip.path)
            if part in ("telephone", "noise", "room"):
                from voice_corpora import condition  # bench/, beside this script

                wave = condition(wave, part, position)
            elif part.startswith("aug"):
                trimmed = F.trim_silence(wave)
                wave = perturb(trimmed if len(trimmed) else wave, np.random.default_rng([i, int(part[3:])]))
            windows = clip_windows(wave)
            all_windows.append(windows)
            owners += [position] * len(windows)
            rows.append({"path": str(clip.path), "label": clip.label, "speaker": clip.speaker})
        windows = np.concatenate(all_windows)
        feats = encode(windows)
        np.save(target.with_suffix(".tmp.npy"), feats)
        np.save(args.out / f"{corpus}_{split}_{part}_clip.npy", np.array(owners, dtype=np.int32))
        (args.out / f"{corpus}_{split}_{part}.json").write_text(json.dumps(rows))
        os.replace(target.with_suffix(".tmp.npy"), target)
        took = time.time() - started
        print(f"{corpus} {split} {part}: {len(clips)} clips, {len(windows)} windows, {feats.shape}, "
              f"{took:.0f} s ({len(windows) * WINDOW_S / took:.1f} s of audio per s)", flush=True)


if __name__ == "__main__":
    main()
