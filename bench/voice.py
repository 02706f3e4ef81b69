"""Voice benchmark: held-out-speaker accuracy of the bundled voice models, and audio throughput.

Accuracy is scored per clip through the real inference path (`VoiceEmotion.predict(path)`: decode,
trim, window, log-mel, onnxruntime, mean over windows) on speakers no model saw in training:
RAVDESS actors 19-24 and EmoDB speakers 15 and 16 (the manifests' test splits). Throughput is
seconds of audio processed per wall second, single inference thread, on the RAVDESS test clips
and on a 10-minute recording (which the pipeline streams block by block).

    nice -n 15 .venv/bin/python bench/voice.py            # writes bench/results/voice.json
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, goal, machine_info, markdown_table, median, write_json  # noqa: E402

SPEECH = Path(os.environ.get("EMODETECT_DATA", REPO.parent / "shared" / "data")) / "speech"
# Which corpus each bundled model is scored on, and the bars (required, goal).
CORPUS = {"ravdess": "ravdess", "emodb": "emodb"}
BARS = {"ravdess": ("accuracy", 0.50, 0.60), "emodb": ("unweighted_accuracy", 0.70, 0.80)}


def score_clips(engine: Any, clips: list, labels: tuple[str, ...]) -> dict[str, Any]:
    """Clip-level accuracy, unweighted accuracy (mean per-class recall), macro-F1 and confusion."""
    from emodetect.evaluate import classification_report

    truth, pred = [], []
    for clip in clips:
        result = engine.predict(clip.path)
        truth.append(labels.index(clip.label))
        # An all-silent clip counts as wrong: it gets the first label only if that is right by chance.
        pred.append(labels.index(result.label) if result.label else (truth[-1] + 1) % len(labels))
    report = classification_report(np.array(truth), np.array(pred), labels)
    return {"n": report.n, "accuracy": round(report.accuracy, 4),
            "unweighted_accuracy": report.extra["unweighted_accuracy"],
            "macro_f1": round(report.macro_f1, 4),
            "per_class_recall": {c.label: round(c.recall, 4) for c in report.per_class},
            "confusion": report.confusion, "labels": list(labels)}


def throughput(engine: Any, paths: list[Path], runs: int) -> dict[str, float]:
    """Median seconds of audio per wall second over `runs` passes through the files."""
    from emodetect.voice.features import audio_info

    audio_s = sum(audio_info(p).duration_s for p in paths)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for p in paths:
            engine.predict(p)
        times.append(time.perf_counter() - t0)
    return {"audio_s": round(audio_s, 1), "median_wall_s": round(median(times), 3),
            "audio_s_per_s": round(audio_s / median(times), 1), "runs": runs}


def long_recording(clips: list, seconds: float, folder: Path) -> Path:
    """Test clips back to back with 2 s pauses, as one 16 kHz FLAC of `seconds`."""
    import soundfile as sf

    from emodetect.voice.features import load_audio

    parts, total = [], 0.0
    pause = np.zeros(32_000, np.float32)
    while total < seconds:
        for clip in clips:
            wave = load_audio(clip.path)
            parts += [wave, pause]
            total += (len(wave) + len(pause)) / 16_000
            if total >= seconds:
                break
    path = folder / "long.flac"
    sf.write(path, np.concatenate(parts)[:int(seconds * 16_000)], 16_000)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="timed passes for throughput")
    parser.add_argument("--long-seconds", type=float, default=600.0)
    parser.add_argument("--write-figures", action="store_true",
                        help="store the measured test figures in each bundled model's ONNX metadata")
    args = parser.parse_args()

    from emodetect.runtime import bundled_models
    from emodetect.voice.data import load_corpus, select
    from emodetect.voice.pipeline import VoiceEmotion

    models = [m for m in bundled_models() if m.modality == "voice"]
    if not models:
        sys.exit("no bundled voice model")
    rows, results, figures = [], {}, {}
    for m in models:
        # A joint model ("ravdess+emodb") is scored on each corpus's test speakers in turn.
        corpora = (m.metadata.get("corpus") or CORPUS.get(m.name, "ravdess")).split("+")
        labels = tuple(m.labels)
        engine = VoiceEmotion(m.path, threads=1, words=False)
        for corpus in corpora:
            clips, _ = load_corpus(SPEECH / corpus)
            if not {c.label for c in clips} <= set(labels):
                print(f"skipping {m.name}: labels {m.labels} do not cover {corpus}'s")
                continue
            test = select(clips, "test")
            t0 = time.perf_counter()
            scores = score_clips(engine, test, labels)
            scores["wall_s"] = round(time.perf_counter() - t0, 1)
            metric, required, target = BARS[corpus]
            scores.update({"corpus": corpus, "speakers": sorted({c.speaker for c in test}), "bar_metric": metric,
                           "required": required, "goal": target,
                           "required_met": scores[metric] >= required, "goal_met": scores[metric] >= target})
            results[m.name if len(corpora) == 1 else f"{m.name} on {corpus}"] = scores
            figures.setdefault(m.name, []).append(scores)
            rows.append([m.name, m.path.name, corpus, scores["n"], scores["accuracy"],
                         scores["unweighted_accuracy"], scores["macro_f1"],
                         f"{metric} >= {required}: {goal(scores[metric] >= required)}; "
                         f">= {target}: {goal(scores[metric] >= target)}"])
    print(markdown_table(["model", "file", "test speakers of", "clips", "accuracy", "unweighted acc",
                          "macro-F1", "bar"], rows))
    if args.write_figures:
        from emodetect.export import set_metadata

        for m in models:
            if m.name in figures:
                set_metadata(m.path, {"test_figures": "; ".join(
                    f"{s['corpus']} held-out speakers {','.join(s['speakers'])}: accuracy {s['accuracy']:.3f}, "
                    f"unweighted accuracy {s['unweighted_accuracy']:.3f} ({s['n']} clips)" for s in figures[m.name])})
        from emodetect.runtime import write_catalog

        print(f"rewrote {write_catalog()}")  # `emodetect models` reads the catalogue's copy of the metadata

    clips, _ = load_corpus(SPEECH / "ravdess")
    test = select(clips, "test")
    engine = VoiceEmotion(threads=1, words=False)
    with tempfile.TemporaryDirectory() as tmp:
        short = throughput(engine, [c.path for c in test], args.runs)
        long = throughput(engine, [long_recording(test, args.long_seconds, Path(tmp))], args.runs)
    speed_rows = [["RAVDESS test clips (360, ~3.7 s each)", short["audio_s"], short["median_wall_s"],
                   short["audio_s_per_s"]],
                  [f"one {args.long_seconds:.0f} s recording (streamed)", long["audio_s"],
                   long["median_wall_s"], long["audio_s_per_s"]]]
    print()
    print(markdown_table(["input", "audio s", "median wall s", "audio s per s (1 thread)"], speed_rows))
    path = write_json("voice.json", {"machine": machine_info(), "accuracy": results,
                                     "throughput": {"short_clips": short, "long_recording": long}})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
