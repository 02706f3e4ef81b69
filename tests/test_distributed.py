"""`emodetect batch` on a local two-worker Ray: Parquet that pandas reads, the same answers as
one process, bad inputs as error rows, and reruns that skip what is done."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
pd = pytest.importorskip("pandas")

from conftest import speech_like, synthetic_faces  # noqa: E402
from emodetect.distributed import run_batch  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "emodetect" / "assets" / "samples"


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    for photo in SAMPLES.glob("*.jpg"):
        shutil.copy(photo, folder / photo.name)
    faces, _ = synthetic_faces(24)
    (folder / "crops").mkdir()
    for i, face in enumerate(faces):
        Image.fromarray(face).resize((96, 96)).save(folder / "crops" / f"face{i:02d}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return folder


def test_images_give_the_same_faces_as_one_process_and_errors_as_rows(photos, tmp_path):
    from emodetect import EmotionDetector

    report = run_batch(photos, tmp_path / "out", workers=2)
    assert report.kind == "images" and report.processed == report.inputs and report.errors == 1
    table = pd.read_parquet(tmp_path / "out")
    bad = table[table["source"].str.endswith("broken.jpg")]
    assert len(bad) == 1 and "not an image" in bad["error"].iloc[0]
    detector = EmotionDetector()
    for source, rows in table[table["error"].isna()].groupby("source"):
        expected = detector.detect(source).to_rows()
        faces = rows[rows["face_id"] >= 0].sort_values("face_id")
        assert len(faces) == len(expected), source
        for (_, got), want in zip(faces.iterrows(), expected):
            assert got["label"] == want["label"] and abs(got["confidence"] - want["confidence"]) < 1e-3
            assert (got["x"], got["y"], got["width"]) == (want["x"], want["y"], want["width"])
    assert (table["face_id"] == -1).any()  # the cat: no face, still one row, so a rerun skips it


def test_a_rerun_skips_what_is_done_and_adds_only_the_new(photos, tmp_path):
    part = tmp_path / "part"
    shutil.copytree(photos, part, ignore=shutil.ignore_patterns("face1*"))
    first = run_batch(part, tmp_path / "out", workers=2)
    again = run_batch(part, tmp_path / "out", workers=2)
    assert again.processed == 0 and again.skipped == first.inputs
    for name in [p.name for p in (photos / "crops").glob("face1*")]:
        shutil.copy(photos / "crops" / name, part / "crops" / name)
    grown = run_batch(part, tmp_path / "out", workers=2)
    assert grown.processed == 10 and grown.skipped == first.inputs
    table = pd.read_parquet(tmp_path / "out")
    per_face = table.groupby(["source", table["face_id"].fillna(-2)]).size()  # no row written twice
    assert per_face.max() == 1 and table["source"].nunique() == grown.inputs


def test_recordings_and_texts(tmp_path):
    import soundfile as sf

    from emodetect import TextEmotion, VoiceEmotion

    audio = tmp_path / "audio"
    audio.mkdir()
    for i in range(3):
        sf.write(audio / f"r{i}.wav", speech_like(2.0 + 3 * i, seed=i), 16_000)
    (audio / "broken.wav").write_bytes(b"RIFF\x00\x00")
    report = run_batch(audio, tmp_path / "voice", workers=2)
    assert report.kind == "audio" and report.errors == 1
    table = pd.read_parquet(tmp_path / "voice")
    long = VoiceEmotion().predict(audio / "r2.wav")
    rows = table[table["source"].str.endswith("r2.wav")].sort_values("start_s")
    assert list(rows["label"]) == [w["label"] for w in long.to_rows(timeline=True)]
    assert set(rows["clip_label"]) == {long.label}

    texts = tmp_path / "posts.csv"
    texts.write_text("id,body\n1,Thank you so much!\n2,This is the worst service ever\n3,\n4,I am so scared\n")
    report = run_batch(texts, tmp_path / "texts", workers=2, column="body")
    assert report.kind == "texts" and report.inputs == 4
    table = pd.read_parquet(tmp_path / "texts").sort_values("source")
    expected = TextEmotion().predict(["Thank you so much!", "This is the worst service ever", "", "I am so scared"])
    assert list(table["label"].fillna("")) == [r.label or "" for r in expected]
    assert table["source"].iloc[0].endswith("posts.csv:2")  # the CSV line the text is on
    assert abs(table["p_happy"].iloc[0] - expected[0].probabilities["happy"]) < 1e-3
    gratitude = expected[0].heads["goemotions"].probabilities["gratitude"]  # the joint default's heads
    assert abs(table["p_goemotions:gratitude"].iloc[0] - gratitude) < 1e-3


def test_the_command_line_runs_its_own_local_ray_and_keeps_rays_logs_off_the_terminal(photos, tmp_path):
    done = subprocess.run([sys.executable, "-m", "emodetect", "batch", str(photos / "crops"), "--out",
                           str(tmp_path / "cli"), "--workers", "2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "24 processed" in done.stdout and len(done.stdout.splitlines()) == 1
    # Ray's INFO lines, its logged progress and its C++ core's `E ... core_worker.cc` line (16 to 34
    # lines before) go to OUT/_ray.log; --verbose shows them.
    assert done.stderr == ""
    assert (tmp_path / "cli" / "_ray.log").is_file()
    assert len(pd.read_parquet(tmp_path / "cli")) >= 24  # the log beside the Parquet files is not read as data
