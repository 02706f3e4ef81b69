"""Scaling out on this machine: `emodetect batch` on Ray with 1 and 2 workers beside the
single-process `detect` on the same folder, and training examples per second with 1 and 2
torchrun processes. Two cores cap what one machine can show; the per-core rate measured here,
times the cores of a cluster, is what docs give as the cost of a cluster run.

    python bench/scale.py [--images 600] [--runs 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import FER2013_CSV, REPO, machine_info, markdown_table, median, write_json


def make_folder(folder: Path, count: int) -> Path:
    """Sample photos and FER-2013 PrivateTest faces (upscaled to 96 px, as crops in photos are)."""
    from PIL import Image

    from emodetect.vision.data import load_faces

    folder.mkdir(parents=True, exist_ok=True)
    photos = sorted((REPO / "emodetect" / "assets" / "samples").glob("*.jpg"))
    faces = load_faces(FER2013_CSV, "PrivateTest").images
    for i in range(count):
        if i % 10 == 0:
            shutil.copy(photos[(i // 10) % len(photos)], folder / f"photo{i:05d}.jpg")
        else:
            Image.fromarray(faces[i % len(faces)]).resize((96, 96)).save(folder / f"face{i:05d}.png")
    return folder


def timed(command: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise RuntimeError(done.stderr[-2000:])
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="emodetect-bench-scale-"))
    folder = make_folder(work / "images", args.images)
    exe = [sys.executable, "-m", "emodetect"]
    rows, record = [], {}
    single = [timed([*exe, "detect", str(folder), "--json", "--threads", "1", "--detect-threads", "1"], work)
              for _ in range(args.runs)]
    base = median(single)
    rows.append(["detect, one process (baseline)", base, args.images / base, 1.0])
    record["detect"] = {"median_s": base, "times_s": single}
    for workers in (1, 2):
        times = []
        for run in range(args.runs):
            out = work / f"out{workers}_{run}"
            times.append(timed([*exe, "batch", str(folder), "--out", str(out), "--workers", str(workers)], work))
        seconds = median(times)
        rows.append([f"batch on Ray, {workers} worker(s)", seconds, args.images / seconds, base / seconds])
        record[f"batch_{workers}"] = {"median_s": seconds, "times_s": times}
    print(f"{args.images} images (1 in 10 a photo, the rest 96 px face crops), {machine_info()['cpu']}")
    print(markdown_table(["run", "median s (incl. start-up)", "images/s", "x baseline"], rows))

    # Training: one epoch of vgg_fer_small on 2,000 FER-2013 faces, 1 process with both cores
    # against 2 torchrun processes with one core each; the examples per second come from log.jsonl.
    train_rows = []
    flags = ["--data", str(FER2013_CSV), "--model", "vgg_fer_small", "--limit", "2000", "--epochs", "1",
             "--no-bf16", "--no-augment", "--batch-size", "64"]
    for processes in (1, 2):
        out = work / f"train{processes}"
        runner = ([*exe] if processes == 1 else
                  [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "emodetect"])
        timed([*runner, "train", *flags, "--out", str(out), "--threads", str(2 // processes)], work)
        log = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
        train_rows.append([f"train, {processes} process(es) x {2 // processes} thread(s)", log["images_per_s"]])
        record[f"train_{processes}"] = log
    print(markdown_table(["training run", "examples/s"], train_rows))
    path = write_json("scale.json", {"machine": machine_info(), "images": args.images, "runs": args.runs, **record})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
