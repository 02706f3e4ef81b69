"""`emodetect video` on one timeline: faces, the voice of the sound track and the words of the
subtitles, fused per segment; the annotated mp4 in H.264 with its sound."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import speech_like
from emodetect.labels import EMOTIONS
from emodetect.multimodal import (Cue, SubtitleError, analyse_video, fuse, read_subtitles,
                                  to_shared)

av = pytest.importorskip("av")
SAMPLES = Path(__file__).resolve().parent.parent / "emodetect" / "assets" / "samples"
FPS, SECONDS, RATE = 10, 5, 16_000
SRT = """1
00:00:00,500 --> 00:00:02,000
Thank you so much, this made my day!

2
00:00:02,500 --> 00:00:04,500
I can't believe they cancelled it. This is awful.
"""


def write_clip(path: Path, audio: str = "speech") -> Path:
    """A moving face from a sample photo, with a speech-like sound track ("speech"), none ("none"),
    or an audio stream whose packets are garbage ("broken")."""
    from PIL import Image

    frame = np.asarray(Image.open(SAMPLES / "astronaut.jpg").convert("RGB").resize((480, 360)))
    out = av.open(str(path), "w")
    video = out.add_stream("libx264", rate=FPS)
    video.width, video.height, video.pix_fmt = 480, 360, "yuv420p"
    sound = None
    if audio != "none":
        sound = out.add_stream("aac", rate=RATE)
        sound.layout = "mono"
    for i in range(FPS * SECONDS):
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.roll(frame, 2 * i, axis=1)), format="rgb24")
        picture.pts = i
        for packet in video.encode(picture):
            out.mux(packet)
    for packet in video.encode(None):
        out.mux(packet)
    if audio == "speech":
        samples = np.concatenate([np.zeros(RATE // 2, np.float32), speech_like(SECONDS - 0.5, RATE)])
        for start in range(0, len(samples), 1024):
            chunk = samples[start:start + 1024][None]
            block = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="mono")
            block.sample_rate, block.pts = RATE, start
            for packet in sound.encode(block):
                out.mux(packet)
        for packet in sound.encode(None):
            out.mux(packet)
    elif audio == "broken":
        rng = np.random.default_rng(0)
        for k in range(40):
            packet = av.Packet(rng.integers(0, 256, 200, dtype=np.uint8).tobytes())
            packet.stream = sound
            packet.pts = packet.dts = k * 1024
            packet.time_base = sound.time_base
            out.mux(packet)
    out.close()
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("multimodal")
    (folder / "clip.srt").write_text(SRT)
    return write_clip(folder / "clip.mp4"), folder / "clip.srt"


def _segments(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_video_with_subtitles_writes_every_output_with_three_aligned_streams(clip, tmp_path):
    from emodetect.media import probe

    video, srt = clip
    done = subprocess.run([sys.executable, "-m", "emodetect", "video", str(video), "--subtitles", str(srt),
                           "--out", str(tmp_path), "--captions"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for name in ("emotions.csv", "segments.csv", "timeline.png", "emotions.png", "summary.json", "annotated.mp4"):
        assert (tmp_path / f"clip_{name}").stat().st_size > 0, name
    rows = _segments(tmp_path / "clip_segments.csv")
    cues = read_subtitles(srt)
    assert [(float(r["start_s"]), float(r["end_s"]), r["words"]) for r in rows] == \
           [(c.start_s, c.end_s, c.text) for c in cues]  # one segment per cue, on the cue's span
    assert all(r["streams"] == "face+voice+text" for r in rows)
    assert rows[0]["text_label"] == "happy"  # "Thank you so much, this made my day!"
    summary = json.loads((tmp_path / "clip_summary.json").read_text())
    assert summary["voice"]["voiced_windows"] >= 1 and summary["text"]["cues"] == 2
    assert summary["faces"]["faces"] and summary["fused"]["label"] in EMOTIONS
    streams = {s["type"]: s for s in probe(tmp_path / "clip_annotated.mp4")["streams"]}
    assert streams["video"]["codec"] == "h264" and streams["video"]["pix_fmt"] == "yuv420p"
    assert streams["audio"]["codec"] == "aac"
    assert abs(streams["audio"]["duration_s"] - SECONDS) < 0.3 and abs(streams["video"]["duration_s"] - SECONDS) < 0.3


def test_voice_windows_sit_where_the_sound_is(clip, tmp_path):
    video, _ = clip
    analysis = analyse_video(video, out_dir=tmp_path, save_video=False, segment_s=1.0)
    first = analysis.segments[0]  # 0-1 s: the first half second is silence, then speech
    assert [(s.start_s, s.end_s) for s in analysis.segments] == [(float(t), float(t + 1)) for t in range(SECONDS)]
    assert analysis.voice is not None and analysis.voice.windows[0].start_s >= 0.3
    assert all("voice" in s.streams and "face" in s.streams for s in analysis.segments[1:])
    assert "text" not in first.streams
    frames = analysis.to_df("faces")
    assert len(frames) >= FPS * SECONDS and set(EMOTIONS) <= set(frames.columns)
    assert len(analysis.to_df("segments")) == SECONDS and len(analysis.to_df("voice")) == len(analysis.voice.windows)


def test_video_without_sound_gives_faces_and_says_so(tmp_path):
    video = write_clip(tmp_path / "mute.mp4", audio="none")
    analysis = analyse_video(video, out_dir=tmp_path)
    assert analysis.voice is None and "the video has no sound track" in analysis.notes
    assert analysis.segments and all(set(s.streams) == {"face"} for s in analysis.segments)
    from emodetect.media import probe

    assert [s["type"] for s in probe(tmp_path / "mute_annotated.mp4")["streams"]] == ["video"]


def test_unreadable_sound_track_still_gives_faces_with_a_note(tmp_path):
    video = write_clip(tmp_path / "broken.mp4", audio="broken")
    analysis = analyse_video(video, out_dir=tmp_path, save_video=False)
    assert analysis.faces.faces  # the pictures were read
    assert any("sound" in note for note in analysis.notes), analysis.notes
    assert all("face" in s.streams for s in analysis.segments)


def test_fusion_is_the_weighted_mean_and_agreement_counts_streams():
    happy, sad = np.eye(len(EMOTIONS))[EMOTIONS.index("happy")], np.eye(len(EMOTIONS))[EMOTIONS.index("sad")]
    fused, agreement = fuse({"face": happy, "voice": happy, "text": sad})
    assert EMOTIONS[int(fused.argmax())] == "happy" and agreement == pytest.approx(2 / 3)
    fused, agreement = fuse({"face": happy, "text": sad}, weights={"text": 3.0})
    assert EMOTIONS[int(fused.argmax())] == "sad" and fused.sum() == pytest.approx(1.0) and agreement == 0.5
    assert fuse({}) == (None, None)


def test_every_model_speaks_the_shared_labels():
    calm = to_shared({"calm": 0.6, "happy": 0.4})
    assert calm[EMOTIONS.index("neutral")] == pytest.approx(0.6)
    joy = to_shared({"joy": 0.5, "love": 0.3, "sadness": 0.2})  # dair-emotion: love has no shared meaning
    assert joy[EMOTIONS.index("happy")] == pytest.approx(0.5 / 0.7) and joy.sum() == pytest.approx(1.0)
    assert to_shared({"love": 1.0}) is None


def test_subtitles_in_srt_and_vtt_read_alike_and_bad_ones_name_the_file(tmp_path):
    (tmp_path / "a.srt").write_text(SRT)
    (tmp_path / "a.vtt").write_text("WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nThank you so much, this made my day!\n\n"
                                    "00:00:02.500 --> 00:00:04.500\nI can't believe they cancelled it.\nThis is awful.\n")
    assert read_subtitles(tmp_path / "a.srt") == read_subtitles(tmp_path / "a.vtt")
    assert read_subtitles(tmp_path / "a.srt")[0] == Cue(0.5, 2.0, "Thank you so much, this made my day!")
    (tmp_path / "bad.srt").write_text("1\nthis is not a time line\nhello\n")
    with pytest.raises(SubtitleError, match="bad.srt"):
        read_subtitles(tmp_path / "bad.srt")
    with pytest.raises(SubtitleError, match="no such subtitle file"):
        read_subtitles(tmp_path / "missing.vtt")


def test_a_vtt_cue_with_an_impossible_time_is_reported_not_dropped(tmp_path):
    vtt = tmp_path / "bad.vtt"
    vtt.write_text("WEBVTT\n\n00:00.500 --> 00:02.000\nhello there\n\n"
                   "00:99:99.999 --> 01:40:00.000\nthis cue would vanish\n\n00:03.000 --> 00:04.000 align:start\nthird\n")
    with pytest.raises(SubtitleError, match="line 6: '00:99:99.999 --> 01:40:00.000'"):
        read_subtitles(vtt)
    vtt.write_text("WEBVTT\n\n00:00.500 --> 00:02.000\nhello there\n\n00:03.000 --> 00:04.000 align:start\nthird\n")
    assert [c.text for c in read_subtitles(vtt)] == ["hello there", "third"]


def test_summary_reports_shares_of_time_not_mostly_one_label():
    """One happy and one angry segment said `mostly angry` (issue 32, point 4): the summary gives
    each fused label's share of the labelled time, and each face track's share of frames."""
    from emodetect.multimodal import Segment, VideoAnalysis
    from emodetect.vision.detectors import Detection
    from emodetect.vision.track import FaceTracker
    from emodetect.vision.video import VideoSummary, _track_summaries

    def onehot(label: str) -> np.ndarray:
        return np.eye(len(EMOTIONS))[EMOTIONS.index(label)]

    tracker = FaceTracker(smoothing=0)
    for i in range(10):
        tracker.update([Detection(100, 100, 80, 80, 0.9)], onehot("happy" if i < 6 else "angry")[None], i / 10)
    faces = VideoSummary("clip.mp4", 10, 10, 10.0, 1.0, faces=_track_summaries(tracker, list(EMOTIONS)))
    assert faces.faces[0]["frame_shares"] == {"happy": 0.6, "angry": 0.4} and faces.faces[0]["dominant"] == "happy"
    segments = [Segment(0.5, 2.0, fused=onehot("happy")), Segment(2.5, 4.5, fused=onehot("angry"))]
    analysis = VideoAnalysis("clip.mp4", faces, None, [], segments)
    assert analysis.label_shares() == {"angry": 0.5714, "happy": 0.4286}
    assert analysis.to_dict()["fused"]["time_shares"] == {"angry": 0.5714, "happy": 0.4286}
    text = analysis.to_text()
    assert "mostly" not in text
    assert "share of labelled time: angry 57%, happy 43% (2 segment(s))" in text
    assert "share of its frames by top label: happy 60%, angry 40%" in text
