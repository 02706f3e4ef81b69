"""Voice models across corpora and recording conditions: every model on every speech corpus's test
split (speakers no model was trained or selected on), clean and as users record it.

Each test clip is scored through `VoiceEmotion` (the ONNX file, the pipeline's own trimming and
windows) as recorded, then as three conditions made from it with `emodetect.voice.augment`
(seeded per clip): `telephone` (8 kHz, 300-3400 Hz), `noise` (pink noise at 10 dB SNR) and `room`
(0.5 s reverberation). Labels are the union label space (angry ... neutral, calm, boredom): a
clip whose label a model lacks (calm for an EmoDB model, boredom for a RAVDESS one) counts wrong,
because a user's recording does not know which corpus the model came from.

    python bench/voice_corpora.py ../shared/data/speech/ravdess ../shared/data/speech/emodb \
        [--models default ravdess emodb run.onnx]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from common import machine_info, markdown_table, write_json

CONDITIONS = ("clean", "telephone", "noise", "room")


def condition(wave: np.ndarray, name: str, seed: int) -> np.ndarray:
    from emodetect.voice import augment

    rng = np.random.default_rng([seed, CONDITIONS.index(name)])
    if name == "telephone":
        return augment.telephone(wave)
    if name == "noise":
        return augment.add_noise(wave, 10.0, 1.0, rng)
    if name == "room":
        return augment.reverberate(wave, 0.5, rng)
    return wave


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", nargs="+", type=Path, help="speech corpus folders (manifest.csv)")
    parser.add_argument("--models", nargs="+", default=["default", "fast"])
    parser.add_argument("--split", default="test")
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    args = parser.parse_args()

    from emodetect.voice import features as F
    from emodetect.voice.data import read_manifest, select
    from emodetect.voice.pipeline import VoiceEmotion

    clips = {path.name: select(read_manifest(path), args.split) for path in args.corpora}
    waves = {}
    for corpus, chosen in clips.items():
        clean = [F.load_audio(c.path) for c in chosen]
        waves[corpus] = {cond: [condition(w, cond, i) for i, w in enumerate(clean)] for cond in args.conditions}
    record: dict = {}
    table = []
    for name in args.models:
        reader = VoiceEmotion(name, words=False)
        record[name] = {"labels": list(reader.labels)}
        for corpus, chosen in clips.items():
            truth = np.array([c.label for c in chosen])
            cells = []
            for cond in args.conditions:
                guess = np.array([reader.predict(w, F.SAMPLE_RATE).label or "" for w in waves[corpus][cond]])
                accuracy = float((guess == truth).mean())
                unweighted = float(np.mean([(guess[truth == k] == k).mean() for k in sorted(set(truth))]))
                record[name].setdefault(corpus, {})[cond] = {
                    "n": len(truth), "accuracy": round(accuracy, 4), "unweighted_accuracy": round(unweighted, 4)}
                cells.append(f"{accuracy:.3f} / {unweighted:.3f}")
            table.append([name, corpus, *cells])
    print(f"accuracy / unweighted accuracy (mean recall) on each corpus's {args.split} split, clips")
    print(markdown_table(["model", "corpus", *args.conditions], table))
    path = write_json("voice_corpora.json", {"machine": machine_info(), "split": args.split,
                                             "corpora": [str(p) for p in args.corpora], "results": record})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
