"""Check emodetect.voice.whisper against faster-whisper / CTranslate2 on the same clips: our log-mel
against faster-whisper's FeatureExtractor, and our torch encoder against
`ctranslate2.models.Whisper.encode` on the same log-mel (max absolute difference).

Two interpreters, because CTranslate2 is no dependency of emodetect: the reference half runs in a
throwaway venv holding faster-whisper, the rest in the project's environment.

    python bench/voice_whisper_check.py prepare MODEL_DIR CLIPS... --work /tmp/wcheck
    /tmp/fwvenv/bin/python bench/voice_whisper_check.py reference MODEL_DIR --work /tmp/wcheck
    python bench/voice_whisper_check.py compare MODEL_DIR --work /tmp/wcheck
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

FRAMES_30S = 3000


def prepare(args) -> None:
    from emodetect.voice import features as F

    waves = {f"w{i}": F.load_audio(path) for i, path in enumerate(args.clips)}
    args.work.mkdir(parents=True, exist_ok=True)
    np.savez(args.work / "waves.npz", **waves)


def reference(args) -> None:
    """faster-whisper's features and CTranslate2's encoder output (run in the faster-whisper venv)."""
    import ctranslate2
    from faster_whisper.feature_extractor import FeatureExtractor

    extractor = FeatureExtractor(feature_size=80)
    model = ctranslate2.models.Whisper(str(args.model), device="cpu", compute_type="float32", intra_threads=1)
    out, notes = {}, {}
    with np.load(args.work / "waves.npz") as waves:
        for key in waves.files:
            wave = waves[key]
            mel = extractor(wave, padding=0)  # 80 x (samples // 160), no 30 s padding
            out[f"{key}_mel"] = mel
            padded = np.zeros((80, FRAMES_30S), np.float32)
            # Whisper's 30 s input: the clip's frames, then the log-mel of silence (whose floor is
            # set by the clip's peak, so it is computed over the padded signal).
            full = extractor(np.pad(wave, (0, FRAMES_30S * 160 - len(wave))), padding=0)[:, :FRAMES_30S]
            padded[:, :full.shape[1]] = full
            out[f"{key}_mel30"] = padded
            start = time.perf_counter()
            enc30 = model.encode(ctranslate2.StorageView.from_array(padded[None]), to_cpu=True)
            notes[f"{key}_ct2_30s_s"] = time.perf_counter() - start
            out[f"{key}_enc30"] = np.array(enc30)
            try:
                start = time.perf_counter()
                enc = model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None])), to_cpu=True)
                notes[f"{key}_ct2_clip_s"] = time.perf_counter() - start
                out[f"{key}_enc"] = np.array(enc)
            except (ValueError, RuntimeError) as err:
                notes[f"{key}_clip_error"] = str(err)
    np.savez(args.work / "reference.npz", **out)
    (args.work / "reference.json").write_text(json.dumps(notes, indent=1))
    print(json.dumps(notes, indent=1))


def compare(args) -> None:
    import torch

    from emodetect.voice import whisper as W

    torch.set_num_threads(1)
    encoder = W.load_whisper_encoder(args.model).eval()
    front_end = W.build_front_end()
    report = {}
    with np.load(args.work / "waves.npz") as waves, np.load(args.work / "reference.npz") as ref:
        for key in waves.files:
            wave = torch.from_numpy(waves[key])[None]
            with torch.no_grad():
                mel = front_end(wave)[0].numpy()
                row = {"seconds": round(wave.shape[1] / 16000, 3),
                       "mel_max_abs_diff": float(np.abs(mel - ref[f"{key}_mel"]).max())}
                start = time.perf_counter()
                ours30 = encoder(torch.from_numpy(ref[f"{key}_mel30"])[None])[0].numpy()
                row["torch_30s_s"] = round(time.perf_counter() - start, 3)
                row["encoder_30s_max_abs_diff"] = float(np.abs(ours30 - ref[f"{key}_enc30"][0]).max())
                row["encoder_30s_output_max_abs"] = float(np.abs(ref[f"{key}_enc30"]).max())
                if f"{key}_enc" in ref.files:
                    start = time.perf_counter()
                    ours = encoder(torch.from_numpy(ref[f"{key}_mel"])[None])[0].numpy()
                    row["torch_clip_s"] = round(time.perf_counter() - start, 3)
                    row["encoder_clip_max_abs_diff"] = float(np.abs(ours - ref[f"{key}_enc"][0]).max())
            report[key] = row
    print(json.dumps(report, indent=1))
    (args.work / "compare.json").write_text(json.dumps(report, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("prepare", "reference", "compare"))
    parser.add_argument("model", type=Path, help="faster-whisper model folder")
    parser.add_argument("clips", nargs="*", type=Path)
    parser.add_argument("--work", type=Path, default=Path("/tmp/wcheck"))
    args = parser.parse_args()
    {"prepare": prepare, "reference": reference, "compare": compare}[args.step](args)


if __name__ == "__main__":
    main()
