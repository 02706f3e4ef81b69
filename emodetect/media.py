"""Media containers through PyAV (FFmpeg's libraries, in the `av` wheels): the one audio reader
(recordings for `voice`, sound tracks for `video`), and annotated frames written as an H.264 mp4
that browsers play, with the sound.

OpenCV still decodes the frames (vision/video.py); what it cannot do is read audio or write a
browser-playable codec, which is what this module is for. Audio is read here, not by libsndfile,
because libsndfile has no AAC: phone recordings (.m4a) and the sound of every mp4 need FFmpeg.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from emodetect.errors import InputError


class MediaError(InputError):
    """A container or stream that cannot be read or written."""


class AudioError(MediaError):
    """Audio that cannot be used: unreadable, not audio, empty, or over a limit."""


# Highest sample rate read: studio audio stops at 192 kHz. A header claiming more is a bomb (a 1.5 MB
# FLAC of 599 s at 655,350 Hz passed the seconds limit and cost 3 GB; issue 34).
MAX_SAMPLE_RATE = 192_000
# Samples (frames x channels) mixed to mono at once, so a many-channel file costs no more than a mono one.
DECODE_BLOCK_SAMPLES = 2**20
# What the reader opens, for messages: every container FFmpeg demuxes, these being the usual ones.
AUDIO_FORMATS = "wav, flac, mp3, m4a/aac, ogg/vorbis/opus, webm, mp4, aiff and the rest FFmpeg reads"


# The containers an uploaded video may be (file suffix -> FFmpeg demuxer). Left to probe, FFmpeg
# also opens playlists (HLS), concat lists and image sequences, which open other files: an
# uploaded 117-byte `.m3u8` naming a server path made /v1/video analyse and return that file
# (issue 34). Uploads are opened with one of these demuxers by name, never probed.
UPLOAD_FORMATS = {"mp4": "mov", "mkv": "matroska", "avi": "avi"}
# The same for an uploaded recording that libsndfile cannot read: the audio containers recognised
# from their first bytes (`sniff_audio`), each opened with its demuxer by name.
AUDIO_UPLOAD_FORMATS = ("mov", "matroska", "ogg", "mp3", "aac", "flac", "wav", "aiff", "amr", "caf")
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


def sniff_audio(head: bytes) -> str | None:
    """The FFmpeg demuxer (one of AUDIO_UPLOAD_FORMATS) that a recording's first bytes announce, or
    None: m4a/mp4/3gp, WebM/Matroska, Ogg, mp3, ADTS AAC, FLAC, WAV, AIFF, AMR, CAF."""
    if head[4:8] in _MP4_ATOMS:
        return "mov"
    for magic, demuxer in ((b"\x1a\x45\xdf\xa3", "matroska"), (b"OggS", "ogg"), (b"ID3", "mp3"),
                           (b"fLaC", "flac"), (b"#!AMR", "amr"), (b"caff", "caf")):
        if head.startswith(magic):
            return demuxer
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"FORM") and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:  # ADTS sync, layer 0: AAC
        return "aac"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # MPEG audio frame sync
        return "mp3"
    return None


class MemoryFile(io.BytesIO):
    """An upload held in memory, read by PyAV as a file (never written to disk); str() is its
    name, so the messages that name a path name the upload."""

    def __init__(self, data: bytes, name: str):
        super().__init__(data)
        self.name = name

    def __str__(self) -> str:
        return self.name


def open_container(path: str | Path | MemoryFile, container_format: str | None = None) -> Any:
    """av.open for reading; with `container_format` (a value of UPLOAD_FORMATS) only that demuxer,
    over the file protocol alone, so that an upload cannot make FFmpeg open anything else."""
    import av

    if isinstance(path, MemoryFile):  # opened again for each look (header, then samples)
        path.seek(0)
        return av.open(path, format=container_format, options=dict(UPLOAD_OPTIONS))
    if container_format is None:
        return av.open(str(path))
    return av.open(str(path), format=container_format, options=dict(UPLOAD_OPTIONS))


class AudioHeader(NamedTuple):
    """What a container says of its first audio stream, before anything is decoded."""

    sample_rate: int
    channels: int
    duration_s: float | None  # None where the container does not say (a live-recorded webm)


class DecodedAudio(NamedTuple):
    samples: np.ndarray  # mono float32 at sample_rate
    sample_rate: int
    source_rate: int  # the recording's own rate, as its header says


class NoAudioStream(AudioError):
    """A readable container without sound (a silent video): for `video`, a note, not an error."""

    reason = "unsupported"


def to_mono(x: np.ndarray) -> np.ndarray:
    """Average channels: frames x channels -> frames (a 1-D input is returned as float32)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim not in (1, 2):
        raise AudioError(f"audio must be 1-D (mono) or 2-D (frames x channels), got shape {x.shape}")
    # Every path (arrays, whole files, streamed blocks) comes through here: NaN or infinity is an
    # error, and samples past full scale are clipped as a player would, so the log-mel stays finite.
    if not np.isfinite(x).all():
        raise AudioError("audio contains NaN or infinite samples")
    x = np.clip(x, -1.0, 1.0)
    return x.mean(axis=1, dtype=np.float32) if x.ndim == 2 else x


