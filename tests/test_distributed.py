"""`emodetect batch` on a local two-worker Ray: Parquet that pandas reads, the same answers as
one process, bad inputs as error rows, and reruns that skip what is done; a run stopped midway
keeps its finished batches and leaves no Ray process, odd file names and damaged output files
do not fail the job (issue 34, point 6)."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
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


def test_a_name_that_is_not_utf8_is_scored_and_kept_as_a_row(tmp_path):
    # b"bad\xff.jpg" once failed the whole job with nothing written: Parquet strings are UTF-8.
    folder = tmp_path / "odd"
    folder.mkdir()
    shutil.copy(SAMPLES / "grace_hopper.jpg", folder / "good.jpg")
    shutil.copy(SAMPLES / "grace_hopper.jpg", folder / os.fsdecode(b"bad\xff.jpg"))
    (folder / os.fsdecode(b"broken\xfe.jpg")).write_bytes(b"\xff\xd8 not really a jpeg")
    report = run_batch(folder, tmp_path / "out", workers=2, batch_size=1)
    assert (report.inputs, report.processed, report.errors) == (3, 3, 1)
    table = pd.read_parquet(tmp_path / "out")
    odd, good = (table[table["source"].str.endswith(name)] for name in ("bad\\xff.jpg", "good.jpg"))
    assert len(odd) == len(good) >= 1 and list(odd["label"]) == list(good["label"])
    assert odd["error"].isna().all()
    broken = table[table["source"].str.endswith("broken\\xfe.jpg")]
    assert len(broken) == 1 and "not an image" in broken["error"].iloc[0]
    again = run_batch(folder, tmp_path / "out", workers=2)  # the escaped names are found done
    assert (again.skipped, again.processed) == (3, 0)


def test_an_unreadable_output_file_is_moved_aside_with_a_warning_and_its_inputs_scored_again(tmp_path, caplog):
    import pyarrow.parquet as pq

    texts = tmp_path / "posts.txt"
    texts.write_text("Thank you so much!\nI am so scared\nThis is the worst service ever\nWhat a lovely day\n")
    out = tmp_path / "out"
    run_batch(texts, out, workers=2, batch_size=1)
    written = sorted(out.glob("*.parquet"))
    cut = written[0]
    lost = set(pq.read_table(cut).column("source").to_pylist())
    cut.write_bytes(cut.read_bytes()[:-30])  # a file cut short, as a killed writer leaves it
    (out / "stray.parquet").write_bytes(b"PAR1 not parquet at all")
    with caplog.at_level(logging.WARNING, logger="emodetect.distributed"):
        again = run_batch(texts, out, workers=2, batch_size=1)
    assert (again.processed, again.skipped) == (len(lost), 4 - len(lost))  # once failed every rerun
    assert len(again.damaged) == 2 and "2 damaged output file(s) moved aside" in again.to_text()
    warned = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert str(cut) in warned and str(out / "stray.parquet") in warned
    assert (out / f"_damaged-{cut.name}").is_file() and (out / "_damaged-stray.parquet").is_file()
    table = pd.read_parquet(out)  # the files moved aside are skipped by Parquet readers
    assert sorted(table["source"]) == sorted(f"{texts.resolve()}:{i}" for i in range(1, 5))


# --- a run stopped midway -------------------------------------------------------------------

def _processes_of(run_mark: str, session: int) -> list[str]:
    """Processes in the child's session (Ray's stay in it), or carrying the run's mark in their
    environment (a process that left the session, unless it retitled itself as ray:: ones do)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
            environ = Path(f"/proc/{name}/environ").read_bytes()
            command = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and (int(fields[3]) == session or run_mark.encode() in environ.split(b"\0")):
            found.append(f"{name} {command[:100]}")
    return found


def _stop_midway(inputs: Path, out: Path, sig: int, parts_first: int) -> tuple[subprocess.CompletedProcess, list]:
    """Run the command line, send `sig` once `parts_first` batch files are on disk (the run still
    going), then wait for it and for every process it started to end; what is left alive."""
    run_mark = f"EMODETECT_TEST_RUN={uuid.uuid4().hex}"
    env = dict(os.environ, EMODETECT_TEST_RUN=run_mark.split("=", 1)[1])
    child = subprocess.Popen([sys.executable, "-m", "emodetect", "batch", str(inputs), "--out", str(out),
                              "--workers", "1", "--batch-size", "1"], env=env, start_new_session=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 600  # Ray's start-up on a busy machine, not a timing under test
        while len(list(out.glob("*.parquet"))) < parts_first:
            assert child.poll() is None, "the run ended before it was stopped: " + child.stderr.read()[-2000:]
            if time.monotonic() > deadline:
                ray_log = (out / "_ray.log").read_text(errors="replace")[-2000:] if (out / "_ray.log").exists() else ""
                pytest.fail(f"fewer than {parts_first} batches written in 600 s; Ray's log ends: {ray_log}")
            time.sleep(0.05)
        child.send_signal(sig)
        stdout, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    left = _processes_of(run_mark, child.pid)
    deadline = time.monotonic() + 60
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = _processes_of(run_mark, child.pid)
    return subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr), left


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="scans /proc for Ray's processes")
def test_a_stopped_run_keeps_its_finished_batches_stops_ray_and_a_rerun_resumes(tmp_path):
    import pyarrow.parquet as pq

    # 48 photos, one per batch: the run is stopped after a few, long before its end.
    inputs = tmp_path / "photos"
    inputs.mkdir()
    photos = sorted(SAMPLES.glob("*.jpg"))
    for i in range(48):
        shutil.copy(photos[i % len(photos)], inputs / f"p{i:02d}.jpg")
    out = tmp_path / "out"

    def sources_on_disk() -> set[str]:
        return {s for f in out.glob("*.parquet") for s in pq.read_table(f).column("source").to_pylist()}

    # SIGTERM: the driver shuts Ray down and says how to resume; the finished batches stay.
    done, left = _stop_midway(inputs, out, signal.SIGTERM, parts_first=2)
    assert done.returncode == 130 and "the same command resumes" in done.stderr, done.stderr[-2000:]
    assert left == [], left  # four Ray processes once outlived the driver
    first = sources_on_disk()  # every file whole: a stopped writer leaves only a dot name
    assert 2 <= len(first) < 48  # results were written only at the end: none, once

    # SIGKILL: nothing runs in the driver; the guard process ends Ray.
    done, left = _stop_midway(inputs, out, signal.SIGKILL, parts_first=len(first) + 1)
    assert done.returncode == -signal.SIGKILL and left == [], left
    second = sources_on_disk()
    assert first < second and len(second) < 48

    report = run_batch(inputs, out, workers=2)
    assert (report.skipped, report.processed) == (len(second), 48 - len(second))
    table = pd.read_parquet(out)
    assert table["source"].nunique() == 48  # every photo once: no batch written twice
    assert table.groupby(["source", table["face_id"].fillna(-2)]).size().max() == 1
