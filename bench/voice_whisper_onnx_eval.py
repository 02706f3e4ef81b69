"""The test speakers through the exported ONNX files themselves (onnxruntime, float32 and int8): each
clip trimmed and cut as VoiceEmotion cuts it, its windows' probabilities averaged. Checks that the
figures measured on cached bfloat16 encoder features hold for the files users would run.

    python bench/voice_whisper_onnx_eval.py ../shared/data/speech/ravdess ../shared/data/speech/emodb \
        --models run/voice_whisper_tiny.onnx run/voice_whisper_tiny_int8.onnx
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", nargs="+", type=Path)
    parser.add_argument("--models", nargs="+", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--conditions", nargs="+", default=["clean"], choices=("clean", "telephone", "noise", "room"),
                        help="bench/voice_corpora.py's conditions, made with its seeds")
    args = parser.parse_args()

    from voice_corpora import condition  # bench/, beside this script
    from voice_whisper_features import clip_windows

    from emodetect.runtime import OnnxModel
    from emodetect.voice import features as F
    from emodetect.voice.data import read_manifest, select

    models = [OnnxModel(path, threads=1) for path in args.models]
    report: dict = {}
    for corpus, cond in ((corpus, cond) for corpus in args.corpora for cond in args.conditions):
        clips = select(read_manifest(corpus), args.split)
        windows = [clip_windows(condition(F.load_audio(c.path), cond, i)) for i, c in enumerate(clips)]
        truth = np.array([c.label for c in clips])
        for path, model in zip(args.models, models):
            started = time.time()
            guess = np.array([model.labels[int(model.predict(w).mean(0).argmax())] for w in windows])
            accuracy = float((guess == truth).mean())
            unweighted = float(np.mean([(guess[truth == k] == k).mean() for k in sorted(set(truth))]))
            report.setdefault(path.name, {}).setdefault(corpus.name, {})[cond] = {
                "clips": len(clips), "accuracy": round(accuracy, 4), "unweighted_accuracy": round(unweighted, 4),
                "seconds": round(time.time() - started, 1)}
            print(path.name, corpus.name, cond, json.dumps(report[path.name][corpus.name][cond]), flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
