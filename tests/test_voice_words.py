"""The words of speech (the speech extra): voice results carry a timed transcript with each
utterance's text emotion; a video without subtitles reads the words spoken; without the extra
everything works as before and says once how to get the words."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import emodetect
from emodetect.errors import MissingExtra
from emodetect.voice.pipeline import VoiceEmotion
from emodetect.voice.words import words_available

from conftest import write_clip

SAMPLES = Path(emodetect.__file__).parent / "assets" / "samples"
SPEECH = SAMPLES / "speech.flac"
needs_speech = pytest.mark.skipif(not words_available(), reason="needs the speech extra")


def words_of(text: str) -> set[str]:
    return set("".join(c if c.isalnum() else " " for c in text.lower()).split())


def test_without_the_extra_voice_works_and_names_the_extra(monkeypatch):
    monkeypatch.setattr("emodetect.voice.pipeline.words_available", lambda: False)
    engine = VoiceEmotion()
    assert not engine.words and "pip install 'emodetect[speech]'" in engine.words_hint
    result = engine.predict(SPEECH)
    assert result.label is not None and result.transcript is None and result.words is None
    assert result.to_dict()["transcript"] is None and "words" not in result.to_rows()[0]
    with pytest.raises(MissingExtra, match=r"emodetect\[speech\]"):
        VoiceEmotion(words=True)
    assert VoiceEmotion(words=False).words_hint is None  # asked for nothing: nothing to say


def test_the_cli_says_once_how_to_get_the_words(monkeypatch, tmp_path):
    from emodetect.cli import app

    monkeypatch.setattr("emodetect.voice.pipeline.words_available", lambda: False)
    second = tmp_path / "again.flac"
    second.write_bytes(SPEECH.read_bytes())
    run = CliRunner().invoke(app, ["voice", str(SPEECH), str(second)])
    assert run.exit_code == 0, run.output
    assert run.stderr.count("emodetect[speech]") == 1
    assert "luggage" not in run.stdout


@needs_speech
def test_the_sample_is_heard_word_for_word_with_times_and_emotions():
    result = VoiceEmotion().predict(SPEECH)
    heard = words_of(result.words)
    assert {"believe", "lost", "luggage", "worst", "trip", "life"} <= heard, result.words
    starts = [u.start_s for u in result.transcript]
    assert starts == sorted(starts) and 0 <= starts[0] and result.transcript[-1].end_s <= result.duration_s + 0.5
    text_labels = set(result.transcript[0].probabilities)
    assert {"angry", "happy", "sad"} <= text_labels
    assert all(u.label in text_labels and 0 < u.confidence <= 1 for u in result.transcript)
    body = result.to_dict()
    assert body["transcript"][0]["text"] and body["transcript"][0]["label"] in text_labels
    assert "luggage" in result.to_rows()[0]["words"]


@needs_speech
def test_a_streamed_long_recording_keeps_each_block_s_times(tmp_path):
    speech, rate = sf.read(SPEECH, dtype="float32")
    silence = np.zeros(int(31 * rate), dtype=np.float32)
    path = tmp_path / "long.flac"
    sf.write(path, np.concatenate([speech, silence, speech]), rate)
    result = VoiceEmotion(stream_above_s=10).predict(path)  # read in 30 s blocks
    late = [u for u in result.transcript if u.start_s > 30]
    early = [u for u in result.transcript if u.start_s < 6]
    assert early and late, [u.to_dict() for u in result.transcript]
    assert "luggage" in " ".join(u.text for u in late).lower()
    assert all(u.start_s >= len(speech) / rate + 29 for u in late)


def talking_clip(path: Path) -> Path:
    """Grace Hopper's portrait for 5 s with the spoken sample as its sound track."""
    from PIL import Image

    speech, rate = sf.read(SPEECH, dtype="float32")
    face = np.asarray(Image.open(SAMPLES / "grace_hopper.jpg").convert("RGB").resize((240, 296)))
    return write_clip(path, [face] * int(len(speech) / rate * 4), fps=4, audio=speech, audio_rate=rate)


@needs_speech
def test_emodetect_video_without_subtitles_writes_the_spoken_words_and_their_emotion(tmp_path):
    from emodetect.cli import app

    clip = talking_clip(tmp_path / "talk.mp4")
    run = CliRunner().invoke(app, ["video", str(clip), "--out", str(tmp_path / "out"), "--no-save-video"])
    assert run.exit_code == 0, run.output
    assert "utterance(s) heard" in run.stdout
    rows = list(csv.DictReader(open(tmp_path / "out" / "talk_segments.csv", encoding="utf-8")))
    said = " ".join(r["words"] for r in rows).lower()
    assert "luggage" in said and "worst trip" in said
    assert all(r["text_label"] for r in rows if r["words"])
    summary = json.loads((tmp_path / "out" / "talk_summary.json").read_text())
    assert summary["text"]["words_from"] == "speech"


@needs_speech
def test_subtitles_win_over_the_words_heard(tmp_path):
    from emodetect.multimodal import analyse_video

    clip = talking_clip(tmp_path / "talk.mp4")
    subtitles = tmp_path / "talk.srt"
    subtitles.write_text("1\n00:00:00,000 --> 00:00:04,000\nWhat a lovely surprise!\n", encoding="utf-8")
    analysis = analyse_video(clip, subtitles, tmp_path / "out", save_video=False)
    assert analysis.words_from == "subtitles"
    assert [s.words for s in analysis.segments] == ["What a lovely surprise!"]
    assert analysis.voice.transcript is None  # not transcribed at all: subtitles were given


@needs_speech
def test_the_service_answers_the_words_on_voice_and_video_and_not_with_no_words(tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from emodetect.serve import ServeConfig, create_app

    clip = talking_clip(tmp_path / "talk.mp4").read_bytes()
    with TestClient(create_app(ServeConfig(workers=1))) as client:
        voice = client.post("/v1/voice", files={"file": ("speech.flac", SPEECH.read_bytes(), "audio/flac")})
        assert voice.status_code == 200, voice.text
        said = voice.json()["transcript"]
        assert "luggage" in " ".join(u["text"] for u in said).lower() and all(u["label"] for u in said)
        video = client.post("/v1/video", files={"file": ("talk.mp4", clip, "video/mp4")})
        assert video.status_code == 200, video.text
        assert video.json()["text"]["words_from"] == "speech"
        assert "luggage" in " ".join(s["words"] or "" for s in video.json()["segments"]).lower()
    with TestClient(create_app(ServeConfig(workers=1, words=False))) as client:
        voice = client.post("/v1/voice", files={"file": ("speech.flac", SPEECH.read_bytes(), "audio/flac")})
        assert voice.status_code == 200 and voice.json()["transcript"] is None
