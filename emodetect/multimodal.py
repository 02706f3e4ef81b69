"""One timeline for a video: the faces on screen, the voice on its sound track, the words of its
subtitles, and a fused estimate per time segment.

How the fusion works (a heuristic; no paired audio-visual data here can validate it):
- Every stream is put on the shared labels (angry, disgust, fear, happy, sad, surprise, neutral):
  the face model has them; the voice model's `calm` and `boredom` count as neutral; a text model's
  labels go through their groups (GoEmotions -> the face model's 7) or the label synonyms.
- Segments are the subtitle cues when there are subtitles, else fixed windows (`segment_s`).
- Per segment, the face estimate is the mean over its analysed frames of the largest face on
  screen (the person the camera is on); the voice estimate is the mean of the voiced windows that
  overlap it, weighted by the overlap; the text estimate is the cue's.
- The fused estimate is the weighted mean of the streams present (weights default to 1 each),
  renormalised; `agreement` is the share of those streams whose top label is the fused one.
"""

from __future__ import annotations

import csv
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from emodetect.errors import InputError
from emodetect.labels import EMOTIONS, SYNONYMS, VOICE_ONLY
from emodetect.results import ResultReaders, rounded

STREAMS = ("face", "voice", "text")


class SubtitleError(InputError):
    """A subtitle file that cannot be read."""


# Cues per subtitle file: over an hour of dialogue at a cue every 0.4 s. 100,000 cues (4.9 MB) took
# 121 s and 2.4 GB and made a 75 MB answer (issue 34); counted from the timing lines before parsing.
MAX_CUES = 10_000


@dataclass(frozen=True)
class Cue:
    start_s: float
    end_s: float
    text: str


def read_subtitles(path: str | Path, max_cues: int = MAX_CUES) -> list[Cue]:
    """Cues of a SubRip (.srt) or WebVTT (.vtt) file, in time order; a SubtitleError (too_large)
    naming the limit for a file of more than `max_cues`."""
    path = Path(path)
    if not path.is_file():
        raise SubtitleError(f"{path}: no such subtitle file")
    from emodetect.text.encoding import decode_text

    text = decode_text(path.read_bytes(), str(path), SubtitleError)
    timings = text.count("-->")  # one per cue in both formats; a stray arrow only counts against the file
    if timings > max_cues:
        raise SubtitleError(f"{path}: too many subtitle cues: {timings:,}, the limit is {max_cues:,}", "too_large")
    suffix = path.suffix.lower()
    try:
        if suffix == ".vtt" or text.lstrip().startswith("WEBVTT"):
            import webvtt

            _check_vtt_timings(text, path)

            # Parsed from the stamps: webvtt-py 0.6's start_in_seconds drops the milliseconds.
            cues = [Cue(_vtt_seconds(c.start), _vtt_seconds(c.end), c.text) for c in webvtt.from_string(text)]
        elif suffix == ".srt":
            import srt

            cues = [Cue(c.start.total_seconds(), c.end.total_seconds(), c.content) for c in srt.parse(text)]
        else:
            raise SubtitleError(f"{path}: not a subtitle file this reads (.srt SubRip or .vtt WebVTT)")
    except SubtitleError:
        raise
    except Exception as err:  # srt and webvtt raise their own types on malformed files
        raise SubtitleError(f"{path}: malformed subtitles ({type(err).__name__}: {err})") from err
    cues = [Cue(c.start_s, c.end_s, " ".join(c.text.split())) for c in cues if c.text.strip()]
    return sorted(cues, key=lambda c: (c.start_s, c.end_s))


# A WebVTT cue timing: [hh:]mm:ss.ttt --> [hh:]mm:ss.ttt, minutes and seconds under 60, then settings.
_VTT_STAMP = r"(?:\d{2,}:)?[0-5]\d:[0-5]\d\.\d{3}"
_VTT_TIMING = re.compile(rf"{_VTT_STAMP}[ \t]+-->[ \t]+{_VTT_STAMP}(?:[ \t].*)?")


