"""One text model with several label sets (heads): reading, masked training, export, inference,
evaluation and the command line, on self-made data (no shared data).

The toy corpus: texts with one or two keywords of tests/text_toy.py. The main `label` is the
keyword's category (empty when a text mixes two categories); `labels:words` names which half of
each category's keywords the text has (multi-label, every row of corpus A); `label:tone` is "loud"
when the text says "loudly", else "quiet", on the rows of corpus B only, which have no main label.
"""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from emodetect.cli import app
from emodetect.errors import DataError
from emodetect.evaluate import evaluate
from emodetect.export import export_checkpoint
from emodetect.heads import HEAD_OUTPUT
from emodetect.runtime import OnnxModel
from emodetect.text.data import load_texts
from emodetect.text.pipeline import TextEmotion
from emodetect.train import TrainConfig, _head_loss, segments, train
from text_toy import KEYWORDS, toy_text

runner = CliRunner()


def word_label(word: str) -> str:
    category = next(c for c, words in KEYWORDS.items() if word in words)
    return f"{category}_{'ab'[KEYWORDS[category].index(word) % 2]}"


def toy_row(rng: random.Random, corpus: str) -> dict[str, str]:
    if corpus == "B":
        loud = rng.random() < 0.5
        text = toy_text(rng, [rng.choice(sorted(KEYWORDS))]) + (" loudly" if loud else "")
        return {"text": text, "label": "", "labels:words": "", "label:tone": "loud" if loud else "quiet"}
    categories = rng.sample(sorted(KEYWORDS), rng.choice([1, 1, 2]))
    text = toy_text(rng, categories)
    words = {word_label(w) for w in text.split() if any(w in ws for ws in KEYWORDS.values())}
    return {"text": text, "label": categories[0] if len(categories) == 1 else "",
            "labels:words": ";".join(sorted(words)), "label:tone": ""}


def write_heads_csv(path, sizes=None, seed=0):
    rng = random.Random(seed)
    sizes = sizes or {"train": 900, "validation": 240, "test": 240}
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, ["text", "label", "split", "corpus", "labels:words", "label:tone"])
        writer.writeheader()
        for split, n in sizes.items():
            for i in range(n):
                corpus = "AB"[i % 3 == 2]
                writer.writerow(toy_row(rng, corpus) | {"split": split, "corpus": corpus})
    return path


@pytest.fixture(scope="module")
def heads_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("heads")
    data = write_heads_csv(tmp / "joint.csv")
    cfg = TrainConfig(data=str(data), out=str(tmp / "run"), modality="text", model="kim_cnn_tiny", epochs=8,
                      batch_size=32, optimizer="adamw", lr=0.01, weight_decay=0.0, label_smoothing=0.0,
                      ema_decay=0.0, bf16=False, threads=1, train_split="train", val_split="validation")
    result = train(cfg)
    report = export_checkpoint(result.best_checkpoint, tmp / "joint.onnx", extra_metadata={"name": "toy-joint"})
    return tmp, data, result, report


def test_reader_keeps_rows_labelled_in_any_head(tmp_path):
    data = write_heads_csv(tmp_path / "joint.csv", {"train": 60})
    ds = load_texts(data, "train")
    assert len(ds) == 60 and not ds.skipped  # corpus B rows have no main label and are kept
    assert list(ds.heads) == ["words", "tone"]
    names, multilabel, targets = ds.heads["tone"]
    assert names == ("loud", "quiet") and not multilabel
    assert ds.heads["words"][1] and len(ds.heads["words"][0]) == 6
    no_main = np.isnan(ds.targets).any(1)
    no_tone = np.isnan(targets).any(1)
    corpus = np.array([r["corpus"] for r in ds.rows])
    assert (no_tone == (corpus == "A")).all()  # tone is known exactly on corpus B
    assert no_main[corpus == "B"].all()
    assert ds.class_indices()[no_main].tolist() == [-1] * int(no_main.sum())
    assert ds.all_targets().shape == (60, 3 + 6 + 2)
    tone = ds.head("tone")
    assert len(tone) == int((~no_tone).sum()) and tone.labels == ("loud", "quiet")


