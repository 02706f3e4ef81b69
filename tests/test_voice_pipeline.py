"""Voice end to end on audio made here: manifest -> train -> ONNX export -> VoiceEmotion -> CLI.

A tiny model is trained for a few epochs on a synthetic corpus (low hum = sad, high chirp = happy,
loud noise = angry, four "speakers"), so every stage runs for real, in seconds, without the corpora.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from emodetect.voice import features as F
from emodetect.voice.words import words_available

RATE = F.SAMPLE_RATE
KINDS = {"sad": 180.0, "happy": 1800.0, "angry": None}


def synth(kind: str, seconds: float, rng: np.random.Generator, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    freq = KINDS[kind]
    if freq is None:
        x = rng.normal(0, 0.25, len(t))
    else:
        f = freq * (1 + 0.05 * rng.standard_normal()) * (1 + 0.1 * np.sin(2 * np.pi * 3 * t))
        x = 0.2 * np.sin(2 * np.pi * np.cumsum(f) / rate) + 0.1 * np.sin(4 * np.pi * np.cumsum(f) / rate)
    return x.astype(np.float32)


def with_silence(x: np.ndarray, lead: float = 0.3, tail: float = 0.3) -> np.ndarray:
    return np.concatenate([np.zeros(int(lead * RATE)), x, np.zeros(int(tail * RATE))]).astype(np.float32)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("voice_corpus")
    (root / "audio").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    splits = {"1": "train", "2": "train", "3": "validation", "4": "test"}
    for speaker, split in splits.items():
        for kind in KINDS:
            for take in range(3):
                name = f"audio/{speaker}_{kind}_{take}.flac"
                sf.write(root / name, with_silence(synth(kind, rng.uniform(1.0, 2.0), rng)), RATE)
                rows.append({"path": name, "label": kind, "speaker": speaker, "split": split})
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label", "speaker", "split"])
        writer.writeheader()
        writer.writerows(rows)
    return root


@pytest.fixture(scope="session")
def exported(corpus, tmp_path_factory):
    """Train mel_cnn_tiny for a few epochs and export it: (checkpoint, ExportReport)."""
    import os

    from emodetect.export import export_checkpoint
    from emodetect.train import TrainConfig, train

    out = tmp_path_factory.mktemp("voice_run")
    os.environ["EMODETECT_CACHE"] = str(out / "cache")
    try:
        result = train(TrainConfig(data=str(corpus), modality="voice", model="mel_cnn_tiny", out=str(out),
                                   train_split="train", val_split="validation", epochs=6, batch_size=6,
                                   optimizer="adamw", lr=0.01, weight_decay=0.0, mixup=0.2,
                                   ema_decay=0.0, bf16=False, threads=1))
    finally:
        del os.environ["EMODETECT_CACHE"]
    report = export_checkpoint(result.best_checkpoint, out / "voice_test.onnx",
                               extra_metadata={"name": "voice_test"})
    return result, report


@pytest.fixture(scope="session")
def engine(exported):
    from emodetect.voice.pipeline import VoiceEmotion

    return VoiceEmotion(exported[1].path)


def test_export_matches_torch_and_carries_the_voice_contract(exported):
    import onnx

    result, report = exported
    assert report.max_abs_diff < 1e-4
    meta = {p.key: p.value for p in onnx.load(str(report.path)).metadata_props}
    assert meta["modality"] == "voice" and meta["name"] == "voice_test"
    assert json.loads(meta["labels"]) == ["angry", "happy", "sad"]  # face-model order
    assert json.loads(meta["flip_tta"]) is False
    extras = json.loads(meta["extras"])
    assert extras["window_s"] == 3.0 and extras["n_mels"] == F.N_MELS
    graph_input = onnx.load(str(report.path)).graph.input[0].name
    assert graph_input == json.loads(meta["input"])["name"] == "log_mel"


def test_training_learns_the_synthetic_classes_on_held_out_speakers(exported, corpus, engine):
    rng = np.random.default_rng(7)
    hits = 0
    for kind in KINDS:
        for _ in range(3):
            hits += engine.predict(with_silence(synth(kind, 1.5, rng)), RATE).label == kind
    assert hits >= 7, f"{hits}/9 held-out synthetic clips right"


def test_speaker_in_two_splits_is_refused(corpus):
    from emodetect.train import TrainConfig
    from emodetect.voice.data import DataError, training_data

    with pytest.raises(DataError, match="both"):
        training_data(TrainConfig(data=str(corpus), modality="voice", train_split="train",
                                  val_split="speaker=1"))


def test_leave_one_speaker_out_selection_excludes_exactly_that_speaker(corpus):
    from emodetect.voice.data import read_manifest, select

    clips = read_manifest(corpus)
    rest = select(clips, "speaker!=03")  # zero-padded ids match too
    assert {c.speaker for c in rest} == {"1", "2", "4"}
    assert {c.split for c in select(clips, "Training+PublicTest")} == {"train", "validation"}


def test_a_speaker_can_be_named_in_one_corpus_of_joined_corpora():
    from emodetect.voice.data import Clip, DataError, select

    clips = [Clip(Path(f"{corpus}_{speaker}.wav"), "sad", speaker, "train", corpus)
             for corpus, speakers in (("ravdess", ["10", "11"]), ("emodb", ["03", "10"])) for speaker in speakers]
    names = lambda chosen: sorted(c.path.stem for c in chosen)  # noqa: E731
    assert names(select(clips, "speaker=10")) == ["emodb_10", "ravdess_10"]  # a bare id: every corpus's
    assert names(select(clips, "speaker=emodb/10")) == ["emodb_10"]
    assert names(select(clips, "speaker!=emodb/10,emodb/3")) == ["ravdess_10", "ravdess_11"]
    with pytest.raises(DataError, match="selects no clips"):
        select(clips, "speaker=emodb/11")


def test_long_recording_gives_a_timeline_with_silent_windows_skipped(engine, tmp_path):
    rng = np.random.default_rng(3)
    x = np.concatenate([synth("happy", 6.0, rng), np.zeros(8 * RATE, np.float32), synth("angry", 6.0, rng)])
    path = tmp_path / "long.wav"
    sf.write(path, x, RATE)
    result = engine.predict(path)
    starts = [w.start_s for w in result.windows]
    assert starts == sorted(starts) and result.windows[-1].end_s == pytest.approx(20.0, abs=0.02)
    silent = [w for w in result.windows if w.silent]
    assert silent and all(6.0 <= w.start_s and w.end_s <= 14.0 for w in silent)
    assert all(w.probabilities == {} for w in silent)
    voiced = result.voiced
    assert voiced[0].label == "happy" and voiced[-1].label == "angry"
    mean = np.mean([[w.probabilities[k] for k in result.labels] for w in voiced], axis=0)
    assert result.probabilities[result.label] == pytest.approx(mean.max())


def test_streamed_long_file_gives_the_same_windows_as_in_memory(exported, tmp_path):
    from emodetect.voice.pipeline import VoiceEmotion

    rng = np.random.default_rng(4)
    x = np.concatenate([synth("angry", 4.0, rng), synth("sad", 6.0, rng)])
    path = tmp_path / "stream.flac"
    sf.write(path, x, RATE)
    in_memory = VoiceEmotion(exported[1].path).predict(path)
    streamed = VoiceEmotion(exported[1].path, stream_above_s=1.0).predict(path)
    assert [w.start_s for w in streamed.windows] == [w.start_s for w in in_memory.windows]
    for a, b in zip(streamed.voiced, in_memory.voiced):
        np.testing.assert_allclose(list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-5)


def test_any_rate_and_channels_and_8khz_give_a_result_with_a_note(engine):
    rng = np.random.default_rng(5)
    stereo_44k = np.stack([synth("sad", 2.0, rng, 44_100)] * 2, axis=1)
    assert engine.predict(stereo_44k, 44_100).label is not None
    narrow = engine.predict(synth("sad", 2.0, rng, 8000), 8000)
    assert narrow.label is not None and any("8000 Hz" in n for n in narrow.notes)


def test_all_silent_audio_is_a_result_without_a_label(engine):
    result = engine.predict(np.zeros(3 * RATE, np.float32), RATE)
    assert result.label is None and result.probabilities == {} and result.voiced == []
    assert any("no speech" in n for n in result.notes)


def test_array_without_rate_and_empty_array_are_clear_errors(engine):
    with pytest.raises(F.AudioError, match="sample_rate"):
        engine.predict(np.zeros(100, np.float32))
    with pytest.raises(F.AudioError, match="empty"):
        engine.predict(np.zeros(0, np.float32), RATE)


def test_cli_batch_keeps_good_files_reports_bad_ones_and_writes_csv_and_plots_only_when_asked(exported, tmp_path):
    from emodetect.cli import app

    rng = np.random.default_rng(6)
    good = tmp_path / "good.ogg"
    sf.write(good, synth("happy", 2.0, rng, 22_050), 22_050, format="OGG", subtype="VORBIS")
    long = tmp_path / "long.wav"
    sf.write(long, np.concatenate([synth("sad", 5.0, rng), synth("angry", 5.0, rng)]), RATE)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF" + bytes(rng.integers(0, 255, 3000, dtype=np.uint8)))
    text = tmp_path / "notes.mp3"
    text.write_text("this is not audio")
    empty = tmp_path / "empty.flac"
    sf.write(empty, np.zeros(0, np.float32), RATE)
    missing = tmp_path / "missing.wav"
    out = tmp_path / "out" / "voice.csv"
    model = str(exported[1].path)
    run = CliRunner().invoke(app, ["voice", str(good), str(corrupt), str(text), str(empty), str(missing),
                                   str(long), "--model", model, "--csv", str(out)])
    assert run.exit_code == 1, run.output
    for bad in (corrupt, text, empty, missing):
        assert f"{bad}: skipped" in run.output
    rows = list(csv.DictReader(open(out)))
    assert [r["source"] for r in rows] == [str(good), str(long)]
    # `source` first, as in face and text rows (it was `path`); with the speech extra, the words
    # spoken are a column too (test_voice_words tests them).
    assert list(rows[0]) == ["source", "label", "angry", "happy", "sad"] + (["words"] if words_available() else [])
    assert sum(float(rows[0][k]) for k in ("happy", "sad", "angry")) == pytest.approx(1, abs=1e-3)
    # --csv alone asks for a CSV: no plots beside it (they were written unasked).
    assert sorted(p.name for p in out.parent.iterdir()) == ["voice.csv"]

    timeline = tmp_path / "timeline.csv"
    run = CliRunner().invoke(app, ["voice", str(long), str(good), "--model", model, "--csv", str(timeline),
                                   "--timeline", "--hop", "1.0"])
    assert run.exit_code == 0, run.output
    assert (tmp_path / "long_timeline.png").stat().st_size > 1000
    assert not (tmp_path / "good_timeline.png").exists()
    rows = [r for r in csv.DictReader(open(timeline)) if r["source"] == str(long)]
    assert len(rows) == len(F.window_starts(int(9.8 * RATE), 3 * RATE, RATE))
    assert [float(r["start_s"]) for r in rows] == sorted(float(r["start_s"]) for r in rows)


def test_cli_writes_each_recording_s_csv_row_as_it_is_done(exported, tmp_path, monkeypatch):
    """`voice --csv` wrote its file after the last recording: a run stopped on its third file
    lost the two already read. Rows now go out, flushed, file by file (as `detect`'s do)."""
    from emodetect.cli import app
    from emodetect.voice.pipeline import VoiceEmotion

    rng = np.random.default_rng(11)
    clips = [tmp_path / f"clip{i}.wav" for i in range(3)]
    for clip in clips:
        sf.write(clip, synth("happy", 2.0, rng), RATE)
    real = VoiceEmotion.predict
    out = tmp_path / "voice.csv"
    on_disk: list = []

    def stop_at_the_third(self, source, *args, **kwargs):
        if Path(source) == clips[2]:
            on_disk.extend(r["source"] for r in csv.DictReader(open(out)))  # flushed, not only closed
            raise KeyboardInterrupt  # as a user's Ctrl-C
        return real(self, source, *args, **kwargs)

    monkeypatch.setattr(VoiceEmotion, "predict", stop_at_the_third)
    run = CliRunner().invoke(app, ["voice", *map(str, clips), "--model", str(exported[1].path), "--csv", str(out),
                                   "--no-words"])
    assert run.exit_code != 0
    assert on_disk == [str(clips[0]), str(clips[1])]
    assert [r["source"] for r in csv.DictReader(open(out))] == on_disk


def test_cli_json_lines_name_a_skipped_recording_and_the_exit_code_says_so(exported, tmp_path):
    from emodetect.cli import app

    good, missing = tmp_path / "good.wav", tmp_path / "missing.wav"
    sf.write(good, synth("sad", 2.0, np.random.default_rng(12)), RATE)
    run = CliRunner().invoke(app, ["voice", str(missing), str(good), "--model", str(exported[1].path), "--json",
                                   "--no-words"])
    assert run.exit_code == 1, run.output
    documents = [json.loads(line) for line in run.stdout.splitlines()]
    assert [d["source"] for d in documents] == [str(missing), str(good)]
    assert "error" in documents[0] and documents[1]["label"] in ("angry", "happy", "sad")
    assert f"{missing}: skipped" in run.stderr and "1 of 2 file(s) skipped" in run.stderr
    only_good = CliRunner().invoke(app, ["voice", str(good), "--model", str(exported[1].path), "--no-words"])
    assert only_good.exit_code == 0, only_good.output


def test_inference_never_imports_torch(exported, tmp_path):
    import subprocess
    import sys

    path = tmp_path / "clip.wav"
    sf.write(path, synth("sad", 2.0, np.random.default_rng(8)), RATE)
    code = ("import sys; from emodetect import VoiceEmotion; "
            f"r = VoiceEmotion({str(exported[1].path)!r}).predict({str(path)!r}); "
            "assert r.label, r; assert 'torch' not in sys.modules, 'torch was imported'")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_a_final_fit_on_train_and_validation_speakers_keeps_the_last_epoch(corpus, tmp_path, monkeypatch):
    """--val-split none: after choosing a recipe on validation, train on those speakers too."""
    import torch

    from emodetect.train import TrainConfig, train

    monkeypatch.setenv("EMODETECT_CACHE", str(tmp_path / "cache"))
    result = train(TrainConfig(data=str(corpus), modality="voice", model="mel_cnn_tiny", out=str(tmp_path / "run"),
                               train_split="train+validation", val_split="none", epochs=3, batch_size=6,
                               optimizer="adamw", lr=0.01, weight_decay=0.0, ema_decay=0.0, bf16=False,
                               threads=1))
    assert result.best_epoch == 3 and [h.epoch for h in result.history] == [1, 2, 3]
    assert all(math.isnan(h.val_acc) for h in result.history)
    best = torch.load(result.best_checkpoint, weights_only=False)
    last = torch.load(result.last_checkpoint, weights_only=False)
    assert best["epoch"] == last["epoch"] == 2
    assert all(torch.equal(best["weights"][k], last["model"][k]) for k in best["weights"])


def test_readme_json_and_window_examples_run_on_the_bundled_model(tmp_path):
    """`emodetect voice call.wav --window 2 --hop 0.5 --json` (the README's example) and --json on
    a voiced file: both crashed once (numpy bools in JSON; a window the network was not built for)."""
    from emodetect.cli import app

    rng = np.random.default_rng(9)
    call = tmp_path / "call.wav"
    sf.write(call, with_silence(np.concatenate([synth("happy", 3.0, rng), synth("angry", 3.0, rng)])), RATE)
    for extra in ([], ["--window", "2", "--hop", "0.5"], ["--window", "0.7"]):
        run = CliRunner().invoke(app, ["voice", str(call), "--json", *extra])
        assert run.exit_code == 0, run.output
        document = json.loads(run.stdout.strip().splitlines()[-1])
        voiced = [w for w in document["windows"] if not w["silent"]]
        assert document["label"] in document["probabilities"] and voiced
        assert all(isinstance(w["silent"], bool) for w in document["windows"])
        if extra[:2] == ["--window", "2"]:
            assert all(abs(w["end_s"] - w["start_s"] - 2) < 1e-6 for w in voiced[:-1])
            starts = [w["start_s"] for w in document["windows"]]
            assert starts[1] - starts[0] == pytest.approx(0.5)
    run = CliRunner().invoke(app, ["voice", str(call), "--window", "5"])
    assert run.exit_code == 2 and "window must be 0.5 to 3 s" in run.output


def test_odd_arrays_give_a_correct_result_or_a_clear_error(engine, tmp_path):
    rng = np.random.default_rng(11)
    voiced = synth("happy", 3.0, rng)
    huge = engine.predict(voiced * 1e30, sample_rate=RATE)  # far past full scale: clipped, finite
    assert huge.label is not None and all(np.isfinite(list(huge.probabilities.values())))
    with pytest.raises(F.AudioError, match="channels-first"):
        engine.predict(np.stack([voiced, voiced]), sample_rate=RATE)
    stereo = engine.predict(np.stack([voiced, voiced], axis=1), sample_rate=RATE)
    assert stereo.label is not None and stereo.duration_s == pytest.approx(3.0, abs=0.01)
    broken = voiced.copy()
    broken[100] = np.nan
    with pytest.raises(F.AudioError, match="NaN"):
        engine.predict(broken, sample_rate=RATE)
    long = tmp_path / "long_nan.wav"  # over stream_above_s: read block by block, checked all the same
    samples = np.tile(voiced, 45)
    samples[-5] = np.inf
    sf.write(long, samples, RATE, subtype="FLOAT")
    with pytest.raises(F.AudioError, match="NaN or infinite"):
        engine.predict(long)


def test_evaluate_scores_clips_not_windows(exported, tmp_path, monkeypatch):
    """Long clips are cut into several windows; `emodetect evaluate --modality voice` counts clips."""
    from emodetect.evaluate import evaluate

    monkeypatch.setenv("EMODETECT_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(12)
    (tmp_path / "audio").mkdir()
    rows = []
    for take, kind in enumerate(["sad", "happy", "angry"]):
        name = f"audio/9_{kind}_{take}.flac"
        sf.write(tmp_path / name, with_silence(synth(kind, 7.0, rng)), RATE)
        rows.append({"path": name, "label": kind, "speaker": "9", "split": "test"})
    with open(tmp_path / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label", "speaker", "split"])
        writer.writeheader()
        writer.writerows(rows)
    report = evaluate(exported[1].path, tmp_path, "test", modality="voice")
    assert report.n == 3
    assert sum(c.support for c in report.per_class) == 3


def _perturbed_checkpoint(checkpoint: Path, out: Path, seed: int, labels: list[str] | None = None) -> Path:
    """A second, different model of the same contract: the checkpoint's weights plus noise."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    generator = torch.Generator().manual_seed(seed)
    key = "weights" if state.get("weights") else "ema" if state.get("ema") else "model"
    state[key] = {name: w + 0.3 * w.std() * torch.randn(w.shape, generator=generator) if w.is_floating_point()
                  and w.numel() > 1 else w for name, w in state[key].items()}
    if labels:
        state["labels"] = labels
    torch.save(state, out)
    return out


def test_export_of_several_checkpoints_is_one_model_of_their_mean(exported, tmp_path):
    """`emodetect export a.pt b.pt` (seeds of one recipe): one ONNX file whose probabilities are
    the mean of the members' own, with the members in its metadata."""
    from emodetect.cli import app
    from emodetect.export import read_metadata
    from emodetect.runtime import OnnxModel

    result, report = exported
    other = _perturbed_checkpoint(Path(result.best_checkpoint), tmp_path / "other.pt", seed=1)
    runner = CliRunner()
    made = runner.invoke(app, ["export", str(other), "--out", str(tmp_path / "other.onnx")])
    assert made.exit_code == 0, made.output
    made = runner.invoke(app, ["export", str(result.best_checkpoint), str(other), "--out",
                               str(tmp_path / "mean.onnx"), "--name", "voice-mean"])
    assert made.exit_code == 0, made.output
    assert "max |torch - onnxruntime|" in made.output

    x = (np.random.default_rng(0).normal(-6, 2, (5, 1, F.N_MELS, F.n_frames(3 * RATE)))).astype(np.float32)
    first, second = OnnxModel(report.path).predict(x), OnnxModel(tmp_path / "other.onnx").predict(x)
    assert np.abs(first - second).max() > 1e-3  # the members really differ
    mean = OnnxModel(tmp_path / "mean.onnx").predict(x)
    np.testing.assert_allclose(mean, (first + second) / 2, atol=1e-5)
    meta = read_metadata(tmp_path / "mean.onnx")
    assert meta["name"] == "voice-mean" and meta["architecture"].startswith("mean of 2: mel_cnn_tiny")
    assert len(json.loads(meta["members"])) == 2

    from emodetect.voice.pipeline import VoiceEmotion

    clip = with_silence(synth("happy", 1.5, np.random.default_rng(3)))
    assert VoiceEmotion(tmp_path / "mean.onnx").predict(clip, RATE).label in KINDS


def test_export_refuses_to_average_models_of_different_labels(exported, tmp_path):
    from emodetect.cli import app

    result, _ = exported
    odd = _perturbed_checkpoint(Path(result.best_checkpoint), tmp_path / "odd.pt", seed=2,
                                labels=["angry", "happy", "neutral"])
    made = CliRunner().invoke(app, ["export", str(result.best_checkpoint), str(odd), "--out", str(tmp_path / "m.onnx")])
    assert made.exit_code != 0
    assert "odd.pt" in made.output and "labels" in made.output
    assert not (tmp_path / "m.onnx").exists()


def write_with_pyav(path: Path, x: np.ndarray, rate: int, codec: str, container_format: str | None = None) -> Path:
    """A recording in a container libsndfile cannot read (AAC in mp4 is what phones record)."""
    import av

    with av.open(str(path), mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = "mono"
        frame_size = stream.codec_context.frame_size or 1024
        fmt = stream.codec_context.format.name
        for i, start in enumerate(range(0, len(x), frame_size)):
            chunk = x[start:start + frame_size].astype(np.float32)
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            for converted in av.AudioResampler(format=fmt, layout="mono", rate=rate).resample(frame):
                for packet in stream.encode(converted):
                    container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.mark.parametrize("name, codec, container_format", [
    ("call.m4a", "aac", "ipod"), ("call.mp4", "aac", "mp4"), ("call.webm", "libopus", "webm"),
    ("call.mp3", "libmp3lame", "mp3")])
def test_voice_reads_phone_recordings_m4a_mp4_webm_and_mp3(exported, tmp_path, name, codec, container_format):
    """`emodetect voice call.m4a` was refused ("mp3/m4a need converting") though PyAV decodes it."""
    import av

    from emodetect.cli import app

    if codec not in av.codecs_available:
        pytest.skip(f"this FFmpeg has no {codec} encoder")
    rate = 48_000 if codec == "libopus" else 44_100
    x = with_silence(synth("happy", 2.5, np.random.default_rng(12), rate))
    path = write_with_pyav(tmp_path / name, x, rate, codec, container_format)
    run = CliRunner().invoke(app, ["voice", str(path), "--model", str(exported[1].path), "--json"])
    assert run.exit_code == 0, run.output
    document = json.loads(run.stdout.strip().splitlines()[-1])
    assert document["label"] == "happy" and document["sample_rate"] == rate
    assert abs(document["duration_s"] - len(x) / rate) < 0.1


def test_one_audio_reader_decodes_a_file_as_the_array_of_its_samples(tmp_path):
    """The file path (any container) and the array path resample alike: same samples, same log-mel."""
    from emodetect.media import read_audio

    rate = 22_050
    x = synth("sad", 2.0, np.random.default_rng(13), rate)
    sf.write(tmp_path / "clip.wav", x, rate, subtype="FLOAT")
    decoded = read_audio(tmp_path / "clip.wav", to_rate=RATE)
    assert decoded.source_rate == rate and decoded.sample_rate == RATE
    expected = F.prepare(x, rate)
    assert abs(len(decoded.samples) - len(expected)) <= 2
    n = min(len(expected), len(decoded.samples))
    np.testing.assert_allclose(decoded.samples[:n], expected[:n], atol=2e-3)
