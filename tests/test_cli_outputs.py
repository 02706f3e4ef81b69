"""Output paths are checked before any work (issue 34, point 10): a typo in --csv or --save-dir
must not cost a whole run and end in a traceback; with --json, stdout holds JSON lines only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emodetect.cli import app
from emodetect.console import check_output_dir, check_output_file
from emodetect.errors import InputError, OutputError

SAMPLE = Path(__file__).resolve().parent.parent / "emodetect" / "assets" / "samples" / "astronaut.jpg"


@pytest.fixture
def no_work(monkeypatch):
    """Any model loaded means the work began before the paths were checked."""
    import emodetect.text.pipeline
    import emodetect.vision.cli

    def started(*args, **kwargs):
        raise AssertionError("the work started before the output paths were checked")

    monkeypatch.setattr(emodetect.vision.cli, "_emotion_detector", started)
    monkeypatch.setattr(emodetect.text.pipeline.TextEmotion, "predict", started)


def test_detect_refuses_a_csv_in_a_missing_folder_before_the_work(tmp_path, no_work):
    result = CliRunner().invoke(app, ["detect", str(SAMPLE), "--csv", str(tmp_path / "missing" / "x.csv")])
    assert result.exit_code == 2, result.output
    assert "no such folder" in result.stderr and "Traceback" not in result.output


def test_detect_refuses_a_save_dir_that_is_a_file_before_the_work(tmp_path, no_work):
    existing = tmp_path / "file.txt"
    existing.write_text("hi")
    result = CliRunner().invoke(app, ["detect", str(SAMPLE), "--save-dir", str(existing)])
    assert result.exit_code == 2, result.output
    assert "is not a folder" in result.stderr
    under = CliRunner().invoke(app, ["detect", str(SAMPLE), "--save-dir", str(existing / "sub")])
    assert under.exit_code == 2 and "cannot make this folder" in under.stderr


def test_text_refuses_a_csv_in_a_missing_folder_before_the_work(tmp_path, no_work):
    texts = tmp_path / "texts.txt"
    texts.write_text("what a lovely day\nthis is awful\n")
    result = CliRunner().invoke(app, ["text", "--file", str(texts), "--csv", str(tmp_path / "missing" / "o.csv")])
    assert result.exit_code == 2, result.output
    assert "no such folder" in result.stderr


def test_text_file_json_keeps_the_summary_off_stdout(tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("what a lovely day\nthis is awful\nI am scared of the dark\n")
    result = CliRunner().invoke(app, ["text", "--file", str(texts), "--json"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(isinstance(json.loads(line), dict) for line in lines)
    assert "texts labelled by" in result.stderr


def test_output_checks_are_in_the_error_family(tmp_path):
    assert issubclass(OutputError, InputError)
    check_output_file(tmp_path / "ok.csv")
    check_output_dir(tmp_path / "new" / "deeper")
    with pytest.raises(OutputError, match="is a folder"):
        check_output_file(tmp_path)
