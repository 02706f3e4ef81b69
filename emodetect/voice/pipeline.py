"""VoiceEmotion: emotion in speech, over a whole clip and window by window, on ONNX models (no torch).

A recording is cut into windows (the model's length, 3 s, every `hop_s`), silent windows are
skipped, each window is scored, and the clip's result is the mean of its windows' probabilities.
Short clips are first trimmed of leading/trailing silence and centred in one window, exactly as the
training data were cut. Files longer than `stream_above_s` are read block by block, so memory stays
bounded whatever their length.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emodetect.errors import InputError, ModelError
from emodetect.results import ResultReaders, rounded

from emodetect.voice import features as F
from emodetect.voice.live import LiveUpdate, WindowCutter
from emodetect.voice.live import stream as live_stream
from emodetect.voice.words import WORDS_HINT, Transcriber, Utterance, words_available


@dataclass
class VoiceWindow:
    """One window of a recording: where it is, whether it was silent, and what was heard in it."""

    start_s: float
    end_s: float
    silent: bool
    label: str | None = None
    confidence: float = 0.0
    probabilities: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3), "silent": bool(self.silent),
                "label": self.label, "confidence": round(float(self.confidence), 4),
                "probabilities": rounded(self.probabilities)}


@dataclass
class VoiceResult(ResultReaders):
    """A recording's emotion (mean over its voiced windows) and the per-window timeline.

    `label` is None when no window had speech in it (an all-silent recording).
    """

    source: str
    duration_s: float
    sample_rate: int  # of the input, before resampling to 16 kHz
    model: str
    labels: tuple[str, ...]
    label: str | None
    confidence: float
    probabilities: dict[str, float]
    windows: list[VoiceWindow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. narrowband input, silent recording
    # The words spoken, utterance by utterance with their text emotion (the speech extra); None
    # when not transcribed, [] when nothing was said.
    transcript: list[Utterance] | None = None

    @property
    def words(self) -> str | None:
        """Everything said, in one string (None when not transcribed)."""
        return None if self.transcript is None else " ".join(u.text for u in self.transcript)

    @property
    def voiced(self) -> list[VoiceWindow]:
        return [w for w in self.windows if not w.silent]

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "duration_s": round(self.duration_s, 3),
                "sample_rate": self.sample_rate, "model": self.model, "label": self.label,
                "confidence": round(float(self.confidence), 4),
                "probabilities": rounded(self.probabilities),
                # The windows that carry the recording's label: where in the recording it was heard.
                "windows": [w.to_dict() | {"carries_label": bool(self.label) and w.label == self.label}
                            for w in self.windows], "notes": list(self.notes),
                "transcript": None if self.transcript is None else [u.to_dict() for u in self.transcript]}

    def to_rows(self, timeline: bool = False) -> list[dict[str, Any]]:
        """One flat row for the clip, or one per window with `timeline`: for csv or pandas; `source`
        first, as in every result's rows."""
        if not timeline:
            row: dict[str, Any] = {"source": self.source, "label": self.label or ""}
            row.update({k: round(float(self.probabilities.get(k, float("nan"))), 4) for k in self.labels})
            if self.transcript is not None:
                row["words"] = self.words
            return [row]
        rows = []
        for w in self.windows:
            row = {"source": self.source, "start_s": round(w.start_s, 3), "end_s": round(w.end_s, 3),
                   "label": w.label or ("silent" if w.silent else "")}
            row.update({k: round(float(w.probabilities.get(k, float("nan"))), 4) for k in self.labels})
            rows.append(row)
        return rows

    def plot(self, path: str | Path) -> Path:
        """Emotion over time: one line per label across the windows (gaps where silent), as a PNG."""
        # A Figure of its own, not pyplot: no backend switch, no global figure state (a notebook
        # user keeps their backend).
        from matplotlib.figure import Figure

        from emodetect.vision.draw import PROBABILITY_LIMITS, plot_colour

        centres = np.array([(w.start_s + w.end_s) / 2 for w in self.windows])
        fig = Figure(figsize=(max(6.0, min(16.0, 2 + 0.25 * len(self.windows))), 3.6))
        ax = fig.subplots()
        for label in self.labels:  # each emotion in its colour in every plot (issue 32)
            values = np.array([w.probabilities.get(label, np.nan) for w in self.windows], dtype=float)
            ax.plot(centres, values, marker="o", markersize=3, label=label, color=plot_colour(label))
        ax.set_ylim(*PROBABILITY_LIMITS)  # a window at 0.999 above the frame line, not under it
        ax.set_yticks([0, 0.25, 0.5, 0.75, 1])
        ax.set_xlabel("time (s), window centres")
        ax.set_ylabel("probability")
        ax.set_title(f"{Path(self.source).name}: {self.label or 'silent'} overall")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        return Path(path)

    def __str__(self) -> str:
        top = f"{self.label} {self.confidence:.2f}" if self.label else "no speech (silent)"
        return f"{self.source}: {top}, {self.duration_s:.1f} s, {len(self.voiced)}/{len(self.windows)} windows voiced"


