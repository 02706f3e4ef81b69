"""Voice seeds on validation: each checkpoint alone and the mean of them all (one ONNX graph, as
`emodetect export a.pt b.pt` writes it), at several window hops, per clip on the validation
speakers of RAVDESS and EmoDB: to choose an ensemble and a hop on validation only.

    python bench/voice_ensemble.py runs/voice/e80_s1/best.pt runs/voice/e80_s2/best.pt --hops 1.5 0.5

Scored like bench/voice.py (VoiceEmotion.predict(path): decode, trim, window, log-mel,
onnxruntime, mean over windows); "mean" is the mean of the two corpora's bar figures (RAVDESS
accuracy, EmoDB unweighted accuracy). Writes bench/results/voice_ensemble.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, markdown_table, write_json  # noqa: E402
from voice import BARS, SPEECH, score_clips  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="best.pt of each seed (same recipe)")
    parser.add_argument("--hops", nargs="+", type=float, default=[1.5], help="window hops in seconds")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--corpora", nargs="+", default=["ravdess", "emodb"])
    parser.add_argument("--out", default="voice_ensemble.json")
    args = parser.parse_args()

    from emodetect.export import export_checkpoint
    from emodetect.voice.data import load_corpus, select
    from emodetect.voice.pipeline import VoiceEmotion

    clips = {c: select(load_corpus(SPEECH / c)[0], args.split) for c in args.corpora}
    rows, results = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        candidates = {f"{p.parent.name}/{p.name}": export_checkpoint(p, Path(tmp) / f"m{i}.onnx").path
                      for i, p in enumerate(args.checkpoints)}
        if len(args.checkpoints) > 1:
            candidates[f"mean of {len(args.checkpoints)}"] = export_checkpoint(
                args.checkpoints, Path(tmp) / "mean.onnx").path
        for name, path in candidates.items():
            for hop in args.hops:
                engine = VoiceEmotion(path, hop_s=hop, threads=1, words=False)
                scores = {c: score_clips(engine, clips[c], tuple(engine.labels)) for c in args.corpora}
                bars = [scores[c][BARS[c][0]] for c in args.corpora]
                mean = round(sum(bars) / len(bars), 4)
                results[f"{name} hop {hop:g}"] = {"scores": scores, "mean_bar_figure": mean}
                rows.append([name, hop, *[f"{scores[c]['accuracy']:.4f} / {scores[c]['unweighted_accuracy']:.4f}"
                                          for c in args.corpora], mean])
    print(markdown_table(["model", "hop s", *[f"{c} {args.split} acc / UA ({len(clips[c])} clips)"
                                              for c in args.corpora], "mean of bar figures"], rows))
    path = write_json(args.out, {"machine": machine_info(), "split": args.split,
                                 "checkpoints": [str(p) for p in args.checkpoints], "results": results})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
