"""EmoDB leave-one-speaker-out: train on 8 speakers, select on a 9th, score the 10th; all 10 folds.

EmoDB's manifest test split has only two speakers, so one split is a noisy figure; the mean over
ten folds, each scoring a speaker that neither training nor model selection saw, is the steadier
one. Clips are scored through the inference pipeline (ONNX export, `VoiceEmotion.predict`).

    nice -n 15 .venv/bin/python bench/voice_loso.py --epochs 20   # writes bench/results/voice_loso.json

The joint default's recipe (RAVDESS's training and validation actors in every fold's training
data, waveform augmentation; only EmoDB speakers are held out and scored):

    python bench/voice_loso.py --also ravdess --model mel_cnn_stats_wide --epochs 40 --wave-copies 1 \
        --ema-decay 0.99 --bf16 --threads 2 --out voice_loso_joint.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine_info, markdown_table, write_json  # noqa: E402
from voice import SPEECH, score_clips  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--model", default="mel_cnn")
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--folds", default="", help="comma-separated speakers to hold out (default: all)")
    parser.add_argument("--also", default="", help="'+'-joined corpora (folders under shared/data/speech) whose "
                        "train and validation speakers join every fold's training data, e.g. ravdess")
    parser.add_argument("--wave-copies", type=int, default=0)
    parser.add_argument("--ema-decay", type=float, default=0.98)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="voice_loso.json")
    parser.add_argument("--resume", action="store_true", help="keep the folds already in --out and run the rest")
    args = parser.parse_args()

    from emodetect.export import export_checkpoint
    from emodetect.train import TrainConfig, train
    from emodetect.voice.data import load_corpus, select
    from emodetect.voice.pipeline import VoiceEmotion

    data = SPEECH / "emodb"
    # Other corpora train in every fold, their test speakers never (emodb/ names EmoDB's speakers:
    # joined corpora share ids).
    corpora = "+".join(str(d) for d in [data, *(SPEECH / name for name in args.also.split("+") if name)])
    joined, labels = load_corpus(corpora)
    clips = [c for c in joined if c.corpus == data.name]
    speakers = sorted({c.speaker for c in clips})
    never = sorted({f"{c.corpus}/{c.speaker}" for c in joined if c.corpus != data.name and c.split == "test"})
    held_out = args.folds.split(",") if args.folds else speakers
    folds = []
    saved = RESULTS / args.out
    if args.resume and saved.is_file():
        folds = [f for f in json.loads(saved.read_text())["folds"] if f["test_speaker"] in held_out]
        print(f"resuming: folds {[f['test_speaker'] for f in folds]} kept from {saved}")
    for test_speaker in [s for s in held_out if s not in {f["test_speaker"] for f in folds}]:
        # Model selection on the next speaker round the list, so the scored one stays unseen.
        val_speaker = speakers[(speakers.index(test_speaker) + 1) % len(speakers)]
        with tempfile.TemporaryDirectory() as tmp:
            cfg = TrainConfig(data=corpora, modality="voice", model=args.model,
                              out=tmp, train_split="speaker!=" + ",".join(
                                  [f"emodb/{test_speaker}", f"emodb/{val_speaker}", *never]),
                              val_split=f"speaker=emodb/{val_speaker}", epochs=args.epochs, batch_size=32,
                              optimizer="adamw", lr=args.lr, weight_decay=0.05, mixup=0.2,
                              ema_decay=args.ema_decay, wave_copies=args.wave_copies, bf16=args.bf16,
                              threads=args.threads)
            t0 = time.perf_counter()
            result = train(cfg)
            onnx = export_checkpoint(result.best_checkpoint, Path(tmp) / "fold.onnx").path
            scores = score_clips(VoiceEmotion(onnx, threads=1, words=False), select(clips, f"speaker={test_speaker}"), labels)
        fold = {"test_speaker": test_speaker, "val_speaker": val_speaker, "best_epoch": result.best_epoch,
                "val_window_acc": round(result.best_val_acc, 4), "wall_s": round(time.perf_counter() - t0, 1),
                **{k: scores[k] for k in ("n", "accuracy", "unweighted_accuracy", "macro_f1")}}
        folds.append(fold)
        print(f"fold {test_speaker}: {fold}", flush=True)
        # Written after every fold: an interrupted run keeps what it measured (the rest: --resume).
        write_json(args.out, {"machine": machine_info(), "config": vars(args), "folds": folds, "complete": False})
    mean_ua = float(np.mean([f["unweighted_accuracy"] for f in folds]))
    mean_acc = float(np.mean([f["accuracy"] for f in folds]))
    rows = [[f["test_speaker"], f["val_speaker"], f["n"], f["accuracy"], f["unweighted_accuracy"], f["wall_s"]]
            for f in folds]
    rows.append(["mean", "", sum(f["n"] for f in folds), round(mean_acc, 4), round(mean_ua, 4),
                 round(sum(f["wall_s"] for f in folds), 1)])
    print(markdown_table(["held-out speaker", "selection speaker", "clips", "accuracy", "unweighted acc",
                          "wall s"], rows))
    path = write_json(args.out, {"machine": machine_info(), "config": vars(args), "folds": folds, "complete": True,
                                 "mean_accuracy": round(mean_acc, 4), "mean_unweighted_accuracy": round(mean_ua, 4)})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