def test_reader_names_the_column_and_line_of_a_bad_head_label(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("text,label,split,label:tone\n"
                    "so glad,joy,train,\n"
                    "so loud,,train,loud;quiet\n"
                    "nothing here,,train,\n", encoding="utf-8")
    ds = load_texts(path, "train")
    assert len(ds) == 1
    assert any(":3:" in s and "label:tone" in s for s in ds.skipped)  # two labels in a single-label head
    assert any(":4:" in s and "no label" in s for s in ds.skipped)  # labelled in no head at all
    path.write_text("text,label,split,label:tone\nonly this,,train,\n", encoding="utf-8")
    with pytest.raises(DataError, match="no usable rows"):
        load_texts(path, "train")


def test_a_head_without_labels_in_a_row_adds_nothing_to_the_loss():
    segs = segments(("a", "b"), False, [{"name": "h", "labels": ["x", "y", "z"], "multilabel": True}])
    logits = torch.randn(4, 5, requires_grad=True)
    target = torch.tensor([[1, 0, 0, 1, 0], [0, 1, 1, 0, 0],
                           [float("nan")] * 2 + [1, 1, 0], [1, 0] + [float("nan")] * 3])
    loss = _head_loss(logits, target, segs, 0.0)
    loss.backward()
    # Row 2 has no main label, row 3 no head labels: their gradients there are exactly zero.
    assert torch.all(logits.grad[2, :2] == 0) and torch.all(logits.grad[3, 2:] == 0)
    assert torch.all(logits.grad[0] != 0)
    expected = (torch.nn.functional.cross_entropy(logits[[0, 1, 3], :2], torch.tensor([0, 1, 0]))
                + torch.nn.functional.binary_cross_entropy_with_logits(logits[:3, 2:], target[:3, 2:]))
    assert torch.isclose(loss, expected)


def test_training_learns_every_head_and_logs_each(heads_run):
    tmp, _, result, _ = heads_run
    last = result.history[-1]
    assert set(last.val_heads) == {"main", "words", "tone"}
    assert result.best_val_acc > 0.85  # the mean of the three heads' validation scores
    assert min(max(h.val_heads[k] for h in result.history) for k in last.val_heads) > 0.8
    logged = [json.loads(line) for line in (tmp / "run" / "log.jsonl").read_text().splitlines()]
    assert logged[-1]["val_heads"] == last.val_heads


def test_export_writes_a_second_output_and_tunes_head_thresholds(heads_run):
    _, _, _, report = heads_run
    assert report.max_abs_diff < 1e-4  # both outputs compared with torch
    model = OnnxModel(report.path)
    assert [o.name for o in model.session.get_outputs()] == ["probabilities", HEAD_OUTPUT]
    assert model.labels == ("anger", "fear", "joy")
    heads = model.extras()["heads"]
    assert [h["name"] for h in heads] == ["words", "tone"]
    assert len(heads[0]["thresholds"]) == 6 and "thresholds" not in heads[1]
    main, rest = model.predict_all(np.ones((2, model.extras()["max_tokens"]), dtype=np.int64))
    assert main.shape == (2, 3) and rest.shape == (2, 8)
    assert np.allclose(rest[:, 6:].sum(1), 1, atol=1e-5)  # the single-label head is a softmax of its own


def test_text_emotion_answers_in_every_head(heads_run, tmp_path):
    _, data, _, report = heads_run
    reader = TextEmotion(report.path)
    assert reader.heads == ["words", "tone"]
    rows = [r for r in csv.DictReader(open(data, encoding="utf-8")) if r["split"] == "test"]
    results = reader.predict([r["text"] for r in rows] + [""])
    tone = [(r["label:tone"], res.heads["tone"].label) for r, res in zip(rows, results) if r["label:tone"]]
    assert np.mean([a == b for a, b in tone]) > 0.9
    words = [(set(r["labels:words"].split(";")), set(res.heads["words"].labels))
             for r, res in zip(rows, results) if r["labels:words"]]
    assert np.mean([a == b for a, b in words]) > 0.6  # exact match of the word halves present
    main = [(r["label"], res.label) for r, res in zip(rows, results) if r["label"]]
    assert np.mean([a == b for a, b in main]) > 0.9
    empty = results[-1]
    assert empty.error and empty.heads["tone"].label is None
    assert json.loads(results[0].to_json())["heads"]["tone"]["label"] in ("loud", "quiet")
    row = results[0].to_rows()[0]
    assert {"tone_label", "words_labels", "p_tone:loud", "p_words:joy_a"} <= set(row)


def test_evaluate_scores_one_head(heads_run, tmp_path):
    _, data, _, report = heads_run
    rows = [r for r in csv.DictReader(open(data, encoding="utf-8")) if r["label:tone"]]
    tone_csv = tmp_path / "tone.csv"
    with open(tone_csv, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "split"])
        writer.writerows([r["text"], r["label:tone"], r["split"]] for r in rows)
    scored = evaluate(report.path, tone_csv, "test", modality="text", head="tone")
    assert scored.accuracy > 0.9 and [c.label for c in scored.per_class] == ["loud", "quiet"]
    with pytest.raises(ValueError, match="predicts"):  # the main head's labels are not the data's
        evaluate(report.path, tone_csv, "test", modality="text")
    result = runner.invoke(app, ["evaluate", str(report.path), str(tone_csv), "--split", "test", "--head", "nope"])
    assert result.exit_code != 0 and "no head 'nope'" in result.output and "words, tone" in result.output
    result = runner.invoke(app, ["evaluate", str(report.path), str(tone_csv), "--split", "test", "--head", "tone"])
    assert result.exit_code == 0, result.output
    assert "loud" in result.output


