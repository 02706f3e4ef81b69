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


# The containers an uploaded video may be (file suffix -> FFmpeg demuxer). Left to probe, FFmpeg
# also opens playlists (HLS), concat lists and image sequences, which open other files: an
# uploaded 117-byte `.m3u8` naming a server path made /v1/video analyse and return that file
# (issue 34). Uploads are opened with one of these demuxers by name, never probed.
UPLOAD_FORMATS = {"mp4": "mov", "mkv": "matroska", "avi": "avi"}
# Only the upload itself: a demuxer may not reach any other file or protocol.
UPLOAD_OPTIONS = {"protocol_whitelist": "file"}
# First atom of an ISO/QuickTime file: `ftyp` in mp4, m4v and mov; older QuickTime starts elsewhere.
_MP4_ATOMS = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")


def sniff_container(head: bytes) -> str | None:
    """The allowed container that a file's first bytes announce (a key of UPLOAD_FORMATS), or None."""
    if head[4:8] in _MP4_ATOMS:
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska and WebM
        return "mkv"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    return None


def open_container(path: str | Path, container_format: str | None = None) -> Any:
    """av.open for reading; with `container_format` (a value of UPLOAD_FORMATS) only that demuxer,
    over the file protocol alone, so that an upload cannot make FFmpeg open anything else."""
    import av

    if container_format is None:
        return av.open(str(path))
    return av.open(str(path), format=container_format, options=dict(UPLOAD_OPTIONS))


@dataclass
class SoundTrack:
    """A video's first audio stream, as mono float32 at `sample_rate`, or why there is none."""

    samples: np.ndarray | None
    sample_rate: int
    notes: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return 0.0 if self.samples is None else len(self.samples) / self.sample_rate


def read_sound_track(path: str | Path, sample_rate: int = 16_000, max_seconds: float | None = None,
                     container_format: str | None = None) -> SoundTrack:
    """Decode and resample the first audio stream; a missing or unreadable one is a note, not an error
    (the pictures can still be read). `container_format`: see `open_container`."""
    import av

    try:
        container = open_container(path, container_format)
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
    with the sound track of `audio_from` copied in as AAC, cut to the length of the frames
    (`audio_format`: the demuxer to read it with, see `open_container`)."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float, audio_from: str | Path | None = None,
                 audio_format: str | None = None):
        import av

        self.path = Path(path)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.audio_from, self.audio_format = audio_from, audio_format
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
            rate = _audio_rate(audio_from, self.notes, audio_format)
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
            source = open_container(self.audio_from, self.audio_format)
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


def _audio_rate(path: str | Path, notes: list[str], container_format: str | None = None) -> int | None:
    """The sample rate of the first audio stream, or None (with a note when it cannot be read)."""
    import av

    try:
        with open_container(path, container_format) as source:
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


class AVCapture:
    """What vision/video.py uses of cv2.VideoCapture (get, grab, read, release), decoded by PyAV with
    one named demuxer: OpenCV probes the container itself, and would open a playlist."""

    def __init__(self, path: str | Path, container_format: str):
        import av

        try:
            self._container = open_container(path, container_format)
        except (av.error.FFmpegError, OSError) as err:
            raise MediaError(f"{Path(path).name}: not a {container_format} video ({ffmpeg_reason(err)})",
                             reason="unsupported") from err
        if not self._container.streams.video:
            self._container.close()
            raise MediaError(f"{Path(path).name}: no video stream", reason="unsupported")
        self._stream = self._container.streams.video[0]
        self._frames = self._container.decode(self._stream)

    def isOpened(self) -> bool:  # noqa: N802 (cv2's name)
        return True

    def get(self, prop: int) -> float:
        import cv2

        if prop == cv2.CAP_PROP_FPS:
            rate = self._stream.average_rate or self._stream.guessed_rate
            return float(rate) if rate else 0.0
        if prop == cv2.CAP_PROP_FRAME_COUNT:
            return float(self._stream.frames or 0)
        return 0.0

    def grab(self) -> bool:
        return self._next() is not None

    def read(self) -> tuple[bool, np.ndarray | None]:
        frame = self._next()
        if frame is None:
            return False, None
        bgr = frame.to_ndarray(format="bgr24")
        # Turned upright as OpenCV does (phones store portrait video sideways with a display matrix).
        turns = round(getattr(frame, "rotation", 0) / 90) % 4
        return True, np.ascontiguousarray(np.rot90(bgr, turns)) if turns else bgr

    def release(self) -> None:
        self._container.close()

    def _next(self) -> Any:
        import av

        try:
            return next(self._frames)
        except (StopIteration, av.error.FFmpegError, ValueError):  # the end, or a damaged tail: stop there
            return None


def ffmpeg_reason(err: Exception) -> str:
    """FFmpeg's reason without the file name (a server path has no place in an answer)."""
    return getattr(err, "strerror", None) or type(err).__name__


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