def _check_vtt_timings(text: str, path: Path) -> None:
    """SubtitleError naming the first timing line that is not one: webvtt-py skips such a cue without
    a word (`00:99:99.999`), and its words would silently vanish from the timeline."""
    for number, line in enumerate(text.splitlines(), 1):
        if "-->" in line and not _VTT_TIMING.fullmatch(line.strip()):
            raise SubtitleError(f"{path}: line {number}: {line.strip()[:80]!r} is not a WebVTT cue timing "
                                "(hh:mm:ss.ttt --> hh:mm:ss.ttt, minutes and seconds under 60)")


def _vtt_seconds(stamp: str) -> float:
    """'01:02:03.450' or '02:03.450' in seconds."""
    seconds = 0.0
    for part in stamp.strip().split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def to_shared(probabilities: dict[str, float] | None) -> np.ndarray | None:
    """A distribution over EMOTIONS from any model's labels (calm and boredom count as neutral;
    labels with no shared meaning are left out); None when nothing maps."""
    if not probabilities:
        return None
    out = np.zeros(len(EMOTIONS))
    for label, p in probabilities.items():
        key = label.strip().lower()
        shared = "neutral" if key in VOICE_ONLY else SYNONYMS.get(key)
        if shared is not None:
            out[EMOTIONS.index(shared)] += float(p)
    total = out.sum()
    return out / total if total > 0 else None


@dataclass
class Segment:
    """One stretch of the timeline: each stream's estimate on the shared labels, and the fused one."""

    start_s: float
    end_s: float
    words: str | None = None  # the cue's words, when segments are subtitle cues
    streams: dict[str, np.ndarray] = field(default_factory=dict)  # stream -> distribution
    fused: np.ndarray | None = None
    agreement: float | None = None

    @property
    def label(self) -> str | None:
        return EMOTIONS[int(self.fused.argmax())] if self.fused is not None else None

    @property
    def confidence(self) -> float:
        return float(self.fused.max()) if self.fused is not None else 0.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3), "words": self.words}
        for name in STREAMS:
            probs = self.streams.get(name)
            out[name] = None if probs is None else {
                "label": EMOTIONS[int(probs.argmax())], "confidence": round(float(probs.max()), 4),
                "probabilities": rounded(dict(zip(EMOTIONS, probs)))}
        out.update(label=self.label, confidence=round(self.confidence, 4),
                   probabilities=None if self.fused is None else rounded(dict(zip(EMOTIONS, self.fused))),
                   agreement=None if self.agreement is None else round(self.agreement, 3))
        return out

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3), "words": self.words or ""}
        for name in STREAMS:
            probs = self.streams.get(name)
            row[f"{name}_label"] = "" if probs is None else EMOTIONS[int(probs.argmax())]
            row[f"{name}_confidence"] = "" if probs is None else round(float(probs.max()), 4)
        row.update(label=self.label or "", confidence=round(self.confidence, 4) if self.label else "",
                   agreement="" if self.agreement is None else round(self.agreement, 3),
                   streams="+".join(n for n in STREAMS if n in self.streams))
        row.update({f"p_{k}": ("" if self.fused is None else round(float(v), 4))
                    for k, v in zip(EMOTIONS, self.fused if self.fused is not None else np.zeros(len(EMOTIONS)))})
        return row


def fuse(streams: dict[str, np.ndarray], weights: dict[str, float] | None = None) -> tuple[np.ndarray | None, float | None]:
    """The weighted mean of the streams present, and the share of them that agree with it."""
    present = {k: v for k, v in streams.items() if v is not None}
    if not present:
        return None, None
    weights = weights or {}
    total = sum(weights.get(k, 1.0) for k in present)
    if total <= 0:
        return None, None
    fused = sum(weights.get(k, 1.0) * v for k, v in present.items()) / total
    top = int(fused.argmax())
    agreement = sum(int(v.argmax()) == top for v in present.values()) / len(present)
    return fused, agreement


