"""Videos and the webcam loop on a short clip made here from a sample photo."""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from emodetect.cli import app
from emodetect.vision.detectors import Detection
from emodetect.vision.pipeline import EmotionDetector
from emodetect.vision.track import FaceTracker
from emodetect.vision.video import VideoError, analyse_video
from emodetect.vision.webcam import run_webcam

SAMPLES = Path(__file__).resolve().parent.parent / "emodetect" / "assets" / "samples"
FRAMES, FPS = 12, 10


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """12 frames of 640x480 at 10 fps: the group photo drifting right by 4 px a frame."""
    import cv2

    group = np.asarray(Image.open(SAMPLES / "group.jpg").convert("RGB"))[:, :, ::-1]
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (640, 480))
    for i in range(FRAMES):
        move = np.float32([[0.8, 0, -60 + 4 * i], [0, 0.8, -10]])
        writer.write(cv2.warpAffine(group, move, (640, 480), borderMode=cv2.BORDER_REPLICATE))
    writer.release()
    return path


@pytest.fixture(scope="module")
def detector() -> EmotionDetector:
    return EmotionDetector(threads=1)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_video_gives_a_row_per_sampled_frame_and_face_with_stable_ids(detector, clip, tmp_path):
    summary = analyse_video(detector, clip, tmp_path, every=2, save_video=True)
    rows = _read_csv(tmp_path / "clip_emotions.csv")
    per_frame = defaultdict(list)
    for row in rows:
        per_frame[int(row["frame"])].append(row)
    assert sorted(per_frame) == list(range(0, FRAMES, 2))
    counts = {len(v) for v in per_frame.values()}
    assert min(counts) >= 3  # the clip holds 5 faces; the two smallest are about 35 px
    # Stable ids: no face gets a new id as it drifts, so there are as many ids as faces in a frame.
    ids = {int(r["face_id"]) for r in rows}
    assert len(ids) == max(counts)
    for face_id in ids:
        xs = [int(r["x"]) for r in rows if int(r["face_id"]) == face_id]
        assert all(0 <= b - a <= 16 for a, b in zip(xs, xs[1:])), f"face {face_id} jumped: {xs}"
    assert float(per_frame[2][0]["time_s"]) == pytest.approx(2 / FPS, abs=1e-3)
    probs = np.array([[float(r[k]) for k in detector.labels] for r in rows])
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-2)
    assert summary.frames_analysed == FRAMES // 2 and len(summary.faces) == len(ids)
    assert summary.frames_read == FRAMES and summary.duration_s == pytest.approx(FRAMES / FPS)
    saved = json.loads((tmp_path / "clip_summary.json").read_text())
    assert saved["frames_analysed"] == FRAMES // 2
    assert Image.open(tmp_path / "clip_emotions.png").size[0] > 300
    import cv2

    video = cv2.VideoCapture(str(tmp_path / "clip_annotated.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES // 2
    video.release()


def test_detect_every_n_frames_reads_emotions_every_frame_at_the_last_boxes(detector, clip):
    import cv2

    from emodetect.vision.track import FrameAnalyser

    calls = []
    face_detector = detector.face_detector
    original = face_detector.detect
    face_detector.detect = lambda rgb: calls.append(1) or original(rgb)
    try:
        analyser = FrameAnalyser(detector, smoothing=0, detect_every=3)
        capture = cv2.VideoCapture(str(clip))
        results = []
        for i in range(FRAMES):
            ok, bgr = capture.read()
            assert ok
            results.append(analyser.analyse(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), i / FPS))
        capture.release()
    finally:
        face_detector.detect = original
    assert len(calls) == FRAMES // 3
    ids = [[f.id for f in r.faces] for r in results]
    assert all(ids[i] == ids[i - i % 3] for i in range(FRAMES)) and min(map(len, ids)) >= 3
    assert len({i for frame in ids for i in frame}) == max(map(len, ids))  # stable ids
    # Between detections the boxes stay put, but the crops (and so the emotions) are re-read.
    assert [f.box for f in results[1].faces] == [f.box for f in results[0].faces]
    assert results[3].faces[0].box.x > results[0].faces[0].box.x  # re-detected: the clip drifts right
    with pytest.raises(ValueError, match="detect_every"):
        FrameAnalyser(detector, detect_every=0)


def test_tracker_keeps_ids_and_smooths_with_a_time_constant():
    tracker = FaceTracker(smoothing=0.5)
    a, b = np.eye(7)[3], np.eye(7)[0]
    first = tracker.update([Detection(100, 100, 50, 50, 0.9), Detection(300, 100, 50, 50, 0.9)], np.stack([a, a]), 0.0)
    assert [i for i, _ in first] == [0, 1]
    # Both faces move a little and come in the other order; a third face appears far away.
    second = tracker.update([Detection(306, 102, 50, 50, 0.9), Detection(105, 98, 50, 50, 0.9),
                             Detection(500, 300, 40, 40, 0.9)], np.stack([b, b, b]), 0.5)
    assert [i for i, _ in second] == [1, 0, 2]
    keep = math.exp(-1.0)  # dt = 0.5 s = the time constant
    assert np.allclose(second[0][1], keep * a + (1 - keep) * b)
    assert np.allclose(second[2][1], b)  # a new face starts from its own reading
    off = FaceTracker(smoothing=0.0)
    off.update([Detection(0, 0, 10, 10, 1)], a[None], 0.0)
    assert np.allclose(off.update([Detection(1, 0, 10, 10, 1)], b[None], 0.1)[0][1], b)


def test_video_cli_writes_every_output(clip, tmp_path):
    result = CliRunner().invoke(app, ["video", str(clip), "--out", str(tmp_path), "--every", "3", "--blur",
                                      "--smoothing", "0"])
    assert result.exit_code == 0, result.output
    assert "face #0" in result.stdout and "4 of" in result.stdout
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["clip_annotated.mp4", "clip_emotions.csv", "clip_emotions.png", "clip_segments.csv",
                     "clip_summary.json", "clip_timeline.png"]
    assert sorted({int(r["frame"]) for r in _read_csv(tmp_path / "clip_emotions.csv")}) == [0, 3, 6, 9]


def test_video_cli_reports_a_file_that_is_not_a_video(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    result = CliRunner().invoke(app, ["video", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "bad.mp4" in result.stderr
    result = CliRunner().invoke(app, ["video", str(tmp_path / "gone.mp4")])
    assert result.exit_code == 1 and "no such video file" in result.stderr


def write_landscape(path: Path, frames: int = 8, fps: int = 10) -> Path:
    """A clip with no face in it: sky over a field, drifting, written with PyAV."""
    from conftest import write_clip

    sky = np.zeros((240, 320, 3), np.uint8)
    sky[:140] = (120, 170, 230)
    sky[140:] = (60, 140, 50)
    return write_clip(path, [np.roll(sky, 3 * i, axis=1) for i in range(frames)], fps)


def test_frames_without_a_face_are_analysed_not_a_crash(detector, tmp_path):
    landscape = write_landscape(tmp_path / "field.mp4")
    summary = analyse_video(detector, landscape, tmp_path / "out", save_video=False)
    assert summary.frames_analysed == 8 and summary.faces == []
    assert all(faces == [] for _, _, faces in summary.frame_faces)
    result = CliRunner().invoke(app, ["video", str(landscape), "--out", str(tmp_path / "cli"), "--no-voice"])
    assert result.exit_code == 0, result.output
    assert "0 face track(s)" in result.stdout


def test_webcam_runs_headless_on_a_video_source(clip):
    result = CliRunner().invoke(app, ["webcam", "--source", str(clip), "--max-frames", "3", "--no-window"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["0", "1", "2"]
    assert "#0:" in lines[0] and "3 frames" in result.stderr
    # Live video defaults to the small real-time face model when the package bundles one.
    from emodetect.runtime import bundled_models

    live = "realtime-int8" in {m.name for m in bundled_models() if m.modality == "vision"}
    assert f"model {'realtime-int8' if live else 'default'}" in result.stderr


def test_webcam_reports_a_missing_source_and_hands_results_to_the_callback(detector, tmp_path):
    with pytest.raises(VideoError, match="no such video file"):
        run_webcam(detector, str(tmp_path / "none.mp4"), window=False)
    seen = []
    stats = run_webcam(detector, str(SAMPLES / "astronaut.jpg"), window=False, max_frames=1, on_result=lambda i, t, r: seen.append(len(r.faces)))
    assert stats["frames"] == 1 and seen == [1]  # OpenCV reads a still image as a one-frame video


class _FakeCapture:
    """A stream of `n` numbered frames at 10 fps, counting how many were decoded."""

    def __init__(self, n: int):
        self.n, self.position, self.decoded = n, 0, 0

    def get(self, prop):
        return 10.0

    def grab(self) -> bool:
        if self.position >= self.n:
            return False
        self.position += 1
        return True

    def read(self):
        if self.position >= self.n:
            return False, None
        self.position += 1
        self.decoded += 1
        return True, np.full((2, 2, 3), self.position - 1, np.uint8)


@pytest.mark.parametrize("n, every, max_frames, indices, read", [
    (12, 2, None, [0, 2, 4, 6, 8, 10], 12),
    (12, 3, None, [0, 3, 6, 9], 12),
    (10, 1, 3, [0, 1, 2], 3),
])
def test_every_nth_frame_is_decoded_and_every_frame_counted(n, every, max_frames, indices, read):
    from emodetect.vision.video import frames

    capture, counter = _FakeCapture(n), {"read": 0}
    got = list(frames(capture, every, max_frames, counter))
    assert [i for i, _, _ in got] == indices
    assert [int(f[0, 0, 0]) for _, _, f in got] == indices  # the frame is the one its index says
    assert [t for _, t, _ in got] == pytest.approx([i / 10 for i in indices])
    assert capture.decoded == len(indices)  # skipped frames are grabbed, not decoded
    assert counter["read"] == read


def test_timeline_chart_says_when_it_leaves_faces_out(tmp_path, monkeypatch):
    import numpy as np
    from matplotlib.axes import Axes

    from emodetect.vision.video import plot_timeline

    titles = []
    real = Axes.set_title  # over the top axes (constrained layout puts a suptitle over the legend)
    monkeypatch.setattr(Axes, "set_title", lambda self, t, *a, **k: (titles.append(t), real(self, t, *a, **k))[1])
    labels = ["angry", "happy"]
    series = [(t / 10, face, np.array([0.3, 0.7])) for face in range(8) for t in range(face + 2)]
    assert plot_timeline(series, labels, tmp_path / "t.png", title="clip.mp4")
    assert titles == ["clip.mp4; the 6 longest-tracked of 8 faces shown (all are in the CSV)"]
    assert (tmp_path / "t.png").stat().st_size > 1000


def _face_at(detector, name: str, centre=(160, 110), height=100, size=(320, 240)) -> np.ndarray:
    """A sample photo moved and scaled so its (first) face fills the same box in every clip."""
    import cv2

    rgb = np.asarray(Image.open(SAMPLES / name).convert("RGB"))
    d = detector.face_detector.detect(rgb)[0]
    scale = height / d.height
    move = np.float32([[scale, 0, centre[0] - scale * (d.x + d.width / 2)],
                       [0, scale, centre[1] - scale * (d.y + d.height / 2)]])
    return cv2.warpAffine(rgb, move, size, borderMode=cv2.BORDER_REPLICATE)


def test_a_cut_to_another_person_starts_a_new_track(detector, tmp_path):
    """Grace Hopper for 0.6 s, then a cut to the astronaut with her face in the same box: one track
    carried the first face's smoothed emotions into the second (issue 32, point 4)."""
    from conftest import write_clip

    first, second = _face_at(detector, "grace_hopper.jpg"), _face_at(detector, "astronaut.jpg")
    clip = write_clip(tmp_path / "cut.mp4", [first] * 6 + [second] * 6, fps=10)
    summary = analyse_video(detector, clip, tmp_path, save_video=False, smoothing=2.0)
    assert [(f["first_s"], f["last_s"]) for f in summary.faces] == [(0.0, 0.5), (0.6, 1.1)]
    assert summary.scene_cuts_s == [0.6] and "2 face track(s), 1 scene cut(s)" in summary.to_text()
    rows = [r for r in _read_csv(tmp_path / "cut_emotions.csv") if r["frame"] == "6"]
    fresh = detector.predict_crops(detector.crops(second, detector.face_detector.detect(second)))[0]
    # The first frame after the cut is the astronaut's own reading, not a blend with Grace's.
    assert np.allclose([float(rows[0][k]) for k in detector.labels], fresh, atol=0.02)


def test_a_face_that_changes_size_abruptly_is_another_face():
    """A close-up at the same place as a wide shot's face is someone new, not the face grown."""
    tracker = FaceTracker(smoothing=0.5)
    a = np.eye(7)[3][None]
    assert tracker.update([Detection(100, 100, 60, 60, 0.9)], a, 0.0)[0][0] == 0
    assert tracker.update([Detection(98, 101, 66, 64, 0.9)], a, 0.1)[0][0] == 0  # detector jitter
    assert tracker.update([Detection(70, 70, 130, 130, 0.9)], a, 0.2)[0][0] == 1
    tracker.cut()
    assert tracker.update([Detection(70, 70, 130, 130, 0.9)], a, 0.3)[0][0] == 2
