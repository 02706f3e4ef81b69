"""Media containers through PyAV (FFmpeg's libraries, in the `av` wheels): a video's sound track
as samples, and annotated frames written as an H.264 mp4 that browsers play, with the sound.

OpenCV still decodes the frames (vision/video.py); what it cannot do is read audio or write a
browser-playable codec, which is what this module is for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from emodetect.errors import InputError


class MediaError(InputError):
    """A container or stream that cannot be read or written."""


@dataclass
class SoundTrack:
    """A video's first audio stream, as mono float32 at `sample_rate`, or why there is none."""

    samples: np.ndarray | None
    sample_rate: int
    notes: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return 0.0 if self.samples is None else len(self.samples) / self.sample_rate


def read_sound_track(path: str | Path, sample_rate: int = 16_000, max_seconds: float | None = None) -> SoundTrack:
    """Decode and resample the first audio stream; a missing or unreadable one is a note, not an error
    (the pictures can still be read)."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as err:
        return SoundTrack(None, sample_rate, [f"cannot open the container for its sound ({err})"])
    with container:
        if not container.streams.audio:
            return SoundTrack(None, sample_rate, ["the video has no sound track"])
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks: list[np.ndarray] = []
        total, limit = 0, int(max_seconds * sample_rate) if max_seconds else None
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    total += len(chunk)
                if limit is not None and total >= limit:
                    break
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except (av.error.FFmpegError, ValueError) as err:
            if not chunks:
                return SoundTrack(None, sample_rate, [f"the sound track cannot be decoded ({err})"])
            return SoundTrack(np.concatenate(chunks)[:limit], sample_rate,
                              [f"the sound track stops being readable at {total / sample_rate:.1f} s ({err})"])
    if not chunks:
        return SoundTrack(None, sample_rate, ["the sound track is empty"])
    samples = np.concatenate(chunks).astype(np.float32)[:limit]
    notes = [] if limit is None or len(samples) < limit else [f"sound read up to {max_seconds:.0f} s only"]
    return SoundTrack(samples, sample_rate, notes)


class VideoWriter:
    """Frames (RGB uint8) to an H.264 mp4 (yuv420p, moov atom first, so it plays while loading),
    with the sound track of `audio_from` copied in as AAC, cut to the length of the frames."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float, audio_from: str | Path | None = None):
        import av

        self.path = Path(path)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.audio_from = audio_from
        self._container = av.open(str(self.path), mode="w", options={"movflags": "+faststart"})
        # libx264 wants even sides; one column or row is dropped from an odd-sized frame.
        self._size = (width - width % 2, height - height % 2)
        self._video = self._container.add_stream("libx264", rate=self.fps)
        self._video.width, self._video.height = self._size
        self._video.pix_fmt = "yuv420p"
        self._video.options = {"crf": "23", "preset": "veryfast"}
        self.frames = 0
        # Every stream must exist before the first packet is written: the sound's is added now.
        self._audio, self.notes = None, []
        if audio_from is not None:
            rate = _audio_rate(audio_from, self.notes)
            if rate:
                self._audio = self._container.add_stream("aac", rate=rate)
                self._audio.layout = "stereo"

    def write(self, rgb: np.ndarray) -> None:
        import av

        w, h = self._size
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:h, :w]), format="rgb24")
        frame.pts = self.frames
        for packet in self._video.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> list[str]:
        """Finish the file; returns notes (e.g. why the sound could not be copied)."""
        for packet in self._video.encode(None):
            self._container.mux(packet)
        if self._audio is not None:
            self.notes += self._copy_audio(self.frames / float(self.fps))
        self._container.close()
        self._container = None
        return self.notes

    def _copy_audio(self, seconds: float) -> list[str]:
        import av

        try:
            source = av.open(str(self.audio_from))
        except (av.error.FFmpegError, OSError) as err:
            return [f"sound not copied: {err}"]
        with source:
            decoded, stream = source.streams.audio[0], self._audio
            rate = stream.rate
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=rate)
            written, limit = 0, int(seconds * rate)
            try:
                for frame in source.decode(decoded):
                    for out in resampler.resample(frame):
                        take = min(out.samples, limit - written)
                        if take <= 0:
                            break
                        if take < out.samples:
                            out = _head(out, take, rate)
                        out.pts = written
                        written += out.samples
                        for packet in stream.encode(out):
                            self._container.mux(packet)
                    if written >= limit:
                        break
            except (av.error.FFmpegError, ValueError) as err:
                return [f"sound copied up to {written / rate:.1f} s only ({err})"]
            for packet in stream.encode(None):
                self._container.mux(packet)
        return []

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._container is not None and exc[0] is not None:
            self._container.close()


def _audio_rate(path: str | Path, notes: list[str]) -> int | None:
    """The sample rate of the first audio stream, or None (with a note when it cannot be read)."""
    import av

    try:
        with av.open(str(path)) as source:
            return (source.streams.audio[0].rate or 48_000) if source.streams.audio else None
    except (av.error.FFmpegError, OSError) as err:
        notes.append(f"sound not copied: {err}")
        return None


def _head(frame: Any, samples: int, rate: int) -> Any:
    """The first `samples` of a planar float audio frame."""
    import av

    planes = frame.to_ndarray()[:, :samples]
    out = av.AudioFrame.from_ndarray(np.ascontiguousarray(planes), format="fltp", layout="stereo")
    out.sample_rate = rate
    return out


def probe(path: str | Path) -> dict[str, Any]:
    """Codec, size and duration of each stream: what tests and users check an output with."""
    import av

    with av.open(str(path)) as container:
        streams = []
        for s in container.streams:
            duration = float(s.duration * s.time_base) if s.duration and s.time_base else None
            entry = {"type": s.type, "codec": s.codec_context.name, "duration_s": duration}
            if s.type == "video":
                entry.update(width=s.codec_context.width, height=s.codec_context.height,
                             pix_fmt=s.codec_context.pix_fmt)
            if s.type == "audio":
                entry.update(sample_rate=s.codec_context.sample_rate, channels=s.codec_context.channels)
            streams.append(entry)
        return {"streams": streams, "duration_s": container.duration / 1e6 if container.duration else None}
