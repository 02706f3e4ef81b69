"""`emodetect detect` end to end: table, --json, --csv, --out; bad files reported and skipped."""

from __future__ import annotations

import csv
import io
import json
import shutil
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from emodetect.cli import app

SAMPLES = Path(__file__).resolve().parent.parent / "emodetect" / "assets" / "samples"


def _png_claiming_size(width: int, height: int) -> bytes:
    """A small PNG whose header claims a huge size, as a decompression bomb does."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)  # IHDR width and height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two good photos (one in a subfolder) and one file of every bad kind."""
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    shutil.copy(SAMPLES / "astronaut.jpg", root / "astronaut.jpg")
    shutil.copy(SAMPLES / "grace_hopper.jpg", root / "sub" / "hopper.jpg")
    (root / "notes.jpg").write_text("not a picture")
    (root / "empty.png").write_bytes(b"")
    (root / "cut.jpg").write_bytes((SAMPLES / "astronaut.jpg").read_bytes()[:3000])
    (root / "huge.png").write_bytes(_png_claiming_size(9000, 6000))  # 54 Mpx: over the 50 Mpx limit
    (root / "readme.txt").write_text("ignored: not an image suffix")
    return root


def test_bad_files_are_reported_and_skipped_and_the_rest_kept(folder, tmp_path):
    result = CliRunner().invoke(app, ["detect", str(folder), "--csv", str(tmp_path / "faces.csv"),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    for name, reason in [("notes.jpg", "not an image"), ("empty.png", "empty file"),
                         ("cut.jpg", "truncated"), ("huge.png", "too many pixels")]:
        assert f"{folder / name}: skipped: " in result.stderr and reason in result.stderr
    assert "readme.txt" not in result.stderr
    assert "4 of 6 file(s) skipped" in result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith(str(folder)[-20:]) or "jpg" in line]
    assert sum("astronaut.jpg" in line for line in lines) == 1 and sum("hopper.jpg" in line for line in lines) == 1
    with open(tmp_path / "faces.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(Path(r["source"]).name for r in rows) == ["astronaut.jpg", "hopper.jpg"]
    assert {"face_id", "x", "y", "width", "height", "label", "angry", "neutral"} <= set(rows[0])
    saved = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.jpg"))
    assert saved == ["astronaut_emotions.jpg", "sub/hopper_emotions.jpg"]
    assert Image.open(tmp_path / "out" / "astronaut_emotions.jpg").size == (512, 512)


def test_json_output_lists_results_and_errors(folder):
    result = CliRunner().invoke(app, ["detect", str(folder / "astronaut.jpg"), str(folder / "notes.jpg"), "--json"])
    assert result.exit_code == 1
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(d["source"]).name for d in documents] == ["astronaut.jpg", "notes.jpg"]
    assert documents[0]["image"] == {"width": 512, "height": 512} and len(documents[0]["faces"]) == 1
    assert "not an image" in documents[1]["error"]


def test_all_good_files_exit_zero_and_nothing_is_written_unasked(tmp_path):
    shutil.copy(SAMPLES / "astronaut.jpg", tmp_path / "a.jpg")
    before = sorted(tmp_path.rglob("*"))
    result = CliRunner().invoke(app, ["detect", str(tmp_path / "a.jpg")])
    assert result.exit_code == 0, result.output
    assert "a.jpg" in result.stdout
    assert sorted(tmp_path.rglob("*")) == before  # no image stored unless asked


def test_missing_path_and_unknown_detector_fail_clearly(tmp_path):
    result = CliRunner().invoke(app, ["detect", str(tmp_path / "gone")])
    assert result.exit_code != 0 and "no such file or folder" in result.stderr
    result = CliRunner().invoke(app, ["detect", str(SAMPLES / "astronaut.jpg"), "--detector", "nope"])
    assert result.exit_code == 2 and "unknown face detector 'nope'" in result.stderr


def test_detector_threads_change_speed_not_results():
    """`--detect-threads` (default 2 on the command line) must find the very same boxes as one thread."""
    outputs = []
    for threads in ("1", "2"):
        result = CliRunner().invoke(app, ["detect", str(SAMPLES / "group.jpg"), "--json", "--detect-threads", threads])
        assert result.exit_code == 0, result.output
        outputs.append([face["box"] for face in json.loads(result.stdout.splitlines()[0])["faces"]])
    assert len(outputs[0]) == 5 and outputs[0] == outputs[1]


def test_odd_files_in_a_batch_are_reported_and_every_good_result_is_kept(tmp_path):
    """Malformed PPM/PGM (a bare ValueError inside PIL), a FIFO, a dangling link and a link loop:
    each is reported on stderr and in the JSON lines, and both photos' results come out."""
    import os

    root = tmp_path / "batch"
    (root / "deep").mkdir(parents=True)
    shutil.copy(SAMPLES / "astronaut.jpg", root / "a.jpg")
    shutil.copy(SAMPLES / "grace_hopper.jpg", root / "deep" / "z.jpg")
    (root / "bad.pgm").write_bytes(b"P5\n3 3\n70000\n" + bytes(9))
    (root / "bad.ppm").write_bytes(b"P6\n3 3\n0\n" + bytes(27))
    os.mkfifo(root / "pipe.jpg")
    (root / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (root / "deep" / "loop").symlink_to(root, target_is_directory=True)
    result = CliRunner().invoke(app, ["detect", str(root), "--json"])
    assert result.exit_code == 1
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    good = {Path(d["source"]).name for d in documents if "faces" in d}
    bad = {Path(d["source"]).name: d["error"] for d in documents if "error" in d}
    assert good == {"a.jpg", "z.jpg"}
    assert "unreadable image" in bad["bad.pgm"] and "maxval" in bad["bad.pgm"]
    assert "bad.ppm" in bad
    assert bad["pipe.jpg"] == "not a regular file" and bad["gone.png"] == "dangling symbolic link"
    assert bad["loop"] == "symbolic link loop, not followed"
    for name in bad:
        assert f"{name}: skipped" in result.stderr


def test_json_lines_are_written_as_each_file_is_done(monkeypatch, tmp_path):
    """A failure after the first file (here: an unexpected error) must not lose the first result."""
    from emodetect.vision.pipeline import EmotionDetector

    shutil.copy(SAMPLES / "astronaut.jpg", tmp_path / "a.jpg")
    shutil.copy(SAMPLES / "astronaut.jpg", tmp_path / "b.jpg")
    real = EmotionDetector.detect
    calls = []

    def detect_then_break(self, image, **options):
        calls.append(image)
        if len(calls) > 1:
            raise KeyboardInterrupt  # as a user's Ctrl-C half way through
        return real(self, image, **options)

    monkeypatch.setattr(EmotionDetector, "detect", detect_then_break)
    csv_path = tmp_path / "faces.csv"
    result = CliRunner().invoke(app, ["detect", str(tmp_path), "--json", "--csv", str(csv_path)])
    assert result.exit_code != 0
    first = json.loads(result.stdout.splitlines()[0])
    assert Path(first["source"]).name == "a.jpg" and len(first["faces"]) == 1
    assert len(list(csv.DictReader(open(csv_path)))) == 1