def _largest_faces(frame_faces: list[tuple[int, float, list[Any]]]) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """Each analysed frame's time and its largest face on the shared labels (None: no face),
    worked out once for all the segments."""
    times = np.array([t for _, t, _ in frame_faces], dtype=float)
    largest = [to_shared(max(faces, key=lambda f: f.box.width * f.box.height).probabilities) if faces else None
               for _, _, faces in frame_faces]
    return times, largest


def _face_estimate(times: np.ndarray, largest: list[np.ndarray | None], start: float, end: float) -> np.ndarray | None:
    """Mean over the segment's frames of the largest face's probabilities (frames in time order)."""
    first, stop = np.searchsorted(times, [start, end], side="left")
    picked = [p for p in largest[first:stop] if p is not None]
    return np.mean(picked, axis=0) if picked else None


def _voice_estimate(windows: list[tuple[float, float, np.ndarray]], start: float, end: float) -> np.ndarray | None:
    """Mean of the voiced windows (start, end, shared probabilities) weighted by their overlap."""
    total, weight = np.zeros(len(EMOTIONS)), 0.0
    for w_start, w_end, probs in windows:
        overlap = min(end, w_end) - max(start, w_start)
        if overlap > 0:
            total += overlap * probs
            weight += overlap
    return total / weight if weight > 0 else None


def _text_estimate(result: Any) -> np.ndarray | None:
    if result is None or result.label is None:
        return None
    return to_shared(result.group_probabilities) if result.group_probabilities else to_shared(result.probabilities)


def build_segments(duration_s: float, frame_faces: list[tuple[int, float, list[Any]]], voice_windows: list[Any],
                   cues: list[tuple[Cue, Any]], segment_s: float = 3.0,
                   weights: dict[str, float] | None = None) -> list[Segment]:
    """Segments (the cues, else fixed windows) with every stream's estimate and the fused one."""
    if cues:
        spans = [(c.start_s, c.end_s, c.text, r) for c, r in cues]
    else:
        edges = np.arange(0.0, max(duration_s, 1e-6), segment_s)
        spans = [(float(a), float(min(a + segment_s, duration_s)), None, None) for a in edges]
    times, largest = _largest_faces(frame_faces)
    voiced = [(w.start_s, w.end_s, p) for w in voice_windows
              if not w.silent and (p := to_shared(w.probabilities)) is not None]
    segments = []
    for start, end, text, text_result in spans:
        streams = {"face": _face_estimate(times, largest, start, end), "voice": _voice_estimate(voiced, start, end),
                   "text": _text_estimate(text_result)}
        streams = {k: v for k, v in streams.items() if v is not None}
        fused, agreement = fuse(streams, weights)
        segments.append(Segment(start, end, text, streams, fused, agreement))
    return segments


