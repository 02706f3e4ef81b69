"""Start-up to first result: `emodetect detect` on one photo, beside the Python API and `fer`.

Each row runs a fresh process (interpreter start, imports, model load, one photo) several times and
reports the median wall time and the peak memory of the process. `fer` runs in its own venv
(bench/fer_env.py); skip it with --no-fer.

    python bench/startup.py [--runs 7] [--image emodetect/assets/samples/astronaut.jpg] [--no-fer]
                            [--baseline-src /tmp/old]   # an earlier checkout, timed beside
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import REPO, machine_info, markdown_table, median, write_json

API = ("from emodetect import EmotionDetector; "
       "r = EmotionDetector().detect({image!r}); print(len(r.faces))")
# fer's own default (Haar detector, TFLite classifier), made as bench/fer_worker.py makes it: fer
# 25.10.3 needs its tf.lite patched where TensorFlow dropped tf.lite.
FER = ("import sys; sys.path.insert(0, {bench!r}); import cv2; from fer_worker import make_fer; "
       "print(len(make_fer('tflite')[0].detect_emotions(cv2.imread({image!r}))))")


def run_once(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak resident MB of one process (run where PYTHONPATH, if set, points)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            cwd=env.get("PYTHONPATH") or REPO)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()[-2000:]}")
    proc.stderr.close()
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--image", default=str(REPO / "emodetect" / "assets" / "samples" / "astronaut.jpg"))
    parser.add_argument("--no-fer", action="store_true", help="leave out the fer row")
    parser.add_argument("--baseline-src", default=None,
                        help="a checkout of an earlier emodetect (git worktree add /tmp/old COMMIT): its "
                             "`detect` is timed too, with this interpreter (which must have its dependencies)")
    args = parser.parse_args()

    cli = shutil.which("emodetect", path=str(Path(sys.executable).parent)) or "emodetect"
    rows = {
        "emodetect detect (command line)": [cli, "detect", args.image],
        "emodetect --help": [cli, "--help"],
        "emodetect models": [cli, "models"],
        "EmotionDetector().detect (Python API)": [sys.executable, "-c", API.format(image=args.image)],
    }
    if args.baseline_src:
        rows["earlier emodetect detect (--baseline-src)"] = [sys.executable, "-m", "emodetect", "detect", args.image]
    versions = {}
    if not args.no_fer:
        from fer_env import ensure_fer_env, fer_versions

        rows["fer: FER().detect_emotions (Python API)"] = [str(ensure_fer_env()), "-c", FER.format(image=args.image, bench=str(REPO / "bench"))]
        versions = fer_versions()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    results = {}
    envs = {name: dict(env, PYTHONPATH=args.baseline_src) if name.startswith("earlier") else env for name in rows}
    for name, cmd in rows.items():
        run_once(cmd, envs[name])  # warm the page cache: every row starts from the same state
    # Interleaved rounds: a change of load on the machine hits every row alike.
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in rows}
    for _ in range(args.runs):
        for name, cmd in rows.items():
            samples[name].append(run_once(cmd, envs[name]))
    base = median([s for s, _ in samples["emodetect detect (command line)"]])
    for name, runs in samples.items():
        seconds = median([s for s, _ in runs])
        results[name] = {"median_s": round(seconds, 3), "min_s": round(min(s for s, _ in runs), 3),
                         "peak_rss_mb": round(median([m for _, m in runs]), 1),
                         "vs_emodetect_detect": round(seconds / base, 2), "runs": len(runs)}
    table = markdown_table(["what (fresh process, one photo)", "median s", "min s", "peak MB", "x emodetect detect"],
                           [[k, v["median_s"], v["min_s"], v["peak_rss_mb"], v["vs_emodetect_detect"]]
                            for k, v in results.items()])
    print(table)
    path = write_json("startup.json", {"machine": machine_info(versions), "image": args.image,
                                       "results": results, "table": table})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