def _transcribed(blocks: Iterable[np.ndarray], transcriber: Transcriber, transcript: list[Utterance]) -> Iterator[np.ndarray]:
    """The blocks unchanged, appending each block's utterances to `transcript` once it has passed."""
    offset = 0
    for block in blocks:
        yield block
        transcript += transcriber.transcribe(block, offset / F.SAMPLE_RATE)
        offset += len(block)


def _counted(blocks: Iterable[np.ndarray], read: list[int]) -> Iterator[np.ndarray]:
    """The blocks unchanged, adding their lengths to read[0]."""
    for block in blocks:
        read[0] += len(block)
        yield block


class VoiceEmotion:
    """Speech emotion on a bundled voice model (`default`: Whisper's encoder; `fast`: a small CNN) or any voice ONNX file.

    `window_s` defaults to the length the model was trained on; `hop_s` to half of it. `words`:
    transcribe the speech too (each result's `transcript`, with every utterance's text emotion by
    `text_model`); None does so where the speech extra is installed, and leaves `words_hint`
    saying how to get it where it is not.
    """

    def __init__(self, model: str | Path | None = None, window_s: float | None = None,
                 hop_s: float | None = None, min_voiced: float = 0.1, stream_above_s: float = 120.0,
                 batch_size: int = 32, threads: int = 0, words: bool | None = None,
                 text_model: str | None = None, transcriber: Transcriber | None = None):
        from emodetect.runtime import load_model

        self.model = load_model(model, modality="voice", threads=threads)
        if self.model.metadata.get("modality", "voice") != "voice":
            raise ModelError(f"{self.model.path} is a {self.model.metadata['modality']} model, not a voice model")
        extras = self.model.extras()
        # What the graph takes: our log-mel windows, or (a model with its own front end inside,
        # emodetect.voice.whisper) the 16 kHz samples of each window.
        self.feature = extras.get("feature", "logmel-v1")
        if self.feature not in ("logmel-v1", "whisper-wave-v1"):
            raise ModelError(f"{self.model.path} wants features {self.feature!r}; this version "
                             "computes logmel-v1 and whisper-wave-v1 only")
        self.model_name = self.model.metadata.get("name", self.model.path.stem)
        self.model_file = self.model.path.name  # lets the service's /v1/models mark the file in use
        self.labels = self.model.labels
        # The network reads windows of the length it was trained on; a shorter window is centred
        # in one of that length, as short training clips were.
        self.model_window_s = float(extras.get("window_s", 3.0))
        self.window_s = float(window_s or self.model_window_s)
        self.hop_s = float(hop_s or self.window_s / 2)
        if not 0.5 <= self.window_s <= self.model_window_s or self.hop_s <= 0:
            raise InputError(f"window must be 0.5 to {self.model_window_s:g} s (the length {self.model_name} "
                             f"was trained on) and hop above 0 s; got window {self.window_s:g} s, hop {self.hop_s:g} s")
        self.min_voiced = min_voiced
        self.stream_above_s = stream_above_s
        self.batch_size = batch_size
        if words and transcriber is None and not words_available():
            from emodetect.errors import MissingExtra

            raise MissingExtra("faster-whisper", "speech", "transcribing speech")
        self.words = transcriber is not None or (words is not False and words_available())
        self.words_hint = WORDS_HINT if words is None and not self.words else None
        self._transcriber = transcriber
        self._text_model = text_model
        self._threads = threads

    @property
    def transcriber(self) -> Transcriber | None:
        """Whisper, opened on the first recording that needs it (None without `words`)."""
        if self.words and self._transcriber is None:
            self._transcriber = Transcriber(text_model=self._text_model, threads=self._threads)
        return self._transcriber

    def predict(self, audio: str | Path | np.ndarray, sample_rate: int | None = None) -> VoiceResult:
        """Score a file path, or an array (frames, or frames x channels) at `sample_rate`."""
        notes: list[str] = []
        read = [0]  # samples of a streamed file, counted as they go by
        transcript: list[Utterance] | None = [] if self.words else None
        wave = None
        if isinstance(audio, (str, Path)):
            info = F.audio_info(audio)
            source, rate = str(audio), info.sample_rate
            if info.duration_s > self.stream_above_s:
                blocks: Iterable[np.ndarray] = _counted(F.stream_audio(audio), read)
                if transcript is not None:  # block by block, so memory stays bounded
                    blocks = _transcribed(blocks, self.transcriber, transcript)
                offset, duration = 0.0, None
            else:
                wave = F.load_audio(audio)
                blocks, offset = self._trimmed(wave)
                duration = len(wave) / F.SAMPLE_RATE
        else:
            if sample_rate is None:
                raise F.AudioError("an audio array needs its sample_rate")
            wave = F.prepare(audio, sample_rate)
            source, rate, duration = "<array>", int(sample_rate), len(wave) / F.SAMPLE_RATE
            if len(wave) == 0:
                raise F.AudioError("the audio array is empty (zero length)")
            blocks, offset = self._trimmed(wave)
        if rate < F.SAMPLE_RATE:
            notes.append(f"input is {rate} Hz: upsampled to 16 kHz, so nothing above {rate // 2} Hz "
                         "is heard; expect lower accuracy than on wideband audio")
        windows = self._score(blocks, offset)
        if transcript is not None and wave is not None:
            transcript += self.transcriber.transcribe(wave)
        if duration is None:  # a header's length is an estimate (mp3) or missing (webm): what was read
            duration = read[0] / F.SAMPLE_RATE
        for w in windows:  # a short clip's window is padded past its end
            w.end_s = min(w.end_s, duration)
        if not windows:
            windows = [VoiceWindow(0.0, duration, True)]
        voiced = [w for w in windows if not w.silent]
        if not voiced:
            notes.append(f"no speech found: every window is below {F.SILENCE_DBFS:.0f} dBFS")
            return VoiceResult(source, duration, rate, self.model_name, self.labels, None, 0.0, {},
                               windows, notes, transcript)
        mean = np.mean([[w.probabilities[k] for k in self.labels] for w in voiced], axis=0)
        top = int(mean.argmax())
        return VoiceResult(source, duration, rate, self.model_name, self.labels, self.labels[top],
                           float(mean[top]), dict(zip(self.labels, map(float, mean))), windows, notes,
                           transcript)

    def _trimmed(self, wave: np.ndarray) -> tuple[list[np.ndarray], float]:
        """Trim a whole in-memory recording as the training clips were trimmed; where it starts."""
        active = F.active_frames(wave)
        if not active.any():
            return [], 0.0
        trimmed = F.trim_silence(wave)
        # trim_silence keeps a 0.1 s margin; recover where the kept part starts.
        first = int(np.argmax(active)) * F.HOP_LENGTH
        start = max(0, first - int(0.1 * F.SAMPLE_RATE))
        return [trimmed], start / F.SAMPLE_RATE

    def _windows(self, blocks: Iterable[np.ndarray]) -> Iterator[tuple[int, np.ndarray, float]]:
        """(start sample, window samples, loudest frame dB so far) over a stream of blocks."""
        cutter = WindowCutter(int(round(self.window_s * F.SAMPLE_RATE)), int(round(self.hop_s * F.SAMPLE_RATE)))
        for block in blocks:
            yield from cutter.push(block)
        yield from cutter.flush()

    def score(self, windows: list[np.ndarray]) -> np.ndarray:
        """Probabilities (windows x labels) of 16 kHz windows, each fitted to the model's length."""
        model_window = int(round(self.model_window_s * F.SAMPLE_RATE))
        stacked = np.stack([F.fit_window(w, model_window) for w in windows])
        return self.model.predict(stacked if self.feature == "whisper-wave-v1" else F.window_log_mels(stacked))

    def stream(self, chunks: Iterable[np.ndarray], sample_rate: int, smoothing_s: float = 3.0) -> Iterator[LiveUpdate]:
        """Live: an update per window of an iterable of PCM blocks (any size, any rate) as soon as
        the window is complete, silent ones marked, with a smoothed running state (and, with
        words, each utterance when it ends). See `emodetect.voice.live`."""
        return live_stream(self, chunks, sample_rate, smoothing_s)

    def _score(self, blocks: Iterable[np.ndarray], offset_s: float) -> list[VoiceWindow]:
        results: list[VoiceWindow] = []
        pending: list[tuple[int, int, np.ndarray]] = []  # (result index, start, samples)

        def flush() -> None:
            if not pending:
                return
            probs = self.score([p[2] for p in pending])
            for (index, _, _), row in zip(pending, probs):
                top = int(row.argmax())
                results[index].label = self.labels[top]
                results[index].confidence = float(row[top])
                results[index].probabilities = dict(zip(self.labels, map(float, row)))
            pending.clear()

        window_len = int(round(self.window_s * F.SAMPLE_RATE))
        for start, samples, loudest in self._windows(blocks):
            voiced = F.active_frames(samples, reference_db=loudest).mean()
            start_s = offset_s + start / F.SAMPLE_RATE
            results.append(VoiceWindow(start_s, start_s + window_len / F.SAMPLE_RATE, bool(voiced < self.min_voiced)))
            if voiced >= self.min_voiced:
                pending.append((len(results) - 1, start, samples))
                if len(pending) >= self.batch_size:
                    flush()
        flush()
        return results
