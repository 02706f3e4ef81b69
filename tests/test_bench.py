"""The benchmark scripts' bookkeeping: reading training logs and reporting goals honestly.

No timing here (timed unit tests are noise); fer and the data sets are not needed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture()
def bench_modules(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    for name in ("train", "peers", "common"):
        sys.modules.pop(name, None)
    import peers
    import train

    yield train, peers
    for name in ("train", "peers", "common"):
        sys.modules.pop(name, None)


def _log(path: Path, entries: list[tuple[int, float, float]]) -> Path:
    path.write_text("".join(json.dumps({"epoch": e, "val_acc": acc, "seconds": sec, "images_per_s": 200.0}) + "\n"
                            for e, acc, sec in entries))
    return path


def test_time_to_accuracy_uses_the_latest_run_and_the_last_entry_of_a_repeated_epoch(tmp_path, bench_modules):
    train, _ = bench_modules
    log = _log(tmp_path / "log.jsonl", [
        (1, 0.80, 1.0),  # an earlier run in the same folder: must be ignored
        (1, 0.40, 100.0), (2, 0.60, 100.0), (2, 0.65, 110.0),  # epoch 2 logged twice (resume)
        (3, 0.71, 120.0), (4, 0.72, 120.0),
    ])
    result = train.time_to_accuracy(0.70, (tmp_path / "missing.jsonl", log))
    assert result["reached"] is True
    assert result["first_reached"]["epoch"] == 3
    assert result["first_reached"]["seconds"] == pytest.approx(330.0)
    assert result["epochs_logged"] == 4
    assert result["best_epoch"] == 4


def test_time_to_accuracy_says_when_the_target_was_never_reached(tmp_path, bench_modules):
    train, _ = bench_modules
    log = _log(tmp_path / "log.jsonl", [(1, 0.5, 10.0), (2, 0.69, 10.0)])
    result = train.time_to_accuracy(0.70, (log,))
    assert result["reached"] is False and "first_reached" not in result
    assert result["best_val_acc"] == pytest.approx(0.69)


def _machine(contended: bool) -> dict:
    return {"date_utc": "2026-11-25 11:00 UTC", "cpu": "test cpu", "cores": 2, "python": "3.11",
            "versions": {"onnxruntime": "1", "torch": "2"}, "fer_venv_versions": {"fer": "25"},
            "contended": contended, "git_commit": "abc"}


def test_peers_table_prints_missed_goals_and_flags_contention(bench_modules):
    _, peers = bench_modules
    acc = {"machine": _machine(False),
           "results": {"emodetect default float32": {"FER-2013": {"accuracy": 0.60, "macro_f1": 0.5}},
                       "fer (TFLite, default)": {"FER-2013": {"accuracy": 0.66, "macro_f1": 0.6}}},
           "goal": {"ours": 0.60, "fer": 0.66, "status": "missed"}}
    speed = {"machine": _machine(True), "default_model": "emodetect default float32",
             "summary": {"classifier": {"emodetect default float32": {"1": {"images_per_s": 10.0},
                                                                      "256": {"images_per_s": 50.0}},
                                        "fer (TFLite, default)": {"1": {"images_per_s": 100.0},
                                                                  "256": {"images_per_s": 100.0}}},
                         "pipeline": {}, "goals": {"classifier >= 3x fer at batch 256": {"ratio": 0.5,
                                                                                          "status": "missed"}}}}
    text = peers.render(acc, speed, None)
    assert "| accuracy above fer's on PrivateTest | 0.6000 vs 0.6600 | missed |" in text
    assert "| classifier >= 3x fer at batch 256 | 0.50x | missed |" in text
    assert "**Contended:**" in text
    assert "| met |" not in text


def test_peers_rewrites_only_the_marked_block_of_the_docs(tmp_path, bench_modules):
    _, peers = bench_modules
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"intro\n{peers.BEGIN}\nold table\n{peers.END}\nnotes\n")
    assert peers.update_docs("## Benchmarks: emodetect vs fer\n\nnew table\n", doc) is True
    text = doc.read_text()
    assert "old table" not in text and "new table" in text
    assert text.startswith("intro\n") and text.endswith("notes\n")
    unmarked = tmp_path / "plain.md"
    unmarked.write_text("no markers\n")
    assert peers.update_docs("x", unmarked) is False and unmarked.read_text() == "no markers\n"


def test_word_error_counts_substitutions_deletions_and_insertions(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import transcribe_wer

    assert transcribe_wer.normalise("Kids are talking, by the door!") == ["kids", "are", "talking", "by", "the", "door"]
    assert transcribe_wer.edits(["kids", "are", "talking"], ["kids", "are", "talking"]) == 0
    assert transcribe_wer.edits(["kids", "are", "talking"], ["kid", "talking", "now"]) == 3  # sub, del, ins
    assert transcribe_wer.edits(["a", "b"], []) == 2 and transcribe_wer.edits([], ["a"]) == 1
