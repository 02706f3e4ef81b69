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
            ("5", "Привет 日本語 مرحبا", "web"), ("6", "so delighted " + "really " * 600, "app")]
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


def test_csv_with_empty_texts_and_a_label_column_on_the_default_model(tmp_path, monkeypatch):
    """The joint default (it has heads): an empty text first and between others, and an input
    column named `label` that must survive beside the predicted one."""
    import csv as csv_module

    monkeypatch.chdir(tmp_path)
    source = tmp_path / "in.csv"
    source.write_text("id,text,label\n1,,x\n2,thank you so much!,y\n3,,z\n4,this is awful,w\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["text", "--file", str(source), "--csv", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv_module.DictReader(open(out, encoding="utf-8")))
    assert [r["id"] for r in rows] == ["1", "2", "3", "4"] and [r["label"] for r in rows] == ["x", "y", "z", "w"]
    assert all("goemotions_labels" in r and "predicted_label" in r for r in rows)
    assert rows[0]["predicted_label"] == "" and rows[0]["error"] == "empty text"
    assert rows[1]["predicted_label"] == "happy" and "gratitude" in rows[1]["goemotions_labels"]
    assert rows[3]["predicted_label"] in ("angry", "disgust", "sad") and rows[3]["p_isear:joy"]
    assert "thank you so much!" in result.stdout  # every text's result is printed, not only a summary
    assert (tmp_path / "out_labels.png").is_file()

    result = runner.invoke(app, ["text", "--file", str(source)])
    assert result.exit_code == 0, result.output
    assert not list(tmp_path.glob("in_labels.png"))  # nothing written unasked

    args_csv = tmp_path / "args.csv"
    result = runner.invoke(app, ["text", "I love it", "", "--csv", str(args_csv)])
    assert result.exit_code == 0, result.output
    assert [r["text"] for r in csv_module.DictReader(open(args_csv, encoding="utf-8"))] == ["I love it", ""]


def test_a_huge_csv_cell_is_a_clear_error(tmp_path):
    source = tmp_path / "big.csv"
    source.write_text("text\nshort\n" + "a" * 1_000_000 + "\n", encoding="utf-8")
    result = runner.invoke(app, ["text", "--file", str(source)])
    assert result.exit_code == 2
    assert f"{source}:3: unreadable CSV row" in result.stderr and "Traceback" not in result.output


def test_the_top_label_is_always_one_of_the_labels_above_threshold():
    from emodetect.text.pipeline import TextEmotion

    reader = TextEmotion("goemotions")
    texts = ["ugh, this again", "fine.", "I am so annoyed and angry right now", "ok thanks I guess", "what?!",
             "meh", "wow", "I miss her so much", "that is disgusting", "lol", "hmm interesting"]  # the last contradicted once
    for r in reader.predict(texts):
        assert r.label == r.labels[0] and r.label in r.labels
        assert r.group == next(g for g, members in reader.groups.items() if r.label in members)
    for r in TextEmotion().predict(texts):  # the joint default's multi-label head keeps the same rule
        head = r.heads["goemotions"]
        assert head.label == head.labels[0] and head.probabilities[head.label] == max(
            head.probabilities[k] for k in head.labels)


def test_a_text_with_an_unquoted_comma_is_read_whole_in_a_one_column_file(tmp_path):
    import json

    from emodetect.distributed import list_inputs

    source = tmp_path / "reviews.csv"
    source.write_text("text\nGreat product, I love it\nfine, thanks, really\n", encoding="utf-8")
    result = runner.invoke(app, ["text", "--file", str(source), "--json"])
    assert result.exit_code == 0, result.output
    read = [json.loads(line)["text"] for line in result.stdout.splitlines() if line.startswith("{")]
    assert read == ["Great product, I love it", "fine, thanks, really"]  # not "Great product"
    kind, items = list_inputs(source)  # `emodetect batch` reads texts the same way
    assert kind == "texts" and [item["text"] for item in items] == read


def test_rows_with_more_fields_than_the_header_are_an_error_naming_their_lines(tmp_path):
    from emodetect.distributed import list_inputs
    from emodetect.errors import DataError

    source = tmp_path / "reviews.csv"
    source.write_text('id,text\n1,fine\n2,Great product, I love it\n3,"quoted, whole"\n4,a,b,c\n', encoding="utf-8")
    result = runner.invoke(app, ["text", "--file", str(source)])
    assert result.exit_code == 2
    assert str(source) in result.stderr and "line 3 (3 fields)" in result.stderr and "line 5 (4 fields)" in result.stderr
    assert "line 4" not in result.stderr
    with pytest.raises(DataError, match="line 3"):
        list_inputs(source)


def test_a_utf16_be_csv_without_a_bom_is_read_as_its_text(toy_model, tmp_path):
    import json

    source = tmp_path / "reviews.csv"
    source.write_bytes("id,text\n1,so furious at work\n2,a glad morning 😀\n".encode("utf-16-be"))
    result = runner.invoke(app, ["text", "--file", str(source), "--json", "--model", str(toy_model)])
    assert result.exit_code == 0, result.output
    read = [json.loads(line)["text"] for line in result.stdout.splitlines() if line.startswith("{")]
    assert read == ["so furious at work", "a glad morning 😀"]  # not "\x00s\x00o..." nor a NUL error


def test_a_file_of_texts_streams_in_chunks_and_keeps_no_earlier_results(toy_model, tmp_path, monkeypatch):
    """`text --file` held every result (about 11.6 KB a text: a million short lines reached
    11.7 GB; issue 34, point 8). Texts now go through the model a chunk at a time and a chunk's
    results are gone before the next is made; the CSV keeps every row in order and the summary
    counts what one whole-file prediction would."""
    import gc
    import weakref

    from emodetect.text import cli as text_cli
    from emodetect.text.pipeline import TextEmotion

    monkeypatch.setattr(text_cli, "CHUNK_TEXTS", 100, raising=False)
    made: list[weakref.ref] = []
    asked: list[int] = []
    alive_at_call: list[int] = []
    predict = TextEmotion.predict

    def watched(self, texts, *args, **kwargs):
        gc.collect()
        alive_at_call.append(sum(ref() is not None for ref in made))
        texts = list(texts)
        asked.append(len(texts))
        results = predict(self, texts, *args, **kwargs)
        made.extend(weakref.ref(r) for r in results)
        return results

    monkeypatch.setattr(TextEmotion, "predict", watched)
    lines = [("so furious at work", "a glad morning", "we went home terrified", "")[i % 4] + f" {i}" * (i % 4 != 3)
             for i in range(450)]
    source = tmp_path / "many.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["text", "--file", str(source), "--csv", str(out), "--model", str(toy_model), "--json"])
    assert result.exit_code == 0, result.output
    assert asked == [100, 100, 100, 100, 50]  # was [450]: every text at once
    assert alive_at_call == [0, 0, 0, 0, 0]  # no earlier chunk's results held
    with open(out, encoding="utf-8", newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [r["text"] for r in written] == lines
    assert len(result.stdout.splitlines()) == 450  # --json: one line per text, the summary on stderr
    monkeypatch.setattr(TextEmotion, "predict", predict)
    whole = TextEmotion(toy_model).predict(lines)
    empty = sum(not line for line in lines)
    assert f"{450 - empty} of 450 texts labelled by" in result.stderr
    for label, share in whole.shares().items():
        if share > 0:
            assert f"{label:16} {share:6.1%}" in result.stderr
    assert f"warning: {empty} text(s) empty" in result.stderr


def test_csv_rows_are_on_disk_as_each_chunk_is_done(toy_model, tmp_path, monkeypatch):
    """`text --file --csv` flushes each chunk's rows (the per-file verbs' one writer): a run killed
    half way through a big file keeps every row already read, not a buffer's worth less."""
    from emodetect.text import cli as text_cli
    from emodetect.text.pipeline import TextEmotion

    monkeypatch.setattr(text_cli, "CHUNK_TEXTS", 2)
    source = tmp_path / "few.txt"
    source.write_text("so furious at work\na glad morning\nwe went home terrified\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    predict = TextEmotion.predict
    on_disk: list = []

    def watched(self, texts, *args, **kwargs):
        on_disk.append(len(list(csv.DictReader(open(out, encoding="utf-8")))) if out.exists() else None)
        return predict(self, texts, *args, **kwargs)

    monkeypatch.setattr(TextEmotion, "predict", watched)
    result = runner.invoke(app, ["text", "--file", str(source), "--csv", str(out), "--model", str(toy_model)])
    assert result.exit_code == 0, result.output
    assert on_disk[-1] == 2  # the first chunk's rows, read back while the second is being made
    assert [r["text"] for r in csv.DictReader(open(out, encoding="utf-8"))] == source.read_text().splitlines()
