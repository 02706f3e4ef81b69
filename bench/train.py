"""Training speed on this CPU: fp32 vs bf16 autocast (+ channels_last), and time to 70% validation.

    python bench/train.py                       # vgg_fer, batch 128, medians of 7 runs of 3 steps
    python bench/train.py --model vgg_fer_small --runs 5

Step speed: the default recipe's training step as `emodetect.train.train` runs it (batched
augmentation, forward under autocast or not, label-smoothed loss, backward, SGD Nesterov step,
weight-averaging update) on random 48x48 faces, for a few steps after warm-up; the data and
evaluation are left out. Time to 70%: read from the real default run's per-epoch log
(docs/training/default/log.jsonl, else runs/default/log.jsonl): wall time summed over epochs
until PublicTest accuracy first reaches 70%.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, machine_info, markdown_table, median, timed_runs, write_json  # noqa: E402

LOG_CANDIDATES = (REPO / "docs" / "training" / "default" / "log.jsonl", REPO / "runs" / "default" / "log.jsonl")
TARGET_ACC = 0.70


def step_speed(model_name: str, batch: int, bf16: bool, steps: int, runs: int, warmup: int,
               threads: int) -> dict[str, Any]:
    """Seconds per training step, one list entry per timed run of `steps` steps."""
    import torch

    from emodetect.registry import create_model
    from emodetect.train import TrainConfig, _ema_update, _loss
    from emodetect.vision.augment import AugmentConfig, augment_batch

    if threads:
        torch.set_num_threads(threads)
    cfg = TrainConfig(model=model_name, batch_size=batch, bf16=bf16)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    memory_format = torch.channels_last if bf16 else torch.contiguous_format
    model = create_model(model_name, num_classes=7).to(memory_format=memory_format).train()
    ema = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True,
                                weight_decay=cfg.weight_decay)
    x_all = torch.randint(0, 256, (batch, 1, 48, 48), generator=gen).float()
    target = torch.nn.functional.one_hot(torch.randint(0, 7, (batch,), generator=gen), 7).float()
    aug = AugmentConfig()

    def one_step() -> None:
        x = augment_batch(x_all, aug, gen).contiguous(memory_format=memory_format)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = _loss(logits, target, False, cfg.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        _ema_update(ema, model, cfg.ema_decay)

    times = timed_runs(lambda: [one_step() for _ in range(steps)], runs, warmup)
    per_step = [t / steps for t in times]
    sec = median(per_step)
    return {"seconds_per_step": per_step, "median_s_per_step": sec, "images_per_s": batch / sec,
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "bf16_supported": torch.backends.mkldnn.is_available()}


def read_log(path: Path) -> list[dict[str, Any]]:
    """Epoch entries of the latest run in a log.jsonl: a restart from epoch 1 starts a new run,
    and an epoch logged twice (a resume after the log was written) keeps its last entry."""
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    starts = [i for i, e in enumerate(entries) if e.get("epoch") == 1]
    entries = entries[starts[-1]:] if starts else entries
    by_epoch = {e["epoch"]: e for e in entries}
    return [by_epoch[k] for k in sorted(by_epoch)]


def time_to_accuracy(target: float = TARGET_ACC, candidates: tuple[Path, ...] = LOG_CANDIDATES) -> dict[str, Any]:
    """Training wall time until validation accuracy first reaches `target`, from the first log found."""
    path = next((p for p in candidates if p.exists()), None)
    if path is None:
        return {"log": None, "reached": False, "note": "no log found at " + ", ".join(map(str, candidates))}
    epochs = read_log(path)
    elapsed, reached = 0.0, None
    for e in epochs:
        elapsed += e["seconds"]
        if reached is None and e["val_acc"] >= target:
            reached = {"epoch": e["epoch"], "seconds": elapsed, "val_acc": e["val_acc"]}
    best = max(epochs, key=lambda e: e["val_acc"])
    typical = median([e["seconds"] for e in epochs])
    # An epoch far slower than the rest was stalled by something outside training (a paused
    # process, a busy machine); say so rather than hide it in the total.
    stalled = [e["epoch"] for e in epochs if e["seconds"] > 3 * typical]
    config_path = path.parent / "config.json"
    planned = json.loads(config_path.read_text()).get("epochs") if config_path.exists() else None
    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    return {"log": str(shown), "target": target, "reached": reached is not None,
            **({"first_reached": reached | {"seconds_at_median_epoch": reached["epoch"] * typical}}
               if reached else {}),
            "median_epoch_seconds": typical, "stalled_epochs": stalled,
            "epochs_logged": len(epochs), "epochs_planned": planned, "total_seconds_logged": elapsed,
            "best_val_acc": best["val_acc"], "best_epoch": best["epoch"],
            "median_images_per_s_logged": median([e["images_per_s"] for e in epochs])}


def tables(payload: dict[str, Any]) -> str:
    contended = " (CONTENDED: the CPU was shared with a training run)" if payload["machine"]["contended"] else ""
    rows = [[name, f"{r['median_s_per_step']:.3f}", f"{r['images_per_s']:.0f}", r["threads"]]
            for name, r in payload["steps"].items()]
    out = [f"Training step, {payload['model']}, batch {payload['batch']}, median of {payload['runs']} runs "
           f"of {payload['steps_per_run']} steps{contended}", "",
           markdown_table(["precision", "s/step", "images/s", "threads"], rows)]
    if "bf16_speedup" in payload:
        out += ["", f"- bf16 + channels_last / fp32: {payload['bf16_speedup']:.2f}x images/s"]
    t = payload["time_to_70"]
    if t.get("reached"):
        r = t["first_reached"]
        out += [f"- default recipe first reached {t['target']:.0%} on PublicTest at epoch {r['epoch']} "
                f"after {r['seconds'] / 60:.1f} min of training ({t['log']})"]
        if t["stalled_epochs"]:
            out += [f"  (stalled epochs {t['stalled_epochs']}; at the median epoch time "
                    f"{t['median_epoch_seconds']:.0f} s it is {r['seconds_at_median_epoch'] / 60:.1f} min)"]
    elif t.get("log"):
        out += [f"- default recipe has not reached {t['target']:.0%} on PublicTest in the {t['epochs_logged']} "
                f"epochs logged (best {t['best_val_acc']:.4f} at epoch {t['best_epoch']}; {t['log']})"]
    else:
        out += [f"- time to 70%: {t['note']}"]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="vgg_fer")
    parser.add_argument("--batch", type=int, default=128, help="the default recipe's batch size")
    parser.add_argument("--steps", type=int, default=3, help="training steps per timed run")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    parser.add_argument("--threads", type=int, default=0, help="0 = torch's default (all cores)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default bench/results/train.json)")
    args = parser.parse_args(argv)
    before = machine_info()
    steps = {name: step_speed(args.model, args.batch, bf16, args.steps, args.runs, args.warmup, args.threads)
             for name, bf16 in (("fp32", False), ("bf16 autocast + channels_last", True))}
    machine = machine_info()
    machine["contended"] = machine["contended"] or before["contended"]
    payload: dict[str, Any] = {"benchmark": "train", "model": args.model, "batch": args.batch,
                               "steps_per_run": args.steps, "runs": args.runs, "warmup": args.warmup,
                               "steps": steps}
    names = list(steps)
    payload["bf16_speedup"] = steps[names[1]]["images_per_s"] / steps[names[0]]["images_per_s"]
    payload["time_to_70"] = time_to_accuracy()
    payload["machine"] = machine
    print(tables(payload))
    path = write_json(args.out.name if args.out else "train.json", payload, args.out.parent if args.out else None)
    print(f"\nwrote {path}")
    return payload


if __name__ == "__main__":
    main()
