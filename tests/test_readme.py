"""Every example in the README runs as written: each `emodetect ...` and `curl ...` line of its
bash blocks, in a shell, and each Python block, in a folder holding the files the examples name
(photo.jpg, holidays/, talk.mp4, call.wav, reviews.csv, ...), against a live `emodetect serve`
for the curl lines. Lines that need the training data sets or hours of CPU (train, export,
evaluate on FER-2013), a camera window or an install are listed in NOT_RUN with the reason;
the test fails on a README line it neither runs nor lists, so a new example is never untested.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import live_server, speech_like

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SAMPLES = ROOT / "emodetect" / "assets" / "samples"

# README lines (comments cut) not run here, as regular expressions matched at the start, and why.
NOT_RUN = {
    r"pip install": "installs: .ci/run does each install in a fresh venv",
    r"python -m pytest": "the test suite itself",
    r"emodetect train ": "needs a training data set and CPU hours (tests/test_train.py trains tiny runs)",
    r"emodetect (export|evaluate) runs/": "needs a trained run (tests/test_export_evaluate.py makes one)",
    r"emodetect evaluate \S+ (fer2013|\.\./shared)": "needs a data set that is not in the repository",
    r"emodetect serve$": "started once by this test, for the curl lines",
    r"emodetect webcam( --detect-every .*)?$": "needs a camera and a GUI window",
    r"emodetect batch .*--address": "needs a running Ray cluster (tests/test_distributed.py runs a local one)",
    r"torchrun ": "needs a training data set (tests/test_train.py runs torchrun on a tiny one)",
}


def readme_blocks(lang: str) -> list[tuple[int, str]]:
    text = README.read_text()
    return [(text[:m.start()].count("\n") + 1, m.group(1))
            for m in re.finditer(rf"```{lang}\n(.*?)```", text, re.S)]


def command_lines() -> list[str]:
    lines = []
    for _, body in readme_blocks("bash"):
        for line in body.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            for part in line.split(" && "):
                if part:
                    lines.append(part)
    return lines


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    import cv2
    import soundfile as sf

    root = tmp_path_factory.mktemp("readme")
    for name in ("photo.jpg", "group.jpg"):
        shutil.copy(SAMPLES / ("astronaut.jpg" if name == "photo.jpg" else name), root / name)
    for folder in ("holidays", "photos"):
        (root / folder).mkdir()
        for name in ("grace_hopper.jpg", "coffee.jpg"):
            shutil.copy(SAMPLES / name, root / folder / name)
    face = cv2.resize(cv2.imread(str(SAMPLES / "astronaut.jpg"), cv2.IMREAD_GRAYSCALE)[60:180, 170:280], (48, 48))
    cv2.imwrite(str(root / "face1.png"), face)
    cv2.imwrite(str(root / "face2.jpg"), face)
    frame = cv2.resize(cv2.imread(str(SAMPLES / "astronaut.jpg")), (640, 480))
    writer = cv2.VideoWriter(str(root / "talk.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (640, 480))
    for i in range(20):
        writer.write(np.roll(frame, 4 * i, axis=1))
    writer.release()
    for name, fmt in (("call.wav", "WAV"), ("a.wav", "WAV"), ("clip.wav", "WAV"), ("b.flac", "FLAC"),
                      ("c.ogg", "OGG")):
        sf.write(root / name, speech_like(8.0 if name == "call.wav" else 2.5), 16_000, format=fmt)
    (root / "reviews.csv").write_text("id,text\n1,Thank you so much!\n2,This is the worst service ever\n"
                                      "3,I can't believe they cancelled it.\n")
    (root / "comments.txt").write_text("I love this\nwhy would anyone do that\n")
    (root / "talk.srt").write_text("1\n00:00:00,000 --> 00:00:01,500\nWhat a lovely surprise!\n")
    return root


@pytest.fixture(scope="module")
def server():
    with live_server() as url:
        yield url


def _run(line: str, cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_every_readme_command_line_runs_or_says_why_not(workspace, server):
    ran, failures = [], []
    port = server.rsplit(":", 1)[1]
    for line in command_lines():
        if any(re.match(pattern, line) for pattern in NOT_RUN):
            continue
        if not line.startswith(("emodetect ", "curl ", "python -c ")):
            failures.append(f"neither run nor listed in NOT_RUN: {line}")
            continue
        # The README's paths are the repository's; the examples run in a folder of their own (no
        # emodetect/ folder in it, which Ray's workers would import instead of the package).
        command = (line.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace("localhost:8000", f"127.0.0.1:{port}")
                   .replace("emodetect/assets/samples/", f"{SAMPLES}/"))
        if command.startswith("curl "):
            command = command.replace("curl ", "curl --fail-with-body -sS ", 1)
        done = _run(command, workspace)
        ran.append(line)
        if done.returncode != 0:
            failures.append(f"{line}\n  exit {done.returncode}: {done.stderr.strip()[-400:]}")
    assert not failures, "\n".join(failures)
    # The README's headline commands are among those run.
    assert any(line.startswith("emodetect detect emodetect/assets/samples/group.jpg") for line in ran)
    assert sum(line.startswith("curl ") for line in ran) >= 3
    assert (workspace / "faces.csv").exists() and (workspace / "talk_out").is_dir()
    assert (workspace / "blurred.jpg").stat().st_size > 1000


def test_every_readme_python_block_runs(workspace, monkeypatch):
    monkeypatch.chdir(workspace)
    blocks = readme_blocks("python")
    assert len(blocks) >= 4
    for line, code in blocks:
        # `samples` in the voice example is the user's own array of audio frames.
        namespace = {"samples": speech_like(3.0, 44_100)}
        try:
            exec(compile(code, f"README.md:{line}", "exec"), namespace)
        except Exception as err:  # noqa: BLE001  (any failure of an example is the finding)
            pytest.fail(f"README.md:{line}: {type(err).__name__}: {err}")
