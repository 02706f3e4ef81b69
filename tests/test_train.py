import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from emodetect.train import TrainConfig, load_checkpoint_model, train


def tiny_config(data: Path, out: Path, **overrides) -> TrainConfig:
    values = dict(data=str(data), out=str(out), model="tiny_fer", epochs=3, batch_size=32, lr=0.05,
                  augment=False, ema_decay=0.99, threads=1)
    return TrainConfig(**(values | overrides))


def test_training_learns_the_synthetic_task(fer_csv, tmp_path):
    result = train(tiny_config(fer_csv, tmp_path / "run", epochs=2))
    # 7 balanced classes: chance is about 0.14.
    assert result.best_val_acc > 0.35
    assert result.best_checkpoint.exists()
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"] == "tiny_fer" and saved["epochs"] == 2
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["images_per_s"] > 0


def test_a_last_batch_of_one_example_does_not_break_batch_norm(tmp_path):
    """33 training faces at batch 32 leave one example over; a BatchNorm1d head cannot train on it."""
    from torch import nn

    from emodetect.registry import _MODELS, register_model
    from conftest import write_fer_csv

    if "bn_head_toy" not in _MODELS:
        @register_model
        def bn_head_toy(num_classes: int = 7) -> nn.Module:
            return nn.Sequential(nn.Flatten(), nn.Linear(48 * 48, 16), nn.BatchNorm1d(16), nn.ReLU(),
                                 nn.Linear(16, num_classes))

    data = write_fer_csv(tmp_path / "fer.csv", {"Training": 33, "PublicTest": 14})
    result = train(tiny_config(data, tmp_path / "run", model="bn_head_toy", modality="vision", epochs=1))
    assert result.best_checkpoint.exists()


def test_augmented_mixup_run_still_learns(fer_csv, tmp_path):
    result = train(tiny_config(fer_csv, tmp_path / "run", epochs=2, augment=True, mixup=0.2))
    assert result.best_val_acc > 0.3


