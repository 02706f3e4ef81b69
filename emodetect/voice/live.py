"""Voice emotion while someone speaks: each window scored as soon as its last sample arrives.

`LiveVoice` takes PCM blocks of any size at any sample rate (a microphone callback, a WebSocket, a
file played as if live), resamples them block by block, cuts the same windows `VoiceEmotion.predict`
cuts from a streamed file, marks silent ones, and keeps a smoothed running state (an exponential
average over the voiced windows, the idea the face tracks use). With the speech extra, each
stretch of speech is transcribed when it ends (a silent window, or `max_utterance_s`), with the
text emotion of its words.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emodetect.results import rounded
from emodetect.voice import features as F
from emodetect.voice.words import Utterance


class WindowCutter:
    """Windows of `window` samples every `hop` samples over blocks pushed one at a time; `flush`
    adds a last window flush with the end (or the whole, padded, when shorter than one window).
    Each window comes with the loudest frame level heard so far: the reference for silence."""

    def __init__(self, window: int, hop: int):
        self.window, self.hop = window, max(1, hop)
        self.buffer = np.zeros(0, dtype=np.float32)
        self.buffer_start = 0  # stream index of buffer[0]
        self.next_start = self.last_end = 0
        self.loudest = -200.0

    @property
    def total(self) -> int:
        """Samples pushed so far."""
        return self.buffer_start + len(self.buffer)

    def push(self, block: np.ndarray) -> list[tuple[int, np.ndarray, float]]:
        """(start sample, window samples, loudest dB so far) of each window the block completes."""
        if len(block) == 0:
            return []
        self.loudest = max(self.loudest, float(F.frame_db(block).max()))
        self.buffer = np.concatenate([self.buffer, np.asarray(block, dtype=np.float32)])
        done = []
        while self.next_start + self.window <= self.total:
            offset = self.next_start - self.buffer_start
            done.append((self.next_start, self.buffer[offset:offset + self.window], self.loudest))
            self.last_end = self.next_start + self.window
            self.next_start += self.hop
        # Keep one window's worth: enough for the next hop and for a final flush-right window.
        keep_from = min(self.next_start, self.total - self.window)
        if keep_from > self.buffer_start:
            self.buffer = self.buffer[keep_from - self.buffer_start:]
            self.buffer_start = keep_from
        return done

    def flush(self) -> list[tuple[int, np.ndarray, float]]:
        if self.total == 0:
            return []
        if self.last_end == 0:
            return [(0, F.fit_window(self.buffer, self.window), self.loudest)]
        if self.last_end < self.total:
            return [(self.total - self.window, self.buffer[len(self.buffer) - self.window:], self.loudest)]
        return []


@dataclass
class LiveUpdate:
    """One message of a live stream: a window scored (with the smoothed state after it), or an
    utterance transcribed (`kind` "utterance", the speech extra)."""

    kind: str  # "window" or "utterance"
    start_s: float
    end_s: float
    silent: bool = False
    label: str | None = None
    confidence: float = 0.0
    probabilities: dict[str, float] = field(default_factory=dict)
    smoothed_label: str | None = None
    smoothed: dict[str, float] = field(default_factory=dict)
    text: str | None = None  # an utterance's words

    def to_dict(self) -> dict[str, Any]:
        out = {"kind": self.kind, "start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3),
               "label": self.label, "confidence": round(float(self.confidence), 4),
               "probabilities": rounded(self.probabilities)}
        if self.kind == "window":
            out.update(silent=self.silent, smoothed_label=self.smoothed_label, smoothed=rounded(self.smoothed))
        else:
            out["text"] = self.text
        return out

    def to_line(self) -> str:
        """One line for a terminal: time, label, confidence, the smoothed state (or the words)."""
        span = f"{self.start_s:7.1f}-{self.end_s:<7.1f}"
        if self.kind == "utterance":
            return f"{span} words    {self.label or '':9} {self.text}"
        if self.silent:
            return f"{span} silent"
        return f"{span} {self.label:9} {self.confidence:.2f}  running: {self.smoothed_label}"


class LiveVoice:
    """A live stream's state: push PCM blocks with `feed`, get the updates they complete; `close`
    flushes the end. `engine` is a VoiceEmotion (its model, window, hop, silence threshold, words)."""

    def __init__(self, engine: Any, sample_rate: int, smoothing_s: float = 3.0, max_utterance_s: float = 15.0):
        if not 1_000 <= int(sample_rate) <= F.MAX_SAMPLE_RATE:
            raise F.AudioError(f"sample rate must be 1,000 to {F.MAX_SAMPLE_RATE:,} Hz, got {sample_rate}")
        self.engine = engine
        self.sample_rate = int(sample_rate)
        self.cutter = WindowCutter(int(round(engine.window_s * F.SAMPLE_RATE)),
                                   int(round(engine.hop_s * F.SAMPLE_RATE)))
        self.resampler = None
        if self.sample_rate != F.SAMPLE_RATE:
            import soxr

            self.resampler = soxr.ResampleStream(self.sample_rate, F.SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        # Exponential smoothing over voiced windows: after `smoothing_s` of speech the old state
        # weighs 1/e.
        self.keep = float(np.exp(-engine.hop_s / smoothing_s)) if smoothing_s > 0 else 0.0
        self.state: np.ndarray | None = None
        self.max_utterance = int(max_utterance_s * F.SAMPLE_RATE)
        self.speech = np.zeros(0, dtype=np.float32)  # the audio of the utterance under way
        self.speech_start: int | None = None  # its first sample in the stream, while someone speaks

    @property
    def seconds(self) -> float:
        """Audio received so far, in seconds."""
        return self.cutter.total / F.SAMPLE_RATE

    def feed(self, block: np.ndarray) -> list[LiveUpdate]:
        """Updates for every window this block of samples (frames, or frames x channels) completes."""
        block = F.to_mono(np.asarray(block, dtype=np.float32))
        if not np.isfinite(block).all():
            raise F.AudioError("the audio holds NaN or infinite samples")
        if self.resampler is not None:
            block = self.resampler.resample_chunk(block)
        return self._updates(self.cutter.push(block), block)

    def close(self) -> list[LiveUpdate]:
        """The last window (flush with the end) and the utterance under way."""
        tail = np.zeros(0, dtype=np.float32)
        if self.resampler is not None:
            tail = self.resampler.resample_chunk(np.zeros(0, np.float32), last=True)
        updates = self._updates(self.cutter.push(tail), tail)
        windows = self.cutter.flush()
        updates += self._updates(windows, np.zeros(0, np.float32), final=True)
        return updates

    def _updates(self, windows: list[tuple[int, np.ndarray, float]], block: np.ndarray,
                 final: bool = False) -> list[LiveUpdate]:
        updates = []
        heard = self.engine.words and self.speech_start is not None
        if heard:
            self.speech = np.concatenate([self.speech, block])
        length = int(round(self.engine.window_s * F.SAMPLE_RATE))
        for start, samples, loudest in windows:
            voiced = F.active_frames(samples, reference_db=loudest).mean() >= self.engine.min_voiced
            start_s = start / F.SAMPLE_RATE
            end_s = min(start + length, max(self.cutter.total, length if final else 0)) / F.SAMPLE_RATE
            update = LiveUpdate("window", start_s, end_s, silent=not voiced)
            if voiced:
                probs = self.engine.score([samples])[0]
                self.state = probs if self.state is None else self.keep * self.state + (1 - self.keep) * probs
                top = int(probs.argmax())
                update.label, update.confidence = self.engine.labels[top], float(probs[top])
                update.probabilities = dict(zip(self.engine.labels, map(float, probs)))
            if self.state is not None:
                update.smoothed_label = self.engine.labels[int(self.state.argmax())]
                update.smoothed = dict(zip(self.engine.labels, map(float, self.state)))
            updates.append(update)
            if self.engine.words:
                updates += self._track_speech(start, voiced)
        if self.engine.words and self.speech_start is not None and (final or len(self.speech) >= self.max_utterance):
            updates += self._utterance()
        return updates

    def _track_speech(self, start: int, voiced: bool) -> list[LiveUpdate]:
        """Start an utterance at the first voiced window; end it at a silent one."""
        if voiced and self.speech_start is None:
            self.speech_start = start
            offset = start - self.cutter.buffer_start
            self.speech = self.cutter.buffer[max(0, offset):].copy()
        elif not voiced and self.speech_start is not None:
            return self._utterance()
        return []

    def _utterance(self) -> list[LiveUpdate]:
        start, audio = self.speech_start or 0, self.speech
        self.speech_start, self.speech = None, np.zeros(0, dtype=np.float32)
        said: list[Utterance] = self.engine.transcriber.transcribe(audio, start / F.SAMPLE_RATE)
        return [LiveUpdate("utterance", u.start_s, u.end_s, label=u.label, confidence=u.confidence,
                           probabilities=u.probabilities, text=u.text) for u in said]


def stream(engine: Any, chunks: Iterable[np.ndarray], sample_rate: int, smoothing_s: float = 3.0) -> Iterator[LiveUpdate]:
    """Updates over an iterable of PCM blocks, each as soon as its window is complete."""
    live = LiveVoice(engine, sample_rate, smoothing_s)
    for chunk in chunks:
        yield from live.feed(chunk)
    yield from live.close()