def test_text_command_shows_and_writes_the_heads(heads_run, tmp_path):
    _, _, _, report = heads_run
    result = runner.invoke(app, ["text", "--model", str(report.path), "--json", "so glad at work loudly"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output.strip().splitlines()[-1])
    assert answer["label"] == "joy" and answer["heads"]["tone"]["label"] == "loud"
    source = tmp_path / "in.csv"
    source.write_text("text\nso glad at work loudly\nwe went home terrified\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["text", "--model", str(report.path), "--file", str(source), "--csv", str(out)])
    assert result.exit_code == 0, result.output
    assert "in tone's labels: loud 50.0%, quiet 50.0%" in result.output
    written = list(csv.DictReader(open(out, encoding="utf-8")))
    assert written[0]["tone_label"] == "loud" and written[1]["tone_label"] == "quiet"
    assert written[1]["label"] == "fear" and "fear_" in written[1]["words_labels"]


def test_a_one_layer_text_cnn_reads_each_batch_at_its_own_length(heads_run, tmp_path):
    """The token axis is free in the ONNX file, and trimming a batch's padding changes nothing."""
    _, data, result, report = heads_run
    model = OnnxModel(report.path)
    assert not isinstance(model.session.get_inputs()[0].shape[1], int)
    assert json.loads(model.metadata["input"])["shape"][1].startswith("1..")
    reader = TextEmotion(report.path)
    assert reader.trim
    texts = ["so glad", "we went home terrified loudly", "x " * 200]
    max_tokens = model.extras()["max_tokens"]
    trimmed = reader.vocab.encode(texts, max_tokens, trim=True)
    padded = reader.vocab.encode(texts, max_tokens)
    assert trimmed.ids.shape[1] == max_tokens and reader.vocab.encode(texts[:1], max_tokens, trim=True).ids.shape == (1, 2)
    short = reader.vocab.encode(texts[:2], max_tokens, trim=True).ids
    for got, want in zip(model.predict_all(short), model.predict_all(padded.ids[:2])):
        np.testing.assert_allclose(got, want, atol=1e-5)
    # A deeper network's second layer sees its own output at padding positions: its length stays fixed.
    from emodetect.text.models import kim_cnn_deep

    assert kim_cnn_deep(num_classes=2, vocab_size=10).dynamic_input_axes == ()


def test_a_free_length_model_reads_a_long_text_whole(heads_run):
    """The keyword sits past the training length: cut there, the text would have no keyword."""
    _, _, _, report = heads_run
    reader = TextEmotion(report.path)
    trained = reader.trained_tokens
    assert reader.max_tokens == 512 > trained
    text = " ".join(["the day"] * trained) + " so terrified"
    (result,) = reader.predict([text])
    assert result.tokens == 2 * trained + 2 and not result.truncated
    assert result.label == "fear"
    (huge,) = reader.predict(["the " * 600 + "terrified"])
    assert huge.truncated and huge.tokens == 601  # past 512 tokens a text is cut and flagged
    assert reader.explain(text)[-1]["token"] == "terrified"


def test_probabilities_line_up_with_predict_in_every_head(heads_run):
    _, data, _, report = heads_run
    model = TextEmotion(report.path)
    texts = load_texts(data, "test").texts[:40] + ["   "]
    probs = model.probabilities(texts, batch_size=16)
    results = model.predict(texts)
    assert probs.shape == (len(texts), len(model.labels) + sum(len(s.labels) for s in model.head_segments))
    for row, result in zip(probs[:-1], results[:-1]):
        expected = list(result.probabilities.values())
        for head in result.heads.values():
            expected += list(head.probabilities.values())
        np.testing.assert_allclose(row, expected, atol=1e-6)
    assert not probs[-1].any()  # an empty text: zeros, as predict gives it


def test_distill_targets_mix_labels_with_the_teacher_and_fill_unlabelled_heads(heads_run):
    from emodetect.text.data import distill_targets

    _, data, _, report = heads_run
    ds = load_texts(data, "train")
    hard = ds.all_targets()
    soft = TextEmotion(report.path).probabilities(ds.texts)
    mixed = distill_targets(str(report.path), ds, 0.25)
    assert np.isnan(hard).any() and not np.isnan(mixed).any()  # every head now has a target on every row
    unlabelled = np.isnan(hard)
    np.testing.assert_allclose(mixed[unlabelled], soft[unlabelled], atol=1e-6)
    np.testing.assert_allclose(mixed[~unlabelled], 0.75 * hard[~unlabelled] + 0.25 * soft[~unlabelled], atol=1e-6)
    with pytest.raises(DataError, match="between 0 and 1"):
        distill_targets(str(report.path), ds, 1.5)
    # Teaching only some heads: the others keep their labels alone (NaN where a row has none).
    main = len(ds.labels)
    main_only = distill_targets(str(report.path), ds, 0.25, heads="main")
    np.testing.assert_array_equal(main_only[:, main:], hard[:, main:])  # the words and tone heads
    np.testing.assert_allclose(main_only[:, :main], mixed[:, :main], atol=1e-6)
    with pytest.raises(DataError, match="no head volume"):
        distill_targets(str(report.path), ds, 0.25, heads="main,volume")
    # A head's own share: 0 keeps its labels where a row has one and lets the teacher fill the rest.
    own = distill_targets(str(report.path), ds, 0.25, heads="main,words=0")
    np.testing.assert_allclose(own[:, :main], mixed[:, :main], atol=1e-6)
    part, taught = hard[:, main:], soft[:, main:]
    head = slice(0, 6)  # the words head (6 labels) comes first after the main labels; tone is not taught
    np.testing.assert_allclose(own[:, main:][:, head], np.where(np.isnan(part), taught, part)[:, head], atol=1e-6)
    np.testing.assert_array_equal(own[:, main + 6:], hard[:, main + 6:])
    with pytest.raises(DataError, match="between 0 and 1"):
        distill_targets(str(report.path), ds, 0.25, heads="main=2")
    with pytest.raises(DataError, match="must be a number"):
        distill_targets(str(report.path), ds, 0.25, heads="main=half")


def test_a_teacher_with_other_labels_is_refused_naming_both(heads_run, tmp_path):
    from text_toy import write_toy_csv

    _, _, _, report = heads_run
    toy = write_toy_csv(tmp_path / "toy.csv", sizes={"train": 60, "validation": 30})
    result = runner.invoke(app, ["train", "--data", str(toy), "--model", "kim_cnn_tiny", "--teacher", str(report.path),
                                 "--out", str(tmp_path / "run"), "--epochs", "1", "--train-split", "train",
                                 "--val-split", "validation", "--no-bf16", "--threads", "1"])
    assert result.exit_code != 0
    assert "--teacher" in result.output and "answers in other labels" in result.output
    assert "tone: 2 labels" in result.output and "main: 3 labels" in result.output
    result = runner.invoke(app, ["train", "--data", str(toy), "--model", "kim_cnn_tiny", "--teacher", "no-such-model",
                                 "--out", str(tmp_path / "run"), "--epochs", "1", "--no-bf16"])
    assert result.exit_code != 0 and "no-such-model" in result.output


def test_a_student_taught_by_the_teacher_alone_answers_like_it(heads_run, tmp_path):
    """--distill 1: no label reaches the student, only the teacher's probabilities; the student
    still agrees with the teacher on the test texts in every head (the teacher's signal arrives)."""
    _, data, _, report = heads_run
    out = tmp_path / "student"
    result = runner.invoke(app, ["train", "--data", str(data), "--model", "kim_cnn_tiny", "--teacher", str(report.path),
                                 "--distill", "1", "--out", str(out), "--epochs", "8", "--batch-size", "32",
                                 "--optimizer", "adamw", "--lr", "0.01", "--weight-decay", "0", "--label-smoothing", "0",
                                 "--ema-decay", "0", "--no-bf16", "--threads", "1", "--train-split", "train",
                                 "--val-split", "validation"])
    assert result.exit_code == 0, result.output
    student = export_checkpoint(out / "best.pt", tmp_path / "student.onnx").path
    texts = load_texts(data, "test").texts
    taught, teacher = TextEmotion(student).predict(texts), TextEmotion(report.path).predict(texts)
    agree = np.mean([s.label == t.label for s, t in zip(taught, teacher)])
    tone = np.mean([s.heads["tone"].label == t.heads["tone"].label for s, t in zip(taught, teacher)])
    assert agree > 0.9 and tone > 0.9, (agree, tone)