@dataclass
class VideoAnalysis(ResultReaders):
    """Faces, voice and words of one video on one timeline: `segments` hold the fused estimates."""

    source: str
    faces: Any  # vision.video.VideoSummary: tracks, per-frame faces, outputs
    voice: Any | None  # voice.pipeline.VoiceResult of the sound track, or None
    cues: list[tuple[Cue, Any]]  # each subtitle cue (or utterance heard) with its text.pipeline.TextResult
    segments: list[Segment]
    notes: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    model: str = ""
    words_from: str | None = None  # "subtitles", "speech" (the sound track transcribed) or None

    @property
    def label(self) -> str | None:
        """The fused label that holds the most time."""
        shares = self.label_shares()
        return next(iter(shares), None)

    def label_shares(self) -> dict[str, float]:
        """Share of the labelled segments' time that each fused label holds, largest first: what the
        summary reports, since one label "mostly" over 2.0 s against 1.5 s says little (issue 32)."""
        spans: dict[str, float] = {}
        for s in self.segments:
            if s.label:
                spans[s.label] = spans.get(s.label, 0.0) + (s.end_s - s.start_s)
        total = sum(spans.values())
        if total <= 0:  # zero-length segments: count them instead
            spans = {k: 1.0 for k in spans}
            total = float(len(spans))
        ordered = sorted(spans.items(), key=lambda kv: -kv[1])
        return {k: round(v / total, 4) for k, v in ordered} if total else {}

    def to_dict(self) -> dict[str, Any]:
        voice = None if self.voice is None else {
            "model": self.voice.model, "label": self.voice.label, "confidence": round(self.voice.confidence, 4),
            "windows": len(self.voice.windows), "voiced_windows": len(self.voice.voiced), "notes": self.voice.notes}
        text = {"cues": len(self.cues), "labelled": sum(r.label is not None for _, r in self.cues),
                "model": self.cues[0][1].model if self.cues else None, "words_from": self.words_from}
        agreements = [s.agreement for s in self.segments if s.agreement is not None]
        return {"source": self.source, "faces": self.faces.to_dict(), "voice": voice, "text": text,
                "fused": {"label": self.label, "time_shares": self.label_shares(), "segments": len(self.segments),
                          "mean_agreement": round(float(np.mean(agreements)), 3) if agreements else None},
                "segments": [s.to_dict() for s in self.segments], "notes": self.notes, "outputs": self.outputs}

    def to_rows(self, stream: str = "segments") -> list[dict[str, Any]]:
        """Flat rows of one stream: "segments" (fused, with every stream beside it), "faces" (per
        analysed frame and face), "voice" (per window) or "text" (per cue)."""
        if stream == "segments":
            return [s.to_row() for s in self.segments]
        if stream == "faces":
            return [{"frame": i, "time_s": round(t, 3), "face_id": f.id, "label": f.label,
                     "confidence": round(f.confidence, 4), **rounded(f.probabilities)}
                    for i, t, faces in self.faces.frame_faces for f in faces]
        if stream == "voice":
            return self.voice.to_rows(timeline=True) if self.voice is not None else []
        if stream == "text":
            return [{"start_s": c.start_s, "end_s": c.end_s, "text": c.text, "label": r.label or "",
                     "group": r.group or ""} for c, r in self.cues]
        raise InputError(f"unknown stream {stream!r}; one of segments, faces, voice, text")

    def plot(self, path: str | Path, title: str = "") -> Path:
        return plot_streams(self, Path(path), title or Path(self.source).name)

    def to_text(self) -> str:
        lines = [self.faces.to_text()]
        if self.voice is not None:
            lines.append(f"  voice: {self.voice.label or 'no speech'} over {len(self.voice.voiced)} voiced "
                         f"window(s) of {len(self.voice.windows)}")
        if self.cues:
            what = "utterance(s) heard" if self.words_from == "speech" else "subtitle cue(s)"
            lines.append(f"  text: {len(self.cues)} {what}")
        agreed = [s.agreement for s in self.segments if s.agreement is not None]
        shares = ", ".join(f"{k} {v:.0%}" for k, v in self.label_shares().items()) or "-"
        lines.append(f"  fused, share of labelled time: {shares} ({len(self.segments)} segment(s)"
                     + (f"; streams agree {np.mean(agreed):.0%} on average)" if agreed else ")"))
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  {name}: {path}" for name, path in self.outputs.items() if name not in self.faces.outputs]
        return "\n".join(lines)


