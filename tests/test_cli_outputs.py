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


def _columns_line_up(header: str, row: str, title: str, cell: str) -> bool:
    """The cell starts where its column's title does (right-aligned numbers end where it ends)."""
    return row.index(f" {cell}") == header.index(f" {title}")


def test_detect_predict_and_voice_print_one_table_style_with_a_header(tmp_path, monkeypatch):
    """predict printed tab-separated lines without a header and voice tab-separated lines, where
    detect prints an aligned table: one style for every verb."""
    import numpy as np
    import soundfile as sf
    from PIL import Image

    Image.open(SAMPLE).convert("L").crop((176, 56, 276, 176)).save(tmp_path / "face.png")
    t = np.arange(3 * 16_000) / 16_000
    sf.write(tmp_path / "call.wav", (0.2 * np.sin(2 * np.pi * 220 * t * (1 + 0.1 * np.sin(t)))).astype(np.float32),
             16_000)
    monkeypatch.chdir(tmp_path)  # short paths, shown whole
    outputs = {verb: CliRunner().invoke(app, [verb, name])
               for verb, name in (("detect", "face.png"), ("predict", "face.png"), ("voice", "call.wav"))}
    for verb, run in outputs.items():
        assert run.exit_code == 0, run.output
        header, row, *_ = run.stdout.splitlines()
        assert "\t" not in run.stdout and header.startswith("file ") and row.split()[0] in ("face.png", "call.wav")
        label = row.split()[2 if verb == "detect" else 1]
        assert _columns_line_up(header, row, "label", label), (verb, header, row)
    assert outputs["predict"].stdout.splitlines()[0].split() == ["file", "label", "conf"]
    assert outputs["voice"].stdout.splitlines()[0].split() == ["file", "label", "conf", "seconds", "windows", "voiced"]


def test_predict_names_a_skipped_file_in_its_json_lines_and_exits_1(tmp_path):
    """One writer for every per-file verb: predict's JSON lines say which file was skipped and
    why, as detect's do, and the run ends in exit code 1 with the count on stderr."""
    from PIL import Image

    Image.open(SAMPLE).convert("L").crop((176, 56, 276, 176)).save(tmp_path / "face.png")
    (tmp_path / "notes.png").write_text("not a picture")
    run = CliRunner().invoke(app, ["predict", str(tmp_path / "notes.png"), str(tmp_path / "face.png"), "--json"])
    assert run.exit_code == 1, run.output
    skipped, read = [json.loads(line) for line in run.stdout.splitlines()]
    assert skipped["source"] == str(tmp_path / "notes.png") and "not an image" in skipped["error"]
    assert read["source"] == str(tmp_path / "face.png") and read["label"] == max(read["probabilities"],
                                                                                 key=read["probabilities"].get)
    assert f"{tmp_path / 'notes.png'}: skipped: " in run.stderr and "1 of 2 file(s) skipped" in run.stderr


def test_models_prints_text_figures_as_words_not_json():
    run = CliRunner().invoke(app, ["models"])
    assert run.exit_code == 0, run.output
    text = [line for line in run.stdout.splitlines() if line.startswith("text ")]
    assert text and not any("{" in line for line in text)
    assert all("accuracy 0." in line and "macro-F1 0." in line for line in text)
