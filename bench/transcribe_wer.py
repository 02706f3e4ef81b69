"""Word error rate and speed of the speech extra's transcripts (Whisper tiny.en via faster-whisper).

RAVDESS's held-out actors (19-24, the test split) each say one of two known sentences, so the
reference words are known; eSpeak NG sentences (where `espeak-ng` is installed) add a synthetic
voice. Prints a table and writes bench/results/transcribe_wer.json.

    python bench/transcribe_wer.py --data ../shared/data/speech/ravdess [--beam 1 5] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

SENTENCES = {"kids": "kids are talking by the door", "dogs": "dogs are sitting by the door"}
ESPEAK = ["the meeting starts at nine tomorrow morning", "i am so happy to see you again",
          "please leave the parcel at the front door", "this is the worst service i have ever had",
          "we will call you back within two working days"]


def normalise(text: str) -> list[str]:
    return "".join(c if c.isalnum() or c == "'" else " " for c in text.lower()).split()


def edits(reference: list[str], hypothesis: list[str]) -> int:
    """Word-level Levenshtein distance (substitutions + deletions + insertions)."""
    row = list(range(len(hypothesis) + 1))
    for i, word in enumerate(reference, 1):
        previous, row[0] = row[0], i
        for j, heard in enumerate(hypothesis, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (word != heard))
    return row[-1]


def ravdess_items(data: Path, limit: int | None) -> list[tuple[Path, str]]:
    import csv

    rows = [r for r in csv.DictReader(open(data / "manifest.csv", encoding="utf-8")) if r["split"] == "test"]
    return [(data / r["path"], SENTENCES[r["statement"]]) for r in rows[:limit]]


def espeak_items(folder: Path) -> list[tuple[Path, str]]:
    if shutil.which("espeak-ng") is None:
        return []
    items = []
    for i, sentence in enumerate(ESPEAK):
        path = folder / f"espeak_{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), sentence], check=True)
        items.append((path, sentence))
    return items


def score(transcriber, items: list[tuple[Path, str]]) -> dict:
    from emodetect.voice.features import load_audio

    errors = words = 0
    audio_s = compute_s = 0.0
    for path, reference in items:
        wave = load_audio(path)
        started = time.perf_counter()
        heard = " ".join(u.text for u in transcriber.transcribe(wave))
        compute_s += time.perf_counter() - started
        audio_s += len(wave) / 16_000
        ref = normalise(reference)
        errors += edits(ref, normalise(heard))
        words += len(ref)
    return {"clips": len(items), "words": words, "wer": round(errors / max(words, 1), 4),
            "audio_s": round(audio_s, 1), "seconds": round(compute_s, 1),
            "real_time_factor": round(compute_s / max(audio_s, 1e-9), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/speech/ravdess"))
    parser.add_argument("--beam", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--limit", type=int, default=None, help="first N test clips only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "transcribe_wer.json")
    args = parser.parse_args()
    from emodetect.voice.words import Transcriber

    results = []
    with tempfile.TemporaryDirectory() as folder:
        sets = {"RAVDESS actors 19-24": ravdess_items(args.data, args.limit), "eSpeak NG": espeak_items(Path(folder))}
        for beam in args.beam:
            transcriber = Transcriber(threads=args.threads, beam_size=beam)
            transcriber.transcribe(np.zeros(16_000, dtype=np.float32))  # load and warm up
            for name, items in sets.items():
                if items:
                    results.append({"set": name, "beam": beam, **score(transcriber, items)})
    print(f"{'set':24} {'beam':>4} {'clips':>5} {'words':>6} {'WER':>7} {'audio s':>8} {'RTF':>7}")
    for r in results:
        print(f"{r['set']:24} {r['beam']:>4} {r['clips']:>5} {r['words']:>6} {r['wer']:>7.4f} "
              f"{r['audio_s']:>8.1f} {r['real_time_factor']:>7.4f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": "whisper-tiny.en (int8, faster-whisper)", "cpu": platform.processor()
                                    or platform.machine(), "threads": args.threads, "results": results}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