def plot_streams(analysis: VideoAnalysis, path: Path, title: str = "", max_faces: int = 3) -> Path:
    """Faces by track, voice, text and fused, stacked over one time axis, as a PNG."""
    from matplotlib.figure import Figure

    from emodetect.vision.draw import PROBABILITY_LIMITS, plot_colour

    panels: list[tuple[str, list[tuple[float, float, np.ndarray]]]] = []  # name, (start, end, probs)
    tracks: dict[int, list[tuple[float, float, np.ndarray]]] = {}
    step = _frame_step(analysis.faces.frame_faces)
    for _, t, faces in analysis.faces.frame_faces:
        for f in faces:
            probs = to_shared(f.probabilities)
            if probs is not None:
                tracks.setdefault(f.id, []).append((t, t + step, probs))
    longest = max((len(v) for v in tracks.values()), default=0)
    kept = [i for i in sorted(tracks, key=lambda i: -len(tracks[i])) if len(tracks[i]) >= max(2, longest // 10)]
    for face_id in kept[:max_faces]:
        panels.append((f"face #{face_id}", tracks[face_id]))
    if analysis.voice is not None:
        # Windows overlap (3 s every 1.5 s): each is drawn over the hop around its centre.
        starts = [w.start_s for w in analysis.voice.windows]
        hop = float(np.median(np.diff(starts))) if len(starts) > 1 else analysis.voice.duration_s
        spans, last_end = [], -np.inf
        for w in sorted(analysis.voice.windows, key=lambda w: w.start_s):
            centre = (w.start_s + w.end_s) / 2
            start, stop = max(centre - hop / 2, last_end), centre + hop / 2
            probs = None if w.silent else to_shared(w.probabilities)
            if probs is not None and stop > start:
                spans.append((start, stop, probs))
                last_end = stop
        panels.append(("voice", spans))
    if analysis.cues:
        panels.append(("text", [(c.start_s, c.end_s, p) for c, r in analysis.cues if (p := _text_estimate(r)) is not None]))
    panels.append(("fused", [(s.start_s, s.end_s, s.fused) for s in analysis.segments if s.fused is not None]))
    # Constrained layout, the legend outside the axes: no empty band above it (issue 32).
    fig = Figure(figsize=(10, 1.4 * len(panels) + 0.9), dpi=100, layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    end = max([analysis.faces.duration_s] + [e for _, spans in panels for _, e, _ in spans])
    for ax, (name, spans) in zip(axes, panels):
        for k, label in enumerate(EMOTIONS):
            colour = plot_colour(label)
            xs, ys, last_end = [], [], None
            for start, stop, p in spans:
                if last_end is not None and start > last_end + 1e-3:  # a gap: no line across it
                    xs.append(np.nan)
                    ys.append(np.nan)
                xs += [start, stop]
                ys += [p[k], p[k]]
                last_end = stop
            ax.plot(xs, ys, color=colour, linewidth=1.4, label=label)
        ax.set_ylim(*PROBABILITY_LIMITS)  # a cue at 0.999 above the frame line, not under it
        ax.set_yticks([0, 0.5, 1])
        ax.set_xlim(0, end)
        ax.set_ylabel(name, rotation=0, ha="right", va="center")
        ax.grid(alpha=0.3)
        if not spans:
            ax.text(0.5, 0.5, "nothing in this stream", transform=ax.transAxes, ha="center", color="grey")
    fig.legend(*axes[0].get_legend_handles_labels(), ncol=len(EMOTIONS), fontsize=7, loc="outside upper center")
    axes[-1].set_xlabel("time (s)")
    if title:  # over the top axes: constrained layout lays a suptitle over an "outside" legend
        axes[0].set_title(title, fontsize=9)
    fig.savefig(path)
    return path


def _frame_step(frame_faces: list[tuple[int, float, list[Any]]]) -> float:
    times = [t for _, t, _ in frame_faces]
    return float(np.median(np.diff(times))) if len(times) > 1 else 0.04


def analyse_video(source: str | Path, subtitles: str | Path | None = None, out_dir: str | Path | None = None,
                  model: str | None = None, detector: str | None = None, voice_model: str | None = None,
                  text_model: str | None = None, voice: bool = True, every: int = 1, smoothing: float = 0.5,
                  segment_s: float = 3.0, weights: dict[str, float] | None = None, blur: bool = False,
                  save_video: bool = True, captions: bool = False, max_frames: int | None = None,
                  progress: bool = False, detect_every: int = 1, threads: int = 0,
                  emotion_detector: Any = None, voice_engine: Any = None, text_reader: Any = None,
                  container_format: str | None = None, frame_limit: int | None = None,
                  max_pixels: int | None = None, words: bool | None = None,
                  check: Callable[[], None] | None = None) -> VideoAnalysis:
    """Faces, the voice of the sound track and the words of `subtitles` on one timeline.

    Writes to `out_dir` (default: beside the video): <stem>_emotions.csv (per frame and face),
    <stem>_segments.csv (per segment: each stream and the fused estimate), <stem>_timeline.png
    (the streams stacked), <stem>_emotions.png (faces by track), <stem>_summary.json and
    <stem>_annotated.mp4 (H.264 with the original sound; the fused label in a caption band with
    `captions`). `emotion_detector`, `voice_engine` and `text_reader` take models already loaded
    (an EmotionDetector, VoiceEmotion, TextEmotion) instead of the names. `container_format` (an
    upload's, `media.UPLOAD_FORMATS`) reads the video with that demuxer alone, never a probed one.
    `frame_limit`: the most frames the video may hold, counted while decoding (a VideoError past it);
    `max_pixels`: the largest frame, checked on the stream's size before decoding. `words`: without
    subtitles, transcribe the sound track (the speech extra) and read the words spoken instead;
    None does so where the extra is installed. Subtitles win when both exist. `check`, called
    between the annotated video's frames, raises to stop the work (a service's deadline)."""
    from emodetect.vision.video import analyse_video as analyse_faces

    source = Path(source)
    out = Path(out_dir) if out_dir else source.parent
    notes: list[str] = []
    cues_text = read_subtitles(subtitles) if subtitles is not None else []  # bad subtitles fail first
    if emotion_detector is None:
        from emodetect.vision.detectors import create_detector
        from emodetect.vision.pipeline import EmotionDetector

        emotion_detector = EmotionDetector(model, create_detector(detector), threads)
    started = time.perf_counter()
    faces = analyse_faces(emotion_detector, source, out, every=every, smoothing=smoothing, blur=blur,
                          save_video=save_video and not captions, max_frames=max_frames, progress=progress,
                          detect_every=detect_every, container_format=container_format,
                          frame_limit=frame_limit, max_pixels=max_pixels)
    duration = faces.frames_read / faces.fps if faces.fps else faces.duration_s
    voice_result = None
    if voice:
        from emodetect.media import read_sound_track
        from emodetect.voice.pipeline import VoiceEmotion

        track = read_sound_track(source, max_seconds=duration + 1.0, container_format=container_format)
        notes += track.notes
        if track.samples is not None:
            engine = voice_engine or VoiceEmotion(voice_model, threads=threads, text_model=text_model,
                                                  words=False if cues_text else words)
            try:
                voice_result = engine.predict(track.samples[:int(duration * track.sample_rate) + 1],
                                              sample_rate=track.sample_rate)
            except InputError as err:  # e.g. a sound track of NaNs: the faces still count
                notes.append(f"voice: the sound track cannot be read ({err})")
            else:
                voice_result.source = str(source)
                notes += [f"voice: {n}" for n in voice_result.notes]
    cues: list[tuple[Cue, Any]] = []
    if cues_text:
        from emodetect.text.pipeline import TextEmotion

        kept = [c for c in cues_text if c.start_s < duration]
        if len(kept) < len(cues_text):
            notes.append(f"{len(cues_text) - len(kept)} subtitle cue(s) start after the analysed video and are left out")
        reader = text_reader or TextEmotion(text_model, threads=threads)
        results = reader.predict([c.text for c in kept]) if kept else []
        cues = list(zip(kept, results))
    elif voice_result is not None and voice_result.transcript:
        cues = [(Cue(u.start_s, u.end_s, u.text), u.emotion) for u in voice_result.transcript]
    elif voice and words is None and voice_engine is None:
        from emodetect.voice.words import WORDS_HINT, words_available

        if not words_available():
            notes.append(f"text: {WORDS_HINT}")
    words_from = "subtitles" if cues_text else ("speech" if cues else None)
    segments = build_segments(duration, faces.frame_faces, voice_result.windows if voice_result else [], cues,
                              segment_s, weights)
    analysis = VideoAnalysis(str(source), faces, voice_result, cues, segments, notes, dict(faces.outputs),
                             model=emotion_detector.model_name, words_from=words_from)
    stem = source.stem
    seg_path, plot_path = out / f"{stem}_segments.csv", out / f"{stem}_timeline.png"
    rows = analysis.to_rows()
    with open(seg_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["start_s", "end_s"])
        writer.writeheader()
        writer.writerows(rows)
    analysis.outputs["segments"] = str(seg_path)
    analysis.outputs["timeline"] = str(analysis.plot(plot_path))
    if save_video and captions:
        analysis.outputs["video"] = str(write_annotated(source, faces, segments, out / f"{stem}_annotated.mp4",
                                                        every, max_frames, blur, notes, container_format, check))
    faces.seconds = round(time.perf_counter() - started, 3)
    Path(analysis.outputs["summary"]).write_text(json.dumps(analysis.to_dict(), indent=1) + "\n")
    return analysis


def write_annotated(source: Path, faces: Any, segments: list[Segment], path: Path, every: int,
                    max_frames: int | None, blur: bool, notes: list[str], container_format: str | None = None,
                    check: Callable[[], None] | None = None) -> Path:
    """The annotated video again, with the fused label of the moment in a caption band; `check()`
    before each frame (it raises to stop)."""
    import cv2

    from emodetect.media import VideoWriter
    from emodetect.vision.draw import COLOURS, draw_faces
    from emodetect.vision.video import frames, open_capture

    by_index = {i: f for i, _, f in faces.frame_faces}
    now = _Current(segments)
    capture = open_capture(str(source), container_format)
    writer = None
    try:
        for index, t, bgr in frames(capture, every, max_frames):
            if check is not None:
                check()
            rgb = draw_faces(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), by_index.get(index, []), blur=blur)
            segment = now.at(t)
            if segment is not None:
                band = max(24, rgb.shape[0] // 12)
                rgb[-band:] = (rgb[-band:] * 0.35).astype(np.uint8)
                text = f"{segment.label} {segment.confidence:.0%}  ({'+'.join(segment.streams)})"
                cv2.putText(rgb, text, (10, rgb.shape[0] - band // 3), cv2.FONT_HERSHEY_SIMPLEX, band / 40,
                            COLOURS.get(segment.label, (255, 255, 255)), max(1, band // 20), cv2.LINE_AA)
            if writer is None:
                writer = VideoWriter(path, rgb.shape[1], rgb.shape[0], faces.fps / every, audio_from=source,
                                     audio_format=container_format)
            writer.write(rgb)
    finally:
        capture.release()
    if writer is not None:
        notes += writer.close()
    return path


class _Current:
    """The first labelled segment (in list order) that holds time t, for t that only grows: the
    segments already begun and not yet over are kept aside, so a long video with many segments
    is not scanned once per frame."""

    def __init__(self, segments: list[Segment]):
        self.pending = sorted(range(len(segments)), key=lambda i: segments[i].start_s)
        self.segments, self.active, self.next = segments, [], 0

    def at(self, t: float) -> Segment | None:
        while self.next < len(self.pending) and self.segments[self.pending[self.next]].start_s <= t:
            self.active.append(self.pending[self.next])
            self.next += 1
        self.active = [i for i in self.active if t < self.segments[i].end_s]
        held = [i for i in self.active if self.segments[i].label]
        return self.segments[min(held)] if held else None