def _open_audio(path: str | Path, container_format: str | None, max_sample_rate: int) -> tuple[Any, Any]:
    """(container, first audio stream), checked: a file that is not audio, has no sound, or claims a
    rate over `max_sample_rate` is an AudioError naming the file, before anything is decoded."""
    import av

    if not isinstance(path, MemoryFile) and not Path(path).is_file():
        raise AudioError(f"{path}: no such file")
    try:
        container = open_container(path, container_format)
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise AudioError(f"{path}: not a readable audio file (supported: {AUDIO_FORMATS}): "
                         f"{ffmpeg_reason(err)}", "unsupported") from err
    if not container.streams.audio:
        container.close()
        raise NoAudioStream(f"{path}: no audio stream in it")
    stream = container.streams.audio[0]
    rate = int(stream.codec_context.sample_rate or 0)
    if not 0 < rate <= max_sample_rate:
        container.close()
        raise AudioError(f"{path}: a sample rate of {rate:,} Hz is over the limit of {max_sample_rate:,} Hz"
                         if rate > 0 else f"{path}: the audio stream has no sample rate",
                         "too_large" if rate > 0 else "invalid")
    return container, stream


def _duration(container: Any, stream: Any) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return container.duration / 1e6 if container.duration else None  # in AV_TIME_BASE units


def audio_header(path: str | Path, container_format: str | None = None,
                 max_sample_rate: int = MAX_SAMPLE_RATE) -> AudioHeader:
    """Rate, channels and duration of the first audio stream; AudioError naming the file if none."""
    container, stream = _open_audio(path, container_format, max_sample_rate)
    with container:
        return AudioHeader(int(stream.codec_context.sample_rate), int(stream.codec_context.channels or 1),
                           _duration(container, stream))


