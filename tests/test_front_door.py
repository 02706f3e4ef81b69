"""The front door: the command line on the base install (no torch), models opened lazily, the
bundled face detector, the version, and the service's offline API page."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "emodetect" / "assets" / "samples"


@pytest.fixture(scope="module")
def no_torch_env(tmp_path_factory) -> dict[str, str]:
    """An environment in which `import torch` and `import onnx` fail as on a base install."""
    shadow = tmp_path_factory.mktemp("no_torch")
    for name in ("torch", "onnx"):
        (shadow / f"{name}.py").write_text(
            f"raise ModuleNotFoundError(\"No module named '{name}'\", name={name!r})\n")
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(shadow), str(REPO)]))


def run_cli(env: dict[str, str], *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    code = ("import sys; from emodetect.cli import main; sys.argv = ['emodetect', *sys.argv[1:]]; "
            "main()")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120)


def test_shadow_really_hides_torch(no_torch_env):
    proc = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, text=True, env=no_torch_env)
    assert proc.returncode != 0 and "No module named 'torch'" in proc.stderr


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["models"], ["train", "--help"],
                                  ["detect", str(SAMPLES / "group.jpg"), "--json"],
                                  ["text", "I love this!"]])
def test_inference_verbs_run_without_torch(no_torch_env, args):
    proc = run_cli(no_torch_env, *args)
    assert proc.returncode == 0, proc.stderr
    if args[0] == "detect":
        document = json.loads(proc.stdout.splitlines()[0])
        assert len(document["faces"]) == 5 and document["detector"] == "yunet"


def test_version_matches_the_package(no_torch_env):
    from emodetect import __version__

    assert run_cli(no_torch_env, "--version").stdout.strip() == f"emodetect {__version__}"


@pytest.mark.parametrize("args", [["train", "--data", "x.csv"], ["export", "best.pt"]])
def test_train_and_export_without_torch_name_the_extra(no_torch_env, args, tmp_path):
    (tmp_path / "best.pt").write_bytes(b"x")
    proc = run_cli(no_torch_env, *args, cwd=tmp_path)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install 'emodetect[train]'" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_listing_models_opens_none_and_the_catalogue_matches_the_files(monkeypatch):
    import onnxruntime

    from emodetect.runtime import assets_dir, bundled_models, read_catalog_entries

    opened = []
    real = onnxruntime.InferenceSession.__init__
    monkeypatch.setattr(onnxruntime.InferenceSession, "__init__",
                        lambda self, *a, **k: (opened.append(a[0]), real(self, *a, **k))[1])
    listed = bundled_models()
    assert opened == []
    entries = read_catalog_entries(assets_dir())  # opens every file: the truth the catalogue copies
    assert len(entries) == len(listed)
    assert len(opened) == sum(e["file"].endswith(".onnx") for e in entries)  # an ensemble file opens no session
    assert [(m.name, m.modality, m.path.name, list(m.labels), m.metadata) for m in listed] == \
           [(e["name"], e["modality"], Path(e["file"]).name, e["labels"], e["metadata"]) for e in entries], \
           "emodetect/assets/models.json is stale: run emodetect.runtime.write_catalog()"
    assert not any("detectors" in str(m.path) for m in listed)
    assert all("extras" not in m.metadata for m in listed)


def test_the_bundled_face_detector_is_the_default_and_ships_with_its_licence():
    from emodetect.vision.detectors import create_detector
    from emodetect.vision.detectors.yunet import yunet_onnx

    assert create_detector().name == "yunet"
    assert yunet_onnx().is_file() and (yunet_onnx().parent / "LICENSE-yunet.txt").is_file()
    assert "MIT" in (yunet_onnx().parent / "LICENSE-yunet.txt").read_text()


def test_train_reruns_a_saved_recipe_with_flags_on_top(fer_csv, tmp_path):
    from typer.testing import CliRunner

    from emodetect.cli import app

    first = tmp_path / "first"
    common = ["--model", "tiny_fer", "--batch-size", "64", "--threads", "1", "--no-bf16", "--no-augment"]
    result = CliRunner().invoke(app, ["train", "--data", str(fer_csv), "--out", str(first), "--epochs", "1", *common])
    assert result.exit_code == 0, result.output
    again = tmp_path / "again"
    result = CliRunner().invoke(app, ["train", "--config", str(first / "config.json"), "--out", str(again)])
    assert result.exit_code == 0, result.output
    saved = json.loads((again / "config.json").read_text())
    assert saved["out"] == str(again) and saved["model"] == "tiny_fer" and saved["batch_size"] == 64
    assert saved["data"] == str(fer_csv) and saved["epochs"] == 1


def test_api_docs_page_needs_no_internet():
    from fastapi.testclient import TestClient

    from emodetect.serve import create_app

    with TestClient(create_app(workers=1)) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        urls = re.findall(r"https?://[^\"' )]+", page.text)
        assert urls == [], f"/docs refers to outside hosts: {urls}"
        assets = re.findall(r'(?:src|href)="(/[^"]+)"', page.text)
        assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
        for asset in assets:
            assert client.get(asset).status_code == 200, asset


def test_plotting_never_switches_the_callers_matplotlib_backend(tmp_path):
    """A notebook user's backend must survive our plots (once, library code called matplotlib.use)."""
    code = f"""
import matplotlib
matplotlib.use("svg")
import numpy as np
from emodetect.evaluate import plot_confusion
from emodetect.text.pipeline import TextResults, TextResult
plot_confusion(np.eye(3, dtype=int), ["a", "b", "c"], {str(tmp_path / 'c.png')!r})
TextResults([TextResult("x", "a", ["a"], {{"a": 0.9, "b": 0.1}}, "m")]).plot_shares({str(tmp_path / 's.png')!r})
print(matplotlib.get_backend())
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "svg"
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "s.png").stat().st_size > 1000


def test_models_and_predict_speak_json_lines(tmp_path):
    from typer.testing import CliRunner

    from emodetect.cli import app
    from emodetect.runtime import bundled_models

    listed = [json.loads(line) for line in CliRunner().invoke(app, ["models", "--json"]).stdout.splitlines()]
    assert [m["file"] for m in listed] == [m.path.name for m in bundled_models()]
    assert {"name", "modality", "labels", "test_figures"} <= set(listed[0])
    from PIL import Image

    Image.open(SAMPLES / "astronaut.jpg").convert("L").crop((176, 56, 276, 176)).save(tmp_path / "face.png")
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "face.png"), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["label"] == max(document["probabilities"], key=document["probabilities"].get)


def test_predict_on_a_whole_photo_reads_its_face_and_says_so():
    from typer.testing import CliRunner

    from emodetect.cli import app
    from emodetect.vision.pipeline import EmotionDetector

    photo = SAMPLES / "astronaut.jpg"
    result = CliRunner().invoke(app, ["predict", str(photo), "--json"])
    assert result.exit_code == 0, result.output
    (face,) = EmotionDetector().detect(photo).faces
    document = json.loads(result.stdout)
    assert document["label"] == face.label == "happy"  # read whole as a crop, it said angry
    assert abs(document["confidence"] - face.confidence) < 1e-3
    assert "not a face crop" in result.stderr and "emodetect detect" in result.stderr


def test_to_df_without_pandas_names_the_extra_in_one_line(monkeypatch):
    from emodetect.errors import MissingExtra
    from emodetect.text.pipeline import TextResult, TextResults
    from emodetect.vision.pipeline import EmotionDetector

    result = EmotionDetector().detect(SAMPLES / "astronaut.jpg")  # the README's first Python example
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` fails as on the base install
    for results in (result, TextResults([TextResult("x", "a", ["a"], {"a": 0.9, "b": 0.1}, "m")])):
        with pytest.raises(ModuleNotFoundError) as caught:  # still what `except ImportError` catches
            results.to_df()
        assert isinstance(caught.value, MissingExtra) and caught.value.name == "pandas"
        assert str(caught.value) == ("pandas is missing: to_df() needs it: install the pandas extra: "
                                     "pip install 'emodetect[pandas]'")