def test_resume_matches_an_uninterrupted_run(fer_csv, tmp_path):
    full = train(tiny_config(fer_csv, tmp_path / "full"))
    train(tiny_config(fer_csv, tmp_path / "cut", stop_after=1))
    resumed = train(tiny_config(fer_csv, tmp_path / "cut", resume=True))
    assert [h.epoch for h in resumed.history] == [1, 2, 3]
    a = torch.load(full.last_checkpoint, weights_only=False)["model"]
    b = torch.load(resumed.last_checkpoint, weights_only=False)["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-4, rtol=1e-4)


def test_killed_cli_run_resumes_from_its_last_checkpoint(fer_csv, tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "emodetect", "train", "--data", str(fer_csv), "--out", str(out),
            "--model", "tiny_fer", "--epochs", "40", "--batch-size", "16", "--threads", "1", "--no-augment"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = out / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(log.read_text().splitlines())
    assert 2 <= done_before < 40, "the run should have been killed part-way"
    state = torch.load(out / "last.pt", weights_only=False)
    assert state["epoch"] + 1 >= done_before - 1
    resumed = subprocess.run(args + ["--resume", "--stop-after", "1"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stderr
    epochs = [json.loads(line)["epoch"] for line in log.read_text().splitlines()]
    assert epochs[-1] == state["epoch"] + 2


def test_checkpoint_rebuilds_the_model(fer_csv, tmp_path):
    result = train(tiny_config(fer_csv, tmp_path / "run", epochs=1))
    model = load_checkpoint_model(result.best_checkpoint)
    out = model(torch.zeros(2, 1, 48, 48))
    assert out.shape == (2, 7)


def test_unknown_model_is_a_clear_error(fer_csv, tmp_path):
    with pytest.raises(KeyError, match="unknown model"):
        train(tiny_config(fer_csv, tmp_path / "run", model="nope"))


def test_a_finished_run_can_be_extended_with_more_epochs(fer_csv, tmp_path):
    train(tiny_config(fer_csv, tmp_path / "run", epochs=2))
    extended = train(tiny_config(fer_csv, tmp_path / "run", epochs=4, resume=True))
    assert [h.epoch for h in extended.history] == [1, 2, 3, 4]
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4]


@pytest.mark.parametrize("damage", ["empty", "garbage", "flipped"])
def test_a_damaged_checkpoint_is_a_clear_error(fer_csv, tmp_path, damage):
    from typer.testing import CliRunner

    from emodetect.cli import app
    from emodetect.errors import DataError

    run = tmp_path / "run"
    train(tiny_config(fer_csv, run, epochs=1))
    last = run / "last.pt"
    data = bytearray(last.read_bytes())
    if damage == "empty":
        data = bytearray()
    elif damage == "garbage":
        data = bytearray(b"not a checkpoint at all" * 10)
    else:  # one flipped byte deep inside the weights: torch would load it and resume silently
        data[len(data) // 2] ^= 0xFF
    last.write_bytes(bytes(data))
    with pytest.raises(DataError, match=str(last)):
        train(tiny_config(fer_csv, run, epochs=2, resume=True))
    result = CliRunner().invoke(app, ["train", "--data", str(fer_csv), "--out", str(run), "--model", "tiny_fer",
                                      "--epochs", "2", "--resume", "--threads", "1"])
    assert result.exit_code == 2 and "last.pt" in result.output and "Traceback" not in result.output


def test_a_kill_after_the_log_line_leaves_no_duplicate_epoch(fer_csv, tmp_path):
    run = tmp_path / "run"
    train(tiny_config(fer_csv, run, epochs=3, stop_after=1))
    log = run / "log.jsonl"
    log.write_text(log.read_text() + log.read_text().splitlines()[0].replace('"epoch": 1', '"epoch": 2') + "\n")
    train(tiny_config(fer_csv, run, epochs=3, resume=True))
    assert [json.loads(line)["epoch"] for line in log.read_text().splitlines()] == [1, 2, 3]


def _torchrun(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "emodetect", "train", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_torchrun_with_two_processes_trains_resumes_and_loads_in_one(fer_csv, tmp_path):
    flags = ["--data", str(fer_csv), "--out", "run", "--model", "tiny_fer", "--batch-size", "32",
             "--no-augment", "--threads", "1", "--no-bf16", "--ema-decay", "0.99"]
    first = _torchrun(tmp_path, *flags, "--epochs", "3", "--stop-after", "2")
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("best_checkpoint") == 1  # rank 0 reports, rank 1 does not
    second = _torchrun(tmp_path, *flags, "--epochs", "3", "--resume")
    assert second.returncode == 0, second.stderr[-3000:]
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [entry["epoch"] for entry in log] == [1, 2, 3]
    state = torch.load(tmp_path / "run" / "best.pt", weights_only=False)
    model = load_checkpoint_model(tmp_path / "run" / "best.pt")  # in this one process, no group
    assert state["val_acc"] > 0.3 and sum(p.numel() for p in model.parameters()) > 0


def test_bf16_on_a_cpu_without_bfloat16_units_warns_and_names_the_fix():
    from emodetect.train import slow_bf16_warning

    why = slow_bf16_warning({"sse4_2", "avx2", "fma", "avx512f"})
    assert why and "--no-bf16" in why
    assert slow_bf16_warning({"avx2", "avx512f", "avx512_bf16"}) is None
    assert slow_bf16_warning({"avx2", "amx_bf16", "amx_tile"}) is None
    assert slow_bf16_warning({"fp", "asimd", "bf16"}) is None  # Arm
    assert slow_bf16_warning(set()) is None  # flags unknown: no guess


def test_a_bf16_run_on_such_a_cpu_logs_the_warning(fer_csv, tmp_path, monkeypatch, caplog):
    import emodetect.train as training

    monkeypatch.setattr(training, "_cpu_flags", lambda: {"avx2", "fma"})
    with caplog.at_level("WARNING", logger="emodetect.train"):
        train(tiny_config(fer_csv, tmp_path / "bf16", epochs=1, bf16=True))
        assert any("--no-bf16" in r.getMessage() for r in caplog.records)
        caplog.clear()
        train(tiny_config(fer_csv, tmp_path / "fp32", epochs=1, bf16=False))
        assert not any("--no-bf16" in r.getMessage() for r in caplog.records)
