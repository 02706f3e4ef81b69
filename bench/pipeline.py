"""The whole face pipeline on a 640x480 frame with 1 and with 5 faces: detection, cropping and
classification timed apart, medians over many runs.

    python bench/pipeline.py [--runs 60] [--model PATH ...] [--detector yunet] [--detect-size 320 ...]

Frames come from bench/scenes.py (sample portraits pasted on noise; the 5 faces are 40 to 72 px
high, the single face 120 px). Wall time and CPU time are both reported: on a machine busy with
other work the CPU time of single-threaded stages estimates what an idle core would take.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
from scenes import make_frame  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCENES = {"1 face": [120], "5 faces": [40, 48, 56, 64, 72]}


def timed(fn, runs: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds of fn() over `runs` calls (after 3 warm-up calls)."""
    for _ in range(3):
        fn()
    wall, cpu = [], []
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - w0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    import cv2

    from emodetect.runtime import bundled_models
    from emodetect.vision.detectors import create_detector
    from emodetect.vision.pipeline import EmotionDetector
    from emodetect.vision.track import FrameAnalyser

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--model", action="append", help="ONNX file(s); default: every bundled face model")
    parser.add_argument("--detector", default=None)
    parser.add_argument("--detect-threads", type=int, default=1, help="face detector threads")
    parser.add_argument("--detect-size", type=int, action="append",
                        help="detector search size(s) in px (repeatable); default: the detector's own")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads for the classifier")
    parser.add_argument("--detect-every", type=int, nargs="+", default=[1, 3],
                        help="stream mode: look for faces in every N-th frame only (frames/s columns 'fps d/N')")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "pipeline.json"))
    args = parser.parse_args()

    cv2.setNumThreads(1)
    models = args.model or [str(m.path) for m in bundled_models() if m.modality == "vision"]
    frames = {name: make_frame(heights, seed=7) for name, heights in SCENES.items()}
    load_before = os.getloadavg()[0]
    rows = []
    print(f"load average {load_before:.1f} on {os.cpu_count()} CPUs; medians of {args.runs} runs; ms wall (ms CPU)")
    print(f"{'model':28} {'scene':8} {'found':>5} {'detect':>14} {'crop':>10} {'classify':>14} {'total':>14} {'frames/s':>9}"
          + "".join(f" {'fps d/' + str(every):>8}" for every in args.detect_every))
    for model, size in [(m, size) for m in models for size in (args.detect_size or [None])]:
        face_detector = create_detector(args.detector, threads=args.detect_threads,
                                        **({} if size is None else {"max_side": size}))
        detector = EmotionDetector(model, face_detector, threads=args.threads)
        for scene, (frame, boxes) in frames.items():
            detections = detector.face_detector.detect(frame)
            crops = detector.crops(frame, detections)
            t_detect = timed(lambda: detector.face_detector.detect(frame), args.runs)
            t_crop = timed(lambda: detector.crops(frame, detections), args.runs)
            t_classify = timed(lambda: detector.predict_crops(crops), args.runs)
            t_total = timed(lambda: detector.detect_rgb(frame), args.runs)
            # A live stream that looks for faces in every N-th frame only (FrameAnalyser.detect_every):
            # mean time per frame over whole detection periods.
            stream = {}
            for every in args.detect_every:
                analyser = FrameAnalyser(detector, smoothing=0.5, detect_every=every)
                period = timed(lambda: [analyser.analyse(frame, 0.0) for _ in range(every)], max(3, args.runs // every))
                stream[every] = (period[0] / every, period[1] / every)
            row = {"model": Path(model).name, "detector": detector.detector_name,
                   "detect_size": detector.face_detector.max_side, "scene": scene, "faces": len(boxes),
                   "found": len(detections),
                   "detect_ms": round(t_detect[0], 2), "detect_cpu_ms": round(t_detect[1], 2),
                   "crop_ms": round(t_crop[0], 3), "classify_ms": round(t_classify[0], 2),
                   "classify_cpu_ms": round(t_classify[1], 2),
                   "total_ms": round(t_total[0], 2), "total_cpu_ms": round(t_total[1], 2),
                   "frames_per_s": round(1000 / t_total[0], 1), "frames_per_s_cpu": round(1000 / t_total[1], 1),
                   "stream": {f"detect_every_{every}": {"ms_per_frame": round(w, 2), "frames_per_s": round(1000 / w, 1),
                                                        "frames_per_s_cpu": round(1000 / c, 1)}
                              for every, (w, c) in stream.items()}}
            rows.append(row)
            print(f"{row['model'] + ' @' + str(row['detect_size']):28} {scene:8} {len(detections):>2}/{len(boxes):<2} "
                  f"{t_detect[0]:6.1f} ({t_detect[1]:5.1f}) {t_crop[0]:9.2f} "
                  f"{t_classify[0]:6.1f} ({t_classify[1]:5.1f}) {t_total[0]:6.1f} ({t_total[1]:5.1f}) "
                  f"{row['frames_per_s']:9.1f}" + "".join(f" {1000 / w:8.1f}" for w, _ in stream.values()))
    report = {"runs": args.runs, "classifier_threads": args.threads, "detector_threads": args.detect_threads, "cpus": os.cpu_count(),
              "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2),
              "frame": "640x480", "results": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
