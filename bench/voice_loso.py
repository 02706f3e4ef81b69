"""EmoDB leave-one-speaker-out: train on 8 speakers, select on a 9th, score the 10th; all 10 folds.

EmoDB's manifest test split has only two speakers, so one split is a noisy figure; the mean over
ten folds, each scoring a speaker that neither training nor model selection saw, is the steadier
one. Clips are scored through the inference pipeline (ONNX export, `VoiceEmotion.predict`).

    nice -n 15 .venv/bin/python bench/voice_loso.py --epochs 20   # writes bench/results/voice_loso.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, markdown_table, write_json  # noqa: E402
from voice import SPEECH, score_clips  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--model", default="mel_cnn")
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--folds", default="", help="comma-separated speakers to hold out (default: all)")
    parser.add_argument("--out", default="voice_loso.json")
    args = parser.parse_args()

    from emodetect.export import export_checkpoint
    from emodetect.train import TrainConfig, train
    from emodetect.voice.data import load_corpus, select
    from emodetect.voice.pipeline import VoiceEmotion

    data = SPEECH / "emodb"
    clips, labels = load_corpus(data)
    speakers = sorted({c.speaker for c in clips})
    held_out = args.folds.split(",") if args.folds else speakers
    folds, rows = [], []
    for test_speaker in held_out:
        # Model selection on the next speaker round the list, so the scored one stays unseen.
        val_speaker = speakers[(speakers.index(test_speaker) + 1) % len(speakers)]
        with tempfile.TemporaryDirectory() as tmp:
            cfg = TrainConfig(data=str(data), modality="voice", model=args.model, out=tmp,
                              train_split=f"speaker!={test_speaker},{val_speaker}",
                              val_split=f"speaker={val_speaker}", epochs=args.epochs, batch_size=32,
                              optimizer="adamw", lr=args.lr, weight_decay=0.05, mixup=0.2,
                              ema_decay=0.98, threads=1)
            t0 = time.perf_counter()
            result = train(cfg)
            onnx = export_checkpoint(result.best_checkpoint, Path(tmp) / "fold.onnx").path
            scores = score_clips(VoiceEmotion(onnx, threads=1), select(clips, f"speaker={test_speaker}"), labels)
        fold = {"test_speaker": test_speaker, "val_speaker": val_speaker, "best_epoch": result.best_epoch,
                "val_window_acc": round(result.best_val_acc, 4), "wall_s": round(time.perf_counter() - t0, 1),
                **{k: scores[k] for k in ("n", "accuracy", "unweighted_accuracy", "macro_f1")}}
        folds.append(fold)
        rows.append([test_speaker, val_speaker, fold["n"], fold["accuracy"], fold["unweighted_accuracy"],
                     fold["wall_s"]])
        print(f"fold {test_speaker}: {fold}", flush=True)
    mean_ua = float(np.mean([f["unweighted_accuracy"] for f in folds]))
    mean_acc = float(np.mean([f["accuracy"] for f in folds]))
    rows.append(["mean", "", sum(f["n"] for f in folds), round(mean_acc, 4), round(mean_ua, 4),
                 round(sum(f["wall_s"] for f in folds), 1)])
    print(markdown_table(["held-out speaker", "selection speaker", "clips", "accuracy", "unweighted acc",
                          "wall s"], rows))
    path = write_json(args.out, {"machine": machine_info(), "config": vars(args), "folds": folds,
                                 "mean_accuracy": round(mean_acc, 4), "mean_unweighted_accuracy": round(mean_ua, 4)})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
