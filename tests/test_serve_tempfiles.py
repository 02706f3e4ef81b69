"""Uploaded videos a hard stop left in the temporary folder are swept at start-up (issue 34, point 11)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emodetect.serve.tempfiles import VIDEO_TEMP_PREFIX, stale_folders, sweep_stale_uploads, upload_folder

HOUR = 3600.0


def _left_behind(root: Path, name: str, age_s: float = HOUR) -> Path:
    folder = root / f"{VIDEO_TEMP_PREFIX}{name}"
    (folder / "in").mkdir(parents=True)
    (folder / "in" / "upload").write_bytes(b"private video")
    old = time.time() - age_s
    os.utime(folder, (old, old))
    return folder


def test_stale_upload_folders_are_swept_and_fresh_ones_in_use_or_foreign_are_kept(tmp_path):
    stale = _left_behind(tmp_path, "dead")
    fresh = _left_behind(tmp_path, "fresh", age_s=5)
    other = tmp_path / "someone-else-video-x"
    other.mkdir()
    target = _left_behind(tmp_path, "target")
    link = tmp_path / f"{VIDEO_TEMP_PREFIX}link"
    link.symlink_to(target)
    old = time.time() - HOUR
    os.utime(link, (old, old), follow_symlinks=False)
    removed = sweep_stale_uploads(tmp_path)
    assert stale in removed and not stale.exists()
    assert fresh.exists() and other.exists() and link.is_symlink() and link not in removed


def test_a_folder_in_use_is_never_swept_however_old(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with upload_folder() as folder:
        old = time.time() - HOUR
        os.utime(folder, (old, old))
        assert folder.parent == tmp_path and folder.name.startswith(VIDEO_TEMP_PREFIX)
        assert stale_folders(tmp_path) == [] and sweep_stale_uploads(tmp_path) == []
    assert not folder.exists()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_the_folder_a_killed_process_left_is_swept(tmp_path):
    code = ("import sys, tempfile, time; tempfile.tempdir = sys.argv[1]\n"
            "from emodetect.serve.tempfiles import upload_folder\n"
            "with upload_folder() as f:\n"
            "    (f / 'upload').write_bytes(b'private video'); print(f, flush=True); time.sleep(600)\n")
    worker = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        folder = Path(worker.stdout.readline().strip())
        assert folder.is_dir() and stale_folders(tmp_path, older_than_s=0) == []  # locked while it runs
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(60)
    assert folder.is_dir()  # what issue 34 found: the upload outlives its process
    assert sweep_stale_uploads(tmp_path, older_than_s=0) == [folder] and not folder.exists()


def test_the_service_sweeps_at_start_up(tmp_path, monkeypatch):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from emodetect.serve import ServeConfig, create_app

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    stale = _left_behind(tmp_path, "dead")
    app = create_app(ServeConfig(workers=1), route_modules=("emodetect.serve.routes_health",))
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
    assert not stale.exists()
