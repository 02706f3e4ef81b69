"""How FER-2013 frames a face, measured with our own face detector: the crop framing we use.

The emotion model was trained on FER-2013's 48x48 crops, so at run time a face should be cut out
the way FER-2013 cut it. We run the detector on FER-2013 test faces themselves (enlarged 4x and
set in a mid-grey margin so the detector sees the whole head) and measure, for every face found,
the FER frame's side relative to the detector box and where the frame's centre sits relative to
the box centre. Their medians are CropFraming(scale, shift).

    python bench/crop_framing.py [--data ../shared/data/fer2013/fer2013.csv.gz] [--n 1000]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    import cv2

    from emodetect.vision.data import read_fer_csv
    from emodetect.vision.detectors import create_detector

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fer2013" / "fer2013.csv.gz"))
    parser.add_argument("--split", default="PrivateTest")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--detector", default=None)
    args = parser.parse_args()

    faces, _ = read_fer_csv(args.data, args.split)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(faces), size=min(args.n, len(faces)), replace=False)
    detector = create_detector(args.detector)
    detector.max_side = 0  # the canvas is small already; see every pixel
    zoom, margin = 4, 96
    side = 48 * zoom
    scales, shifts_x, shifts_y, found = [], [], [], 0
    started = time.perf_counter()
    for i in pick:
        big = cv2.resize(faces.images[i], (side, side), interpolation=cv2.INTER_CUBIC)
        canvas = np.full((side + 2 * margin, side + 2 * margin), 128, np.uint8)
        canvas[margin:margin + side, margin:margin + side] = big
        detections = detector.detect(np.repeat(canvas[..., None], 3, axis=2))
        # The face is the detection nearest the canvas centre (there is only one face).
        centre = margin + side / 2
        detections = [d for d in detections
                      if abs(d.x + d.width / 2 - centre) < side / 4 and abs(d.y + d.height / 2 - centre) < side / 4]
        if not detections:
            continue
        d = max(detections, key=lambda d: d.score)
        found += 1
        scales.append(side / max(d.width, d.height))
        shifts_x.append((centre - (d.x + d.width / 2)) / d.width)
        shifts_y.append((centre - (d.y + d.height / 2)) / d.height)
    scales, shifts_y = np.array(scales), np.array(shifts_y)
    report = {
        "detector": detector.name, "split": args.split, "faces": int(len(pick)), "found": found,
        "found_share": round(found / len(pick), 4),
        "scale_median": round(float(np.median(scales)), 3),
        "scale_iqr": [round(float(q), 3) for q in np.percentile(scales, [25, 75])],
        "shift_y_median": round(float(np.median(shifts_y)), 3),
        "shift_y_iqr": [round(float(q), 3) for q in np.percentile(shifts_y, [25, 75])],
        "shift_x_median": round(float(np.median(shifts_x)), 3),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(f"{detector.name}: found {found}/{len(pick)} FER-2013 {args.split} faces")
    print(f"FER frame side / detector box side: median {report['scale_median']} (IQR {report['scale_iqr']})")
    print(f"FER frame centre below box centre, in box heights: median {report['shift_y_median']} "
          f"(IQR {report['shift_y_iqr']}); sideways {report['shift_x_median']}")
    out = ROOT / "bench" / "results" / f"crop_framing_{detector.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