def read_audio_blocks(path: str | Path, to_rate: int | None = None, block_seconds: float = 30.0,
                      max_seconds: float | None = None, container_format: str | None = None,
                      max_sample_rate: int = MAX_SAMPLE_RATE) -> Iterator[np.ndarray]:
    """The first audio stream of any container FFmpeg reads, as consecutive mono float32 blocks at
    `to_rate` (default: its own rate), so memory stays bounded for hours of audio.

    At most DECODE_BLOCK_SAMPLES decoded samples are held before they are mixed to mono and
    resampled; soxr's streaming resampler carries its state across blocks, so the joined blocks equal
    a one-shot resample. With `max_seconds`, a longer recording is refused from its header or as
    soon as decoding passes the limit (a small FLAC of an hour of silence must not become
    gigabytes). `container_format`: see `open_container`.
    """
    import av

    container, stream = _open_audio(path, container_format, max_sample_rate)
    with container:
        rate = int(stream.codec_context.sample_rate)
        channels = max(1, int(stream.codec_context.channels or 1))
        limit = int(max_seconds * rate) if max_seconds else None
        duration = _duration(container, stream)
        if max_seconds and duration and duration > max_seconds:
            raise _too_long(path, duration, max_seconds)
        resampler = _Resampler(rate, to_rate or rate)
        block = max(1, min(int(block_seconds * rate), DECODE_BLOCK_SAMPLES // channels))
        # Packed float at the stream's own layout and rate: FFmpeg converts the sample format only.
        converter = av.AudioResampler(format="flt")
        pending: list[np.ndarray] = []
        held = total = 0
        try:
            for frame in container.decode(stream):
                for out in converter.resample(frame):
                    samples = out.to_ndarray().reshape(-1, len(out.layout.channels))
                    pending.append(samples)
                    held, total = held + len(samples), total + len(samples)
                if limit is not None and total > limit:
                    raise _too_long(path, total / rate, max_seconds)
                if held >= block:
                    yield resampler(to_mono(np.concatenate(pending)))
                    pending, held = [], 0
        except AudioError:
            raise
        except (av.error.FFmpegError, ValueError) as err:
            raise AudioError(f"{path}: decoding failed at {total / rate:.1f} s: {ffmpeg_reason(err)}") from err
        if total == 0:
            raise AudioError(f"{path}: the file holds no audio samples (zero length)", "empty")
        tail = resampler(to_mono(np.concatenate(pending)) if pending else np.zeros(0, np.float32), last=True)
        if len(tail):
            yield tail


def read_audio(path: str | Path, to_rate: int | None = None, max_seconds: float | None = None,
               container_format: str | None = None, max_sample_rate: int = MAX_SAMPLE_RATE) -> DecodedAudio:
    """A whole recording as mono float32 at `to_rate` (default: its own); see `read_audio_blocks`."""
    header = audio_header(path, container_format, max_sample_rate)
    blocks = list(read_audio_blocks(path, to_rate, max_seconds=max_seconds, container_format=container_format,
                                    max_sample_rate=max_sample_rate))
    return DecodedAudio(np.concatenate(blocks).astype(np.float32, copy=False), to_rate or header.sample_rate,
                        header.sample_rate)


def _too_long(path: str | Path, seconds: float, max_seconds: float) -> AudioError:
    return AudioError(f"{path}: {seconds:,.0f} s of audio is over the limit of {max_seconds:,.0f} s", "too_large")


class _Resampler:
    """soxr's streaming resampler, or nothing where the rates agree: the one resampler for every
    recording, so a file's log-mel is the one an array of the same samples gets."""

    def __init__(self, rate: int, to_rate: int):
        self._stream = None
        if rate != to_rate:
            import soxr

            self._stream = soxr.ResampleStream(rate, to_rate, 1, dtype="float32", quality="HQ")

    def __call__(self, mono: np.ndarray, last: bool = False) -> np.ndarray:
        if self._stream is None:
            return mono
        return self._stream.resample_chunk(mono, last=last).astype(np.float32, copy=False)


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
    """A video's sound through the one audio reader, up to `max_seconds`; a missing or unreadable
    one is a note, not an error (the pictures can still be read). `container_format`: see
    `open_container`."""
    blocks: list[np.ndarray] = []
    total, limit = 0, int(max_seconds * sample_rate) if max_seconds else None
    try:
        for block in read_audio_blocks(path, sample_rate, block_seconds=1.0, container_format=container_format):
            blocks.append(block)
            total += len(block)
            if limit is not None and total >= limit:
                break
    except NoAudioStream:
        return SoundTrack(None, sample_rate, ["the video has no sound track"])
    except AudioError as err:
        err = str(err).removeprefix(f"{path}: ")  # an upload's temporary path means nothing to its sender
        if not blocks:
            return SoundTrack(None, sample_rate, [f"the sound track cannot be decoded ({err})"])
        return SoundTrack(np.concatenate(blocks), sample_rate,
                          [f"the sound track stops being readable at {total / sample_rate:.1f} s ({err})"])
    samples = np.concatenate(blocks)[:limit]
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

    def __init__(self, path: str | Path, container_format: str, max_pixels: int | None = None):
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
        # Checked on the stream's header before any frame is decoded, and on each frame before it is
        # converted (a stream may change size): 8192x8192 frames from a 482 KB file cost 1.3 GB (issue 34).
        self._max_pixels, self._name = max_pixels, Path(path).name
        context = self._stream.codec_context
        self._check_size(context.width or 0, context.height or 0)
        self._frames = self._container.decode(self._stream)

    def _check_size(self, width: int, height: int) -> None:
        if self._max_pixels and width * height > self._max_pixels:
            self._container.close()
            raise MediaError(f"{self._name}: too many pixels per frame: {width}x{height} = {width * height:,}, "
                             f"the limit is {self._max_pixels:,}", reason="too_large")

    def isOpened(self) -> bool:  # noqa: N802 (cv2's name)
        return True

    def get(self, prop: int) -> float:
        import cv2

        if prop == cv2.CAP_PROP_FPS:
            rate = self._stream.average_rate or self._stream.guessed_rate
            return float(rate) if rate else 0.0
        if prop == cv2.CAP_PROP_FRAME_COUNT:
            return float(self._stream.frames or 0)
        if prop == cv2.CAP_PROP_FRAME_WIDTH:
            return float(self._stream.codec_context.width or 0)
        if prop == cv2.CAP_PROP_FRAME_HEIGHT:
            return float(self._stream.codec_context.height or 0)
        return 0.0

    def grab(self) -> bool:
        return self._next() is not None

    def read(self) -> tuple[bool, np.ndarray | None]:
        frame = self._next()
        if frame is None:
            return False, None
        self._check_size(frame.width, frame.height)
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
