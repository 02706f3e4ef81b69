"""Every plot speaks one language: each emotion in its colour, a line at 0.999 drawn above the
frame, not under it, and no empty band around the legend (issue 32, point 10)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from emodetect.labels import EMOTIONS
from emodetect.vision.draw import COLOURS


def _pixels_of(png: Path, label: str, tolerance: int = 40) -> int:
    """How many pixels of `png` have the colour of `label` (anti-aliasing allowed for)."""
    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    return int((np.abs(rgb - np.array(COLOURS[label])).max(axis=2) < tolerance).sum())


def _longest_blank_band(png: Path, top_share: float = 0.5) -> int:
    """The most white rows in a row in the top part of `png`."""
    rgb = np.asarray(Image.open(png).convert("L"))
    blank = (rgb[: int(len(rgb) * top_share)] > 250).all(axis=1)
    longest = run = 0
    for row in blank:
        run = run + 1 if row else 0
        longest = max(longest, run)
    return longest


def _certain(label: str, labels=EMOTIONS) -> np.ndarray:
    p = np.full(len(labels), 0.001 / (len(labels) - 1))
    p[list(labels).index(label)] = 0.999
    return p


def test_face_timeline_draws_a_line_at_0999_and_has_no_empty_band(tmp_path):
    from emodetect.vision.video import plot_timeline

    png = tmp_path / "clip_emotions.png"
    assert plot_timeline([(i / 10, 0, _certain("sad")) for i in range(30)], list(EMOTIONS), png, title="clip.mp4")
    assert _pixels_of(png, "sad") > 500  # hidden under the frame's top line before
    assert _longest_blank_band(png) < 20  # 60 blank rows between the title and the legend before


def test_video_streams_draw_a_cue_at_0999_above_the_frame(tmp_path):
    from emodetect.multimodal import Segment, VideoAnalysis, plot_streams
    from emodetect.vision.video import VideoSummary

    faces = VideoSummary("clip.mp4", 30, 30, 10.0, 3.0)
    segments = [Segment(0.0, 1.5, fused=_certain("sad")), Segment(1.5, 3.0, fused=_certain("sad"))]
    png = plot_streams(VideoAnalysis("clip.mp4", faces, None, [], segments), tmp_path / "clip_timeline.png",
                       title="clip.mp4")
    assert _pixels_of(png, "sad") > 500
    assert _longest_blank_band(png) < 20


def test_voice_timeline_uses_the_colour_of_each_emotion(tmp_path):
    """The voice timeline drew matplotlib's default colours: happy in red, angry in blue."""
    from emodetect.voice.pipeline import VoiceResult, VoiceWindow

    labels = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "calm"]
    windows = [VoiceWindow(1.5 * i, 1.5 * i + 3, False, "happy", 0.999, dict(zip(labels, _certain("happy", labels))))
               for i in range(12)]
    result = VoiceResult("call.wav", 19.5, 16_000, "default", labels, "happy", 0.999,
                         dict(zip(labels, _certain("happy", labels))), windows)
    png = result.plot(tmp_path / "call_timeline.png")
    assert _pixels_of(png, "happy") > 500  # its line at 0.999, in happy's yellow
    assert _pixels_of(png, "calm") > 20  # calm has a colour of its own (in the legend and at 0)


def test_text_shares_are_drawn_in_each_emotions_colour(tmp_path):
    from emodetect.text.pipeline import TextResult, TextResults

    probabilities = {"happy": 0.5, "angry": 0.5}
    results = TextResults([TextResult("t", label, [label], probabilities, "m") for label in ("happy", "angry")])
    png = results.plot_shares(tmp_path / "shares.png")
    assert _pixels_of(png, "happy", 10) > 500 and _pixels_of(png, "angry", 10) > 500
