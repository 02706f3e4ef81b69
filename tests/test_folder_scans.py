"""Folder scans say what they cannot read: a dangling link, a link loop or a FIFO named like an
image is an error row in `emodetect batch` and a reported skip in a training folder, never
dropped without a word (issue 34, point 12)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import synthetic_faces

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and symbolic links")


def hostile_folder(folder: Path) -> Path:
    """Two good face crops beside a dangling link, a FIFO and a link back to the folder itself."""
    folder.mkdir(parents=True)
    faces, _ = synthetic_faces(2)
    for i, face in enumerate(faces):
        Image.fromarray(face).resize((96, 96)).save(folder / f"face{i}.png")
    (folder / "gone.jpg").symlink_to(folder / "deleted.jpg")
    os.mkfifo(folder / "pipe.png")
    (folder / "loop").symlink_to(folder)
    return folder


def test_a_training_folder_reports_the_files_it_cannot_read_and_keeps_the_rest(tmp_path, caplog):
    from emodetect.vision.data import read_image_folder

    hostile_folder(tmp_path / "happy")
    with caplog.at_level(logging.WARNING, logger="emodetect.vision.data"):
        data = read_image_folder(tmp_path)  # returns: the FIFO is never opened
    assert len(data) == 2 and np.all(data.labels == data.labels[0])
    reasons = {Path(line.partition(": ")[0]).name: line.partition(": ")[2] for line in data.skipped}
    assert reasons == {"gone.jpg": "dangling symbolic link", "pipe.png": "not a regular file",
                       "loop": "symbolic link loop, not followed"}
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "gone.jpg" in warned and "pipe.png" in warned and "loop" in warned


def test_batch_turns_each_unreadable_entry_into_an_error_row(tmp_path):
    pytest.importorskip("pyarrow")
    from emodetect.distributed import list_inputs
    from emodetect.vision.workers import FaceWorker

    folder = hostile_folder(tmp_path / "photos")
    kind, items = list_inputs(folder)
    assert kind == "images"
    errors = {Path(item["source"]).name: item["error"] for item in items}
    assert errors == {"face0.png": "", "face1.png": "", "gone.jpg": "dangling symbolic link",
                      "pipe.png": "not a regular file", "loop": "symbolic link loop, not followed"}
    assert all(Path(item["source"]).is_absolute() for item in items)  # cluster workers need them
    # What a Ray worker does with a block of them: the unreadable ones become rows with their reason.
    batch = {name: np.array([item[name] for item in items]) for name in ("source", "path", "error")}
    table = FaceWorker(None, None).score(batch)
    rows = {Path(row["source"]).name: row["error"] for row in table.to_pylist()}
    assert rows["gone.jpg"] == "dangling symbolic link" and rows["pipe.png"] == "not a regular file"
    assert rows["face0.png"] is None and rows["face1.png"] is None


def test_a_folder_of_recordings_reports_a_dangling_recording_link(tmp_path):
    from emodetect.distributed import list_inputs

    folder = tmp_path / "calls"
    folder.mkdir()
    (folder / "r1.wav").write_bytes(b"RIFF")
    (folder / "r2.wav").symlink_to(folder / "deleted.wav")
    kind, items = list_inputs(folder)
    assert kind == "audio"
    assert [(Path(i["source"]).name, i["error"]) for i in items] == [("r1.wav", ""), ("r2.wav", "dangling symbolic link")]
