"""Accuracy by group (`evaluate --group-by COLUMN`): per-group figures with bootstrap intervals,
the gap between groups, in every report and a plot, for face, text and voice data."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emodetect.evaluate import evaluate, group_metrics


def test_group_figures_and_intervals_are_right_on_known_answers():
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    probs = np.eye(2)[[0, 1, 0, 1, 1, 0, 1, 0]]  # group a all right, group b all wrong
    table = group_metrics(y, probs, ["x", "y"], np.array(["a"] * 4 + ["b"] * 4), "who", resamples=200)
    a, b = table["groups"]["a"], table["groups"]["b"]
    assert (a["n"], a["accuracy"], b["accuracy"]) == (4, 1.0, 0.0)
    assert a["accuracy_ci95"] == [1.0, 1.0] and table["accuracy_gap"] == 1.0
    assert (table["best"], table["worst"]) == ("a", "b")
    mixed = group_metrics(y, np.eye(2)[[0, 1, 1, 1, 0, 1, 0, 0]], ["x", "y"], np.array(["a"] * 8), "who")
    low, high = mixed["groups"]["a"]["accuracy_ci95"]
    assert low < mixed["groups"]["a"]["accuracy"] == 0.75 < high


def test_group_macro_f1_counts_false_positives_and_the_plot_shows_each_groups_support():
    from emodetect.evaluate import groups_figure

    y = np.array([0, 0, 1, 1, 0, 1])
    probs = np.eye(3)[[0, 2, 1, 1, 0, 1]]  # group a: one face read as class 2, which no face is
    table = group_metrics(y, probs, ["x", "y", "z"], np.array(["a"] * 4 + ["b"] * 2), "who", resamples=50)
    assert table["groups"]["a"]["macro_f1"] == pytest.approx((2 / 3 + 1.0 + 0.0) / 3, abs=1e-4)
    assert table["groups"]["b"]["macro_f1"] == 1.0
    ticks = [t.get_text() for t in groups_figure(table).axes[0].get_yticklabels()]
    assert ticks == ["a (n=4)", "b (n=2)"]


def _text_with_sources(path: Path) -> Path:
    """Texts of group 'keywords' carry their label's keyword; those of group 'filler' do not."""
    from text_toy import FILLER, KEYWORDS, toy_text

    rng = random.Random(0)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "split", "source"])
        for split, n in (("train", 480), ("validation", 120), ("test", 160)):
            for i in range(n):
                label = rng.choice(sorted(KEYWORDS))
                hard = split == "test" and i % 2
                text = " ".join(rng.choice(FILLER) for _ in range(8)) if hard else toy_text(rng, [label])
                writer.writerow([text, label, split, "filler" if hard else "keywords"])
    return path


