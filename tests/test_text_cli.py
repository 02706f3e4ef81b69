"""`emodetect text`: the CSV round trip and bad input, on a toy model trained in seconds."""

from __future__ import annotations

import csv

import pytest
from typer.testing import CliRunner

from emodetect.cli import app
from text_toy import train_toy_model

runner = CliRunner()


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory):
    return train_toy_model(tmp_path_factory.mktemp("cli"))


@pytest.fixture(scope="module")
def toy_multilabel_model(tmp_path_factory):
    return train_toy_model(tmp_path_factory.mktemp("cli_multi"), multilabel=True, name="toy_multi")


def write_csv(path, rows, header=("id", "text", "source")):
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_csv_round_trip_keeps_rows_and_columns(toy_model, tmp_path):
    rows = [("1", "my day at work, so furious!", "web"), ("2", "we went home terrified", "app"),
            ("3", "   ", "web"), ("4", "a glad morning 😀🎉 with my friend", "app"),
            ("5", "Привет 日本語 مرحبا", "web"), ("6", "so delighted " + "really " * 200, "app")]
    source = write_csv(tmp_path / "reviews.csv", rows)
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["text", "--file", str(source), "--column", "text", "--csv", str(out),
                                 "--model", str(toy_model)])
    assert result.exit_code == 0, result.output
    with open(out, encoding="utf-8", newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [r["id"] for r in written] == ["1", "2", "3", "4", "5", "6"]
    assert [r["source"] for r in written] == [r[2] for r in rows]
    assert [r["label"] for r in written][:4] == ["anger", "fear", "", "joy"]
    assert written[5]["label"] and written[5]["truncated"] == "True"
    assert written[2]["error"] == "empty text"
    assert {"labels", "p_anger", "p_fear", "p_joy"} <= set(written[0])
    assert abs(sum(float(written[0][f"p_{k}"]) for k in ("anger", "fear", "joy")) - 1) < 1e-3
    assert (tmp_path / "out_labels.png").stat().st_size > 1000
    # Summary: 5 labelled texts, the empty row and the long row are reported with their lines.
    assert "5 of 6 texts labelled" in result.output
    assert "texts labelled by toy" in result.output
    assert "line 4" in result.output and "line 7" in result.output


def test_multilabel_csv_joins_labels_above_thresholds(toy_multilabel_model, tmp_path):
    source = write_csv(tmp_path / "in.csv", [("1", "we were scared and furious at work", "x")])
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["text", "-f", str(source), "--csv", str(out), "--model", str(toy_multilabel_model)])
    assert result.exit_code == 0, result.output
    row = next(csv.DictReader(open(out, encoding="utf-8", newline="")))
    assert sorted(row["labels"].split(";")) == ["anger", "fear"]


def test_non_utf8_file_names_file_and_line(toy_model, tmp_path):
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("id,text\n1,fine\n2,caf\xe9 au lait\n".encode("latin-1"))
    result = runner.invoke(app, ["text", "--file", str(bad), "--model", str(toy_model)])
    assert result.exit_code == 2
    assert "latin1.csv:3" in result.output and "UTF-8" in result.output


def test_missing_column_lists_the_columns(toy_model, tmp_path):
    source = write_csv(tmp_path / "in.csv", [("1", "hello", "x")])
    result = runner.invoke(app, ["text", "--file", str(source), "--column", "review", "--model", str(toy_model)])
    assert result.exit_code == 2
    assert "'review'" in result.output and "id, text, source" in result.output


def test_texts_on_the_command_line_and_empty_input(toy_model):
    result = runner.invoke(app, ["text", "so thrilled today", "--model", str(toy_model), "--json"])
    assert result.exit_code == 0, result.output
    assert '"label": "joy"' in result.output
    result = runner.invoke(app, ["text", "  ", "", "--model", str(toy_model)])
    assert result.exit_code == 2 and "empty" in result.output


def test_unknown_model_name_lists_the_bundled_ones():
    result = runner.invoke(app, ["text", "hello", "--model", "no-such-model"])
    assert result.exit_code == 2 and "no-such-model" in result.output
