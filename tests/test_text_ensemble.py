"""Text ensembles: two toy joint models averaged through an ensemble file, written by the command
line and opened like any model (self-made data, no shared data)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from emodetect.cli import app
from emodetect.evaluate import evaluate, multilabel_report
from emodetect.export import export_checkpoint
from emodetect.heads import segments
from emodetect.runtime import read_catalog_entries
from emodetect.text.data import load_texts
from emodetect.text.ensemble import TextEnsemble
from emodetect.text.pipeline import TextEmotion
from emodetect.train import TrainConfig, train
from test_text_heads import write_heads_csv

runner = CliRunner()


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """Two joint models (main labels, a multi-label `words` head, a `tone` head) from two seeds."""
    tmp = tmp_path_factory.mktemp("ensemble")
    data = write_heads_csv(tmp / "joint.csv")
    paths = []
    for seed in (0, 1):
        cfg = TrainConfig(data=str(data), out=str(tmp / f"run{seed}"), modality="text", model="kim_cnn_tiny",
                          epochs=4, batch_size=32, optimizer="adamw", lr=0.01, weight_decay=0.0,
                          label_smoothing=0.0, ema_decay=0.0, bf16=False, threads=1, seed=seed,
                          train_split="train", val_split="validation")
        paths.append(export_checkpoint(train(cfg).best_checkpoint, tmp / f"m{seed}.onnx",
                                       extra_metadata={"name": f"toy{seed}"}).path)
    return tmp, data, paths


def test_an_ensemble_averages_its_members_with_their_weights(members, tmp_path):
    tmp, data, (a, b) = members
    out = tmp_path / "pair.ensemble.json"
    result = runner.invoke(app, ["ensemble", str(a), str(b), "--data", str(data), "--out", str(out),
                                 "--name", "pair", "--weight", "3", "--weight", "1", "--threads", "1"])
    assert result.exit_code == 0, result.output
    spec = json.loads(out.read_text())
    assert [m["weight"] for m in spec["members"]] == [3.0, 1.0]
    assert len(spec["thresholds"]["words"]) == 6 and "tone" not in spec["thresholds"]  # multi-label heads only
    ensemble = TextEmotion(out, threads=1)
    assert isinstance(ensemble, TextEnsemble) and ensemble.name == "pair" and ensemble.heads == ["words", "tone"]
    texts = ["alpha beta loudly", "gamma", "", "delta delta alpha"]
    mixed = ensemble.probabilities(texts)
    expected = 0.75 * TextEmotion(a).probabilities(texts) + 0.25 * TextEmotion(b).probabilities(texts)
    np.testing.assert_allclose(mixed, expected, atol=1e-6)
    # Results use the ensemble's own thresholds, tuned for the average.
    for text, result in zip(texts, ensemble.predict(texts)):
        if not text:
            assert result.error == "empty text"
            continue
        words = result.heads["words"]
        above = [k for k, t in zip(words.probabilities, spec["thresholds"]["words"]) if words.probabilities[k] >= t]
        assert set(words.labels) == set(above) or (not above and len(words.labels) == 1)


def test_the_text_command_and_the_catalogue_take_an_ensemble(members, tmp_path):
    tmp, data, (a, b) = members
    folder = tmp_path / "assets"
    folder.mkdir()
    for path in (a, b):
        shutil.copy(path, folder / path.name)
    out = folder / "pair.ensemble.json"
    assert runner.invoke(app, ["ensemble", "no-such-model", a.name, "--data", str(data), "--out", str(out),
                               "--threads", "1"]).exit_code != 0
    result = runner.invoke(app, ["ensemble", str(folder / a.name), str(folder / b.name), "--data", str(data),
                                 "--out", str(out), "--name", "pair", "--threads", "1"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["text", "--model", str(out), "--json", "alpha beta loudly"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output.strip().splitlines()[-1])
    assert answer["model"] == "pair" and set(answer["heads"]) == {"words", "tone"}
    entries = {e["name"]: e for e in read_catalog_entries(folder)}
    assert entries["pair"]["file"] == out.name and entries["pair"]["metadata"]["members"] == f"{a.name}, {b.name}"
    assert entries["pair"]["labels"] == list(TextEmotion(a).labels)
    # evaluate scores an ensemble's multi-label head with the ensemble's own thresholds.
    rows = [r for r in csv.DictReader(open(data, encoding="utf-8")) if r["labels:words"] and r["split"] == "test"]
    words_csv = tmp_path / "words.csv"
    with open(words_csv, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([["text", "labels", "split"]] + [[r["text"], r["labels:words"], "test"] for r in rows])
    result = runner.invoke(app, ["evaluate", str(out), str(words_csv), "--split", "test", "--head", "words"])
    assert result.exit_code == 0, result.output
    texts = load_texts(words_csv, "test")
    ensemble = TextEmotion(out)
    seg = next(s for s in segments(ensemble.labels, ensemble.multilabel, ensemble.head_specs) if s.name == "words")
    probs = ensemble.probabilities(texts.texts)[:, seg.start:seg.stop]
    order = [list(texts.labels).index(name) for name in seg.labels]
    expected = multilabel_report(texts.targets[:, order], probs, seg.labels, json.loads(out.read_text())["thresholds"]["words"])
    report = evaluate(out, words_csv, "test", head="words")
    assert report.n == len(rows) and report.macro_f1 == pytest.approx(expected.macro_f1)
    # The folder moves with its members: they are written relative to the ensemble file.
    moved = Path(shutil.move(folder, tmp_path / "elsewhere"))
    assert json.loads((moved / out.name).read_text())["members"][0]["model"] == a.name
    texts = ["gamma beta", "alpha loudly"]
    expected = (TextEmotion(moved / a.name).probabilities(texts) + TextEmotion(moved / b.name).probabilities(texts)) / 2
    np.testing.assert_allclose(TextEmotion(moved / out.name).probabilities(texts), expected, atol=1e-6)


def test_a_head_can_have_weights_of_its_own(members, tmp_path):
    tmp, data, (a, b) = members
    out = tmp_path / "pair.ensemble.json"
    result = runner.invoke(app, ["ensemble", str(a), str(b), "--data", str(data), "--out", str(out), "--threads", "1",
                                 "--weight", "3", "--weight", "1", "--head-weight", "words=1,3"])
    assert result.exit_code == 0, result.output
    spec = json.loads(out.read_text())
    assert [m["heads"] for m in spec["members"]] == [{"words": 1.0}, {"words": 3.0}]
    assert set(spec["threshold_shrink"]) == {"words"}
    ensemble = TextEmotion(out, threads=1)
    texts = ["alpha beta loudly", "gamma", "delta delta alpha"]
    pa, pb = TextEmotion(a).probabilities(texts), TextEmotion(b).probabilities(texts)
    words = next(s for s in segments(ensemble.labels, ensemble.multilabel, ensemble.head_specs) if s.name == "words")
    share = np.full(pa.shape[1], 0.75)  # every column 3:1, the words head's 1:3
    share[words.start:words.stop] = 0.25
    np.testing.assert_allclose(ensemble.probabilities(texts), share * pa + (1 - share) * pb, atol=1e-6)
    for bad, says in [("words=1", "one weight per member"), ("words=a,b", "HEAD=W1,W2"),
                      ("nosuch=1,1", "nosuch"), ("=1,1", "HEAD=W1,W2")]:
        result = runner.invoke(app, ["ensemble", str(a), str(b), "--data", str(data), "--out",
                                     str(tmp_path / "bad.ensemble.json"), "--head-weight", bad])
        assert result.exit_code != 0 and says in result.output, (bad, result.output)
    assert not list(tmp_path.glob("bad*")) + list(tmp_path.glob(".*"))


def test_members_with_other_labels_or_bad_files_are_refused(members, tmp_path):
    from text_toy import write_toy_csv

    tmp, data, (a, _) = members
    toy = write_toy_csv(tmp_path / "toy.csv", sizes={"train": 60, "validation": 30})
    cfg = TrainConfig(data=str(toy), out=str(tmp_path / "run"), modality="text", model="kim_cnn_tiny", epochs=1,
                      bf16=False, threads=1, train_split="train", val_split="validation")
    other = export_checkpoint(train(cfg).best_checkpoint, tmp_path / "other.onnx").path
    result = runner.invoke(app, ["ensemble", str(a), str(other), "--data", str(data),
                                 "--out", str(tmp_path / "x.ensemble.json"), "--threads", "1"])
    assert result.exit_code != 0 and "different labels or heads" in result.output and "other.onnx" in result.output
    assert not list(tmp_path.glob("*.ensemble.json")) + list(tmp_path.glob(".*"))  # nothing half-made left
    kept = tmp_path / "kept.ensemble.json"  # a failed re-make keeps the file it would have replaced
    kept.write_text("{}")
    result = runner.invoke(app, ["ensemble", str(a), str(other), "--data", str(data), "--out", str(kept)])
    assert result.exit_code != 0 and kept.read_text() == "{}"
    result = runner.invoke(app, ["ensemble", str(a), str(a), "--data", str(data), "--out", str(tmp_path / "x.json")])
    assert result.exit_code != 0 and ".ensemble.json" in result.output
    broken = tmp_path / "broken.ensemble.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="broken.ensemble.json"):
        TextEmotion(broken)
    broken.write_text(json.dumps({"name": "x", "members": ["a.onnx"]}))
    with pytest.raises(ValueError, match="members"):
        TextEmotion(broken)
