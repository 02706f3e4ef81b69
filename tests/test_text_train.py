"""Text training, export and evaluation on self-made data (tests/text_toy.py): no shared data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from emodetect.evaluate import cross_fitted_thresholds, evaluate, multilabel_report, tune_thresholds
from emodetect.export import export_checkpoint
from emodetect.runtime import OnnxModel
from emodetect.text.data import load_texts
from emodetect.text.pipeline import TextEmotion
from emodetect.text.tokenize import Vocabulary
from emodetect.train import TrainConfig, load_checkpoint_model, train
from text_toy import write_toy_csv


def text_config(data, out, **overrides) -> TrainConfig:
    values = dict(data=str(data), out=str(out), modality="text", model="kim_cnn_tiny", epochs=4,
                  batch_size=32, optimizer="adamw", lr=0.01, weight_decay=0.0, label_smoothing=0.0,
                  ema_decay=0.0, bf16=False, threads=1)
    return TrainConfig(**(values | overrides))


@pytest.fixture(scope="module")
def single_label_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("single")
    data = write_toy_csv(tmp / "toy.csv")
    return data, train(text_config(data, tmp / "run"))


@pytest.fixture(scope="module")
def multilabel_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multi")
    data = write_toy_csv(tmp / "toy_multi.csv", multilabel=True)
    return data, train(text_config(data, tmp / "run", epochs=6))


def test_training_learns_the_toy_task(single_label_run):
    _, result = single_label_run
    # 3 balanced classes: chance is about 0.33; the keyword decides the class.
    assert result.best_val_acc > 0.9
    state = torch.load(result.best_checkpoint, weights_only=False)
    assert state["labels"] == ["anger", "fear", "joy"] and not state["multilabel"]
    assert state["extras"]["vocab"]["tokens"][:2] == ["<pad>", "<unk>"]


def test_multilabel_training_learns_and_export_tunes_thresholds(multilabel_run, tmp_path):
    data, result = multilabel_run
    assert result.best_val_acc > 0.8  # macro-F1 at threshold 0.5 on the validation split
    report = export_checkpoint(result.best_checkpoint, tmp_path / "multi.onnx")
    extras = OnnxModel(report.path).extras()
    assert len(extras["thresholds"]) == 3
    assert all(0 < t < 1 for t in extras["thresholds"])
    assert "validation" in extras["thresholds_from"]
    from emodetect.evaluate import SHRINKS

    assert extras["threshold_shrink"] in SHRINKS  # chosen on held-out halves of validation
    scored = evaluate(report.path, data, "test", modality="text")
    assert scored.extra["multilabel"] and scored.macro_f1 > 0.8
    assert [c.label for c in scored.per_class] == ["anger", "fear", "joy"]


def test_export_matches_torch_on_real_texts(single_label_run, tmp_path):
    data, result = single_label_run
    report = export_checkpoint(result.best_checkpoint, tmp_path / "single.onnx")
    assert report.max_abs_diff < 1e-4
    onnx_model = OnnxModel(report.path)
    extras = onnx_model.extras()
    texts = load_texts(data, "test").texts + ["", "an unseen wordzzz 😀", "Привет 日本語 " * 50]
    ids = Vocabulary.from_dict(extras["vocab"]).encode(texts, extras["max_tokens"]).ids
    with torch.no_grad():
        expected = load_checkpoint_model(result.best_checkpoint)(torch.from_numpy(ids)).softmax(1).numpy()
    got = onnx_model.predict(ids)
    assert np.abs(expected - got).max() < 1e-4
    assert json.loads(onnx_model.metadata["input"])["dtype"] == "int64"
    assert onnx_model.input_name == json.loads(onnx_model.metadata["input"])["name"] == "token_ids"
    assert onnx_model.metadata["modality"] == "text"


def test_pipeline_reads_the_exported_model(single_label_run, tmp_path):
    _, result = single_label_run
    path = export_checkpoint(result.best_checkpoint, tmp_path / "single.onnx").path
    reader = TextEmotion(path)
    results = reader.predict(["we went home and i was so terrified", "   ", "a glad day 🎉"])
    assert results[0].label == "fear" and results[0].labels == ["fear"]
    assert results[1].label is None and results[1].error == "empty text"
    assert results[2].label == "joy"
    assert abs(sum(results[0].probabilities.values()) - 1) < 1e-4
    row = results.to_rows()[0]
    assert row["label"] == "fear" and set(row) >= {"p_anger", "p_fear", "p_joy", "labels"}
    assert results.shares() == {"anger": 0.0, "fear": 0.5, "joy": 0.5}


def test_tune_thresholds_finds_the_separating_value():
    probs = np.array([[0.9, 0.30], [0.8, 0.25], [0.2, 0.10], [0.1, 0.35]])
    truth = np.array([[1, 1], [1, 1], [0, 0], [0, 0]])
    thresholds = tune_thresholds(probs, truth)
    assert 0.2 < thresholds[0] <= 0.8
    assert 0.10 < thresholds[1] <= 0.25  # label 1 is separable only between 0.10 and 0.25


def test_shrunk_thresholds_move_towards_one_common_threshold():
    rng = np.random.default_rng(0)
    truth = rng.random((400, 3)) < [0.5, 0.3, 0.05]  # the third label is rare
    probs = np.clip(truth * 0.35 + rng.random((400, 3)) * 0.6, 0, 1)
    own, common = tune_thresholds(probs, truth), tune_thresholds(probs, truth, shrink=0.0)
    assert len(set(common.round(6))) == 1  # shrink 0: one threshold for every label
    np.testing.assert_allclose(tune_thresholds(probs, truth, shrink=0.25), 0.25 * own + 0.75 * common)
    thresholds, shrink, held_out = cross_fitted_thresholds(probs, truth, repeats=3)
    assert set(held_out) == {0.0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0} and held_out[shrink] == max(held_out.values())
    np.testing.assert_allclose(thresholds, tune_thresholds(probs, truth, shrink=shrink))
    assert cross_fitted_thresholds(probs, truth, repeats=3)[2] == held_out  # seeded: the same choice every time


def test_multilabel_report_macro_and_group_f1():
    labels = ["a", "b", "c"]
    truth = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]])
    probs = np.array([[0.9, 0.1, 0.1], [0.2, 0.8, 0.1], [0.1, 0.7, 0.2], [0.8, 0.1, 0.1]])
    report = multilabel_report(truth, probs, labels, thresholds=0.5, groups={"ab": ["a", "b"], "c": ["c"]})
    # Predicted sets: {a}, {b}, {b} (row 2 below every threshold: its top label), {a}.
    f1 = {c.label: round(c.f1, 4) for c in report.per_class}
    assert f1 == {"a": 1.0, "b": 0.5, "c": 0.0}
    assert report.macro_f1 == pytest.approx(0.5)
    assert report.accuracy == pytest.approx(0.5)  # exact set matches: rows 0 and 1
    # Groups: truth ab,ab,c,ab; predicted ab,ab,ab,ab -> F1(ab) = 6/7, F1(c) = 0.
    assert report.extra["group_macro_f1"] == pytest.approx(round(6 / 7 / 2, 4))


def test_data_with_fewer_labels_is_scored_in_the_model_label_space_and_foreign_labels_refused(
        single_label_run, tmp_path):
    _, result = single_label_run
    report = export_checkpoint(result.best_checkpoint, tmp_path / "toy.onnx")
    rows = [("i am furious today", "anger"), ("so delighted with my friend", "joy")] * 10
    subset = tmp_path / "two_labels.csv"
    subset.write_text("text,label,split\n" + "".join(f"{t},{l},test\n" for t, l in rows))
    scored = evaluate(report.path, subset, "test", modality="text")
    assert scored.labels == ["anger", "fear", "joy"]  # the model's labels; fear has no support
    assert scored.n == 20 and scored.accuracy > 0.9
    foreign = tmp_path / "foreign.csv"
    foreign.write_text("text,label,split\ni am so sad,sadness,test\ni am furious,anger,test\n")
    with pytest.raises(ValueError, match="is labelled"):
        evaluate(report.path, foreign, "test", modality="text")
