"""A separate virtual environment for the `fer` package, so TensorFlow never enters ours.

`fer`'s declared dependencies pull facenet-pytorch and with it a multi-GB CUDA build of torch, so
fer is installed from its wheel with `--no-deps`, plus only what the parts we run need:
tensorflow-cpu (fer imports TensorFlow at import time, runs its Keras model and, by default, its
bundled TFLite model through `tf.lite`), ai-edge-litert (the TFLite runtime that replaces
`tf.lite.Interpreter` where TensorFlow no longer ships it), OpenCV (its Haar face detector) and the
small modules fer imports (requests, Pillow, pkg_resources from setuptools).

Run `python bench/fer_env.py` to make it (idempotent); the benchmarks call `ensure_fer_env()`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

FER_VERSION = "25.10.3"
# Only what the fer code paths we run import; never facenet-pytorch, never torch.
FER_RUNTIME_DEPS = [
    "tensorflow-cpu>=2.16,<2.22",
    "ai-edge-litert>=1.2,<3",
    "opencv-python-headless>=4.8,<5",
    "numpy>=1.26,<3",
    "pillow>=10,<13",
    "requests>=2.28,<3",
    "setuptools>=68,<81",  # fer imports pkg_resources, which setuptools 81 removes
]
FORBIDDEN = ("torch", "facenet-pytorch", "facenet_pytorch", "nvidia-")
WORKER = Path(__file__).with_name("fer_worker.py")


def cache_dir() -> Path:
    """Outside the repository, so neither git nor the device carry copy it."""
    root = os.environ.get("EMODETECT_BENCH_CACHE") or Path.home() / ".cache" / "emodetect-bench"
    return Path(root)


def venv_dir() -> Path:
    return cache_dir() / "fer-venv"


def venv_python() -> Path:
    return venv_dir() / "bin" / "python"


def _pip(*args: str) -> None:
    cmd = [str(venv_python()), "-m", "pip", "install", "--disable-pip-version-check", "-q", *args]
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True)


def _installed(python: Path) -> dict[str, str]:
    out = subprocess.run([str(python), "-m", "pip", "list", "--format=json"], check=True,
                         capture_output=True, text=True).stdout
    return {p["name"].lower(): p["version"] for p in json.loads(out)}


def ensure_fer_env(force: bool = False) -> Path:
    """Make (once) the fer venv; return its python. Raises if a forbidden package slipped in."""
    marker = venv_dir() / ".emodetect-ready"
    if marker.exists() and not force and venv_python().exists():
        return venv_python()
    venv_dir().parent.mkdir(parents=True, exist_ok=True)
    # The base interpreter, not ours: the new venv must not see our site-packages.
    base = Path(getattr(sys, "_base_executable", sys.executable))
    subprocess.run([str(base), "-m", "venv", "--clear", str(venv_dir())], check=True)
    _pip("--no-deps", f"fer=={FER_VERSION}")
    _pip(*FER_RUNTIME_DEPS)
    installed = _installed(venv_python())
    bad = sorted(name for name in installed if name.startswith(FORBIDDEN))
    if bad:
        raise RuntimeError(f"{venv_dir()}: forbidden packages were installed: {bad}")
    marker.write_text(json.dumps(installed, indent=1))
    return venv_python()


def fer_versions() -> dict[str, str]:
    """Versions of the packages in the fer venv that matter to the figures."""
    installed = json.loads((venv_dir() / ".emodetect-ready").read_text())
    installed = {k.replace("_", "-"): v for k, v in installed.items()}
    keep = ("fer", "tensorflow-cpu", "keras", "ai-edge-litert", "opencv-python-headless", "numpy")
    return {k: installed[k] for k in keep if k in installed}


def run_fer(task: str, inputs: np.ndarray | None = None, **options: Any) -> dict[str, Any]:
    """Run one task of bench/fer_worker.py in the fer venv; inputs and outputs travel as files.

    The worker writes a JSON result and, where a task yields arrays, an .npz next to it; the
    arrays come back under the result's "arrays" key.
    """
    python = ensure_fer_env()
    with tempfile.TemporaryDirectory(prefix="fer-bench-") as tmp:
        tmp_path = Path(tmp)
        in_path = tmp_path / "inputs.npy"
        if inputs is not None:
            np.save(in_path, inputs)
        out_path = tmp_path / "out.json"
        cmd = [str(python), str(WORKER), task, "--inputs", str(in_path), "--out", str(out_path),
               "--options", json.dumps(options)]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"fer worker task {task!r} failed ({proc.returncode}):\n"
                               f"{proc.stderr[-4000:]}")
        result = json.loads(out_path.read_text())
        npz = out_path.with_suffix(".npz")
        if npz.exists():
            with np.load(npz) as arrays:
                result["arrays"] = {k: arrays[k] for k in arrays.files}
        return result


if __name__ == "__main__":
    python = ensure_fer_env(force="--force" in sys.argv)
    print(python)
    print(json.dumps(fer_versions(), indent=1))
