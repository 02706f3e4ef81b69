"""What every benchmark script shares: the machine record, medians, tables, JSON output."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable, Sequence

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
FER2013_DIR = Path(os.environ.get("EMODETECT_DATA", REPO.parent / "shared" / "data")) / "fer2013"
FER2013_CSV = FER2013_DIR / "fer2013.csv.gz"
FERPLUS_CSV = FER2013_DIR / "fer2013new.csv"
TRAINING_MARKER = "emodetect train|/tmp/launch.py"  # a background training run (pgrep -f pattern)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def training_running() -> bool:
    """True while the default model's training run shares the CPU: timings are then contended."""
    try:
        out = subprocess.run(["pgrep", "-f", TRAINING_MARKER], capture_output=True, text=True)
    except FileNotFoundError:
        return False
    return bool(out.stdout.strip())


def _pkg(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def machine_info(extra_versions: dict[str, str] | None = None) -> dict[str, Any]:
    """CPU, cores, load, library versions and date: enough to know what a figure was measured on."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True).stdout.strip()
    except FileNotFoundError:
        commit = ""
    libs = {name: _pkg(name) for name in ("emodetect", "numpy", "onnxruntime", "onnx", "torch",
                                          "opencv-python-headless", "pillow")}
    return {
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "contended": training_running(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "git_commit": commit,
        "versions": {k: v for k, v in libs.items() if v},
        "fer_venv_versions": extra_versions or {},
    }


def timed_runs(fn: Callable[[], Any], runs: int, warmup: int = 1) -> list[float]:
    """Wall seconds of `runs` calls of fn after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(name: str, payload: dict[str, Any], out_dir: Path | None = None) -> Path:
    out = (out_dir or RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    path.write_text(json.dumps(payload, indent=1, default=str) + "\n")
    return path


def goal(passed: bool) -> str:
    return "met" if passed else "missed"


def our_face_models() -> dict[str, Path]:
    """Every bundled face model (ONNX, 48x48 grey input), the default fp32 first.

    Labels read "emodetect <name> <precision>", e.g. "emodetect default float32"; a model the lead
    bundles later (a faster one, say) is benchmarked without touching these scripts.
    """
    from emodetect.runtime import bundled_models

    found = {}
    for m in bundled_models():
        if m.modality != "vision":
            continue
        try:
            shape = json.loads(m.metadata.get("input", "{}")).get("shape")
        except ValueError:
            shape = None
        if shape is not None and list(shape)[1:] != [1, 48, 48]:
            continue
        found[f"emodetect {m.name} {m.metadata.get('precision', '')}".strip()] = m.path
    default = REPO / "emodetect" / "assets" / "emotion_default.onnx"
    return dict(sorted(found.items(), key=lambda kv: (kv[1].resolve() != default.resolve(), kv[0])))


def default_label(models: dict[str, Path]) -> str:
    """The label of the default fp32 model, the one the goals are about."""
    default = (REPO / "emodetect" / "assets" / "emotion_default.onnx").resolve()
    return next(k for k, v in models.items() if v.resolve() == default)