def test_text_groups_show_where_the_model_fails(tmp_path):
    from emodetect.export import export_checkpoint
    from emodetect.train import TrainConfig, train

    data = _text_with_sources(tmp_path / "texts.csv")
    run = train(TrainConfig(data=str(data), out=str(tmp_path / "run"), model="kim_cnn_tiny", epochs=4, batch_size=32,
                            optimizer="adamw", lr=0.01, weight_decay=0.0, label_smoothing=0.0, ema_decay=0.0,
                            bf16=False, threads=1))
    model = export_checkpoint(run.best_checkpoint, tmp_path / "toy.onnx").path
    report = evaluate(model, data, "test", group_by="source", out_dir=tmp_path / "report")
    groups = report.extra["groups"]
    assert groups["groups"]["keywords"]["accuracy"] > 0.9 > 0.6 > groups["groups"]["filler"]["accuracy"]
    assert groups["worst"] == "filler" and groups["accuracy_gap"] > 0.3
    saved = json.loads((tmp_path / "report" / "report.json").read_text())
    assert saved["extra"]["groups"]["groups"]["filler"]["n"] == 80
    assert "## By source" in (tmp_path / "report" / "report.md").read_text()
    assert "accuracy by group" in (tmp_path / "report" / "report.html").read_text()
    assert (tmp_path / "report" / "groups.png").stat().st_size > 1000
    done = subprocess.run([sys.executable, "-m", "emodetect", "evaluate", str(model), str(data), "--split", "test",
                           "--group-by", "nope"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "no column 'nope'" in done.stderr and "source" in done.stderr


def test_face_csv_with_a_group_column(tmp_path):
    from conftest import write_fer_csv

    plain = write_fer_csv(tmp_path / "fer.csv", {"PrivateTest": 30})
    lines = plain.read_text().splitlines()
    rows = [lines[0] + ",subject"] + [f"{line},s{i % 3}" for i, line in enumerate(lines[1:])]
    (tmp_path / "faces.csv").write_text("\n".join(rows) + "\n")
    report = evaluate("realtime-int8", tmp_path / "faces.csv", "PrivateTest", group_by="subject")
    table = report.extra["groups"]
    assert set(table["groups"]) == {"s0", "s1", "s2"} and sum(g["n"] for g in table["groups"].values()) == 30
    with pytest.raises(Exception, match="image folder"):
        evaluate("realtime-int8", tmp_path, "PrivateTest", group_by="subject")


def test_voice_groups_count_clips_not_windows(tmp_path):
    import soundfile as sf

    from conftest import speech_like
    from emodetect.voice.data import evaluation_groups

    (tmp_path / "audio").mkdir()
    lines = ["path,label,speaker,gender,split"]
    labels = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "calm"]  # the model's
    for i, label in enumerate(labels):
        sf.write(tmp_path / "audio" / f"c{i}.wav", speech_like(1.5 + 3 * (i % 2), seed=i), 16_000)
        lines.append(f"audio/c{i}.wav,{label},{i},{'female' if i < 4 else 'male'},test")
    (tmp_path / "manifest.csv").write_text("\n".join(lines) + "\n")
    assert len(evaluation_groups(tmp_path, "test", "gender")) > 8  # long clips have several windows
    report = evaluate("default", tmp_path, "test", modality="voice", group_by="gender")
    table = report.extra["groups"]
    assert {g: v["n"] for g, v in table["groups"].items()} == {"female": 4, "male": 4}


def test_every_bundled_model_has_a_generated_card_in_one_format():
    from emodetect.cards import model_card
    from emodetect.errors import InputError
    from emodetect.runtime import bundled_models

    sections = ["## Intended use", "## Uses to avoid", "## Test figures", "## Known gaps", "## Privacy"]
    for model in bundled_models():
        card = model_card(model.name, model.modality)
        assert card.startswith(f"# Model card: `{model.name}` ({model.modality})")
        assert [line for line in card.splitlines() if line.startswith("## ")] == sections, model.name
        assert "Measured with `" in card and "emodetect evaluate" in card, f"{model.name}: no evaluation evidence (bench/cards.py)"
        assert "| class | precision | recall | F1 | support |" in card
    voice = model_card("voice:default")
    assert "By gender" in voice and "By corpus" in voice
    assert "JAFFE" in model_card("vision:default")
    with pytest.raises(InputError, match="vision:default, text:default, voice:default"):
        model_card("default")  # several modalities bundle a 'default': refused, never the first one's
    done = subprocess.run([sys.executable, "-m", "emodetect", "models", "--card", "goemotions"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "# Model card: `goemotions` (text)" in done.stdout
    missing = subprocess.run([sys.executable, "-m", "emodetect", "models", "--card", "nope"],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "nope" in missing.stderr


def test_the_service_serves_each_card_and_lists_where():
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from emodetect.serve import ServeConfig, create_app

    with TestClient(create_app(ServeConfig(workers=1))) as client:
        listed = client.get("/v1/models").json()["models"]
        card = client.get(listed[0]["card"])
        assert card.status_code == 200 and card.headers["content-type"].startswith("text/markdown")
        assert card.text.startswith("# Model card")
        assert client.get("/v1/models/vision/nope/card").status_code == 404
