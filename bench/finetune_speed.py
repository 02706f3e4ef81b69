"""Fine-tuning speed of the face backbone on this CPU: images per second of a full training step
(forward, backward, AdamW) for each input size, float32 against bf16 autocast, all weights trained
against the stem and first blocks frozen (as faceres_fer trains).

    python bench/finetune_speed.py --backbone ../shared/models/faceres/faceres-deep.json [--runs 5]

Prints a table and writes bench/results/finetune_speed.json. Medians of --runs steps after one
warm-up step, batch 64, channels_last, torch threads = all cores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine_info, markdown_table, median, timed_runs, write_json  # noqa: E402

from emodetect.registry import create_model  # noqa: E402
from emodetect.vision.tfjs import read_tfjs_graph  # noqa: E402


def step_time(model: torch.nn.Module, batch: int, bf16: bool, runs: int) -> float:
    model = model.to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    x = (torch.rand(batch, 1, 48, 48) * 255).contiguous(memory_format=torch.channels_last)
    target = torch.randint(0, 7, (batch,))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(model(x).float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return median(timed_runs(step, runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="../shared/models/faceres/faceres-deep.json")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--sizes", default="faceres_fer,faceres_fer_160")
    args = parser.parse_args()
    spec = read_tfjs_graph(args.backbone, outputs=["global_pooling/Mean"]).spec
    rows, results = [], []
    for name in args.sizes.split(","):
        for frozen in (True, False):
            for bf16 in (False, True):
                model = create_model(name, backbone=spec)
                if not frozen:
                    for p in model.parameters():
                        p.requires_grad_(True)
                seconds = step_time(model, args.batch, bf16, args.runs)
                entry = {"model": name, "input": model.input_size, "frozen_start": frozen,
                         "precision": "bf16" if bf16 else "float32", "images_per_s": args.batch / seconds}
                results.append(entry)
                rows.append([name, model.input_size, "stem + 3 blocks" if frozen else "none",
                             entry["precision"], f"{entry['images_per_s']:.1f}"])
    table = markdown_table(["model", "input px", "frozen", "precision", "images/s (median)"], rows)
    print(table)
    write_json("finetune_speed.json", {"machine": machine_info(),
                                       "command": "python bench/finetune_speed.py", "batch": args.batch,
                                       "runs": args.runs, "results": results})


if __name__ == "__main__":
    main()
