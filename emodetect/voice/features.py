"""Audio in, log-mel out: the one feature path that training, evaluation and inference all use.

Everything here is numpy (files are decoded by emodetect.media, uploads by soundfile, and
resampled by soxr), so inference needs no torch, and the log-mel a model was trained on is bit-for-bit the one it sees when serving.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np

from emodetect import media
# Named here too, where the voice code and the service have always found them.
from emodetect.media import DECODE_BLOCK_SAMPLES, MAX_SAMPLE_RATE, AudioError, DecodedAudio, to_mono  # noqa: F401

SAMPLE_RATE = 16_000
N_FFT = 512  # 32 ms FFT
WIN_LENGTH = 400  # 25 ms Hann window
HOP_LENGTH = 160  # 10 ms frames: 100 frames per second
N_MELS = 64
F_MIN, F_MAX = 50.0, 8000.0
LOG_FLOOR = 1e-6  # power floor before the log: digital silence maps to ln(1e-6) = -13.8
# Suffixes that `batch` takes for recordings; the reader itself opens whatever FFmpeg demuxes.
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".aiff", ".aif", ".au", ".w64", ".caf", ".mp3",
                  ".m4a", ".aac", ".weba", ".wma", ".amr"}
# Frame loudness below which a frame counts as silence, in dB relative to full scale (RMS).
SILENCE_DBFS = -65.0  # RAVDESS speech peaks near -35 dBFS; its softest clips near -50
# ... and below the loudest frame of the same stretch by this much (room noise under loud speech).
SILENCE_RELATIVE_DB = 40.0


@dataclass(frozen=True)
class AudioInfo:
    path: str
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def _soundfile():
    import soundfile

    return soundfile


def audio_info(path: str | Path) -> AudioInfo:
    """Header of an audio file (any container FFmpeg reads); raises AudioError naming the file."""
    header = media.audio_header(path)
    if header.duration_s is not None and header.duration_s <= 0:
        raise AudioError(f"{path}: the file holds no audio samples (zero length)", "empty")
    # A container that does not say its length (a live-recorded webm) counts as long: it is streamed.
    frames = 2**62 if header.duration_s is None else round(header.duration_s * header.sample_rate)
    return AudioInfo(str(path), header.sample_rate, header.channels, frames)


def resample(x: np.ndarray, sample_rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Resample mono float32 audio with soxr (band-limited, high quality)."""
    if sample_rate <= 0:
        raise AudioError(f"sample rate must be positive, got {sample_rate}")
    if sample_rate == target or len(x) == 0:
        return np.asarray(x, dtype=np.float32)
    import soxr

    return soxr.resample(np.asarray(x, dtype=np.float32), sample_rate, target, quality="HQ").astype(np.float32)


def prepare(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Any array (frames or frames x channels) at any rate -> 16 kHz mono float32 in [-1, 1]."""
    x = np.asarray(x)
    if x.ndim == 2 and x.shape[0] <= 8 < x.shape[1]:
        raise AudioError(f"audio array of shape {x.shape} looks channels-first; pass frames x channels "
                         "(transpose it: x.T)")
    return resample(to_mono(x), int(sample_rate))


def load_audio(path: str | Path, max_seconds: float | None = None) -> np.ndarray:
    """Read a whole file as 16 kHz mono float32; long files are better read with `stream_audio`."""
    info = audio_info(path)
    if max_seconds is not None and info.duration_s > max_seconds:
        raise AudioError(f"{path}: {info.duration_s:.0f} s is longer than {max_seconds:.0f} s; "
                         "read it with stream_audio")
    return media.read_audio(path, SAMPLE_RATE).samples


def _without_addresses(err: Exception) -> str:
    """libsndfile's message names the in-memory file as `<_io.BytesIO object at 0x...>`: an
    internal address that means nothing to a client and should not leave the server."""
    import re

    return re.sub(r"<[\w.]+ object at 0x[0-9a-f]+>", "the upload", str(err))


def decode_audio(data: bytes, name: str = "upload", max_seconds: float | None = None, to_rate: int | None = None,
                 max_sample_rate: int = MAX_SAMPLE_RATE) -> DecodedAudio:
    """Decode an in-memory audio file (an upload) to mono float32.

    With `max_seconds`, a longer recording is refused from its header before decoding, and, where
    the header does not tell, as soon as the decoded length passes the limit: a small FLAC of an
    hour of silence must not become gigabytes of samples. A rate over `max_sample_rate` is refused
    from the header, since seconds alone do not bound samples. Blocks of at most
    DECODE_BLOCK_SAMPLES are mixed to mono and, with `to_rate` below the recording's rate,
    resampled as they come, so what is held is the output, never the decoded original.
    """
    import io

    sf = _soundfile()
    if not data:
        raise AudioError(f"{name}: empty (0 bytes)", "empty")
    unreadable = f"{name}: not a readable audio upload (supported: {media.AUDIO_FORMATS})"
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        container_format = media.sniff_audio(data[:16])
        if container_format is None:
            raise AudioError(f"{unreadable}: {_without_addresses(err)}", "unsupported") from err
        return _decode_with_ffmpeg(data, name, container_format, max_seconds, to_rate, max_sample_rate)
    rate = int(info.samplerate)
    if not 0 < rate <= max_sample_rate:
        raise AudioError(f"{name}: a sample rate of {rate:,} Hz is over the limit of {max_sample_rate:,} Hz",
                         "too_large" if rate > 0 else "invalid")
    limit = int(max_seconds * rate) if max_seconds else None

    def too_long(seconds: float) -> AudioError:
        return AudioError(f"{name}: {seconds:,.0f} s of audio is over the limit of {max_seconds:,.0f} s",
                          "too_large")

    if limit is not None and 0 < info.frames < 2**62 and info.frames > limit:
        raise too_long(info.frames / rate)
    out_rate = to_rate if to_rate is not None and to_rate < rate else rate
    resampler = None
    if out_rate != rate:
        import soxr

        resampler = soxr.ResampleStream(rate, out_rate, 1, dtype="float32", quality="HQ")
    block_frames = max(1, min(10 * rate, DECODE_BLOCK_SAMPLES // max(1, int(info.channels))))
    blocks, total = [], 0
    try:
        with sf.SoundFile(io.BytesIO(data)) as handle:
            for block in handle.blocks(blocksize=block_frames, dtype="float32", always_2d=True):
                total += len(block)
                if limit is not None and total > limit:
                    raise too_long(total / rate)
                mono = to_mono(block)
                blocks.append(mono if resampler is None else resampler.resample_chunk(mono))
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(f"{name}: decoding failed: {_without_addresses(err)}", "invalid") from err
    if total == 0:
        raise AudioError(f"{name}: the file holds no audio samples (zero length)", "empty")
    if resampler is not None:
        blocks.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    return DecodedAudio(np.concatenate(blocks).astype(np.float32, copy=False), out_rate, rate)


def _decode_with_ffmpeg(data: bytes, name: str, container_format: str, max_seconds: float | None,
                        to_rate: int | None, max_sample_rate: int) -> DecodedAudio:
    """What libsndfile cannot read (AAC in .m4a from a phone, WebM from a browser) through the one
    PyAV reader `voice FILE` uses, from memory, with the demuxer the first bytes name
    (media.sniff_audio): FFmpeg never probes an upload (issue 34), and it is never written to disk."""
    upload = media.MemoryFile(data, name)
    header = media.audio_header(upload, container_format, max_sample_rate)
    down = to_rate if to_rate is not None and to_rate < header.sample_rate else None
    return media.read_audio(upload, down, max_seconds, container_format, max_sample_rate)


def stream_audio(path: str | Path, block_seconds: float = 30.0) -> Iterator[np.ndarray]:
    """Yield a file as consecutive 16 kHz mono blocks, so memory stays bounded for hours of audio."""
    return media.read_audio_blocks(path, SAMPLE_RATE, block_seconds)


@lru_cache(maxsize=4)
def mel_filterbank(n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE,
                   f_min: float = F_MIN, f_max: float = F_MAX) -> np.ndarray:
    """Triangular HTK-mel filters, n_mels x (n_fft // 2 + 1), each with unit peak.

    Cached and returned read-only: it is a constant of the feature definition.
    """
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)

    fft_freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (fft_freqs[None] - lower) / (centre - lower)
    falling = (upper - fft_freqs[None]) / (upper - centre)
    bank = np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)
    bank.setflags(write=False)
    return bank


def mel_centres(n_mels: int = N_MELS, f_min: float = F_MIN, f_max: float = F_MAX) -> np.ndarray:
    """Centre frequency (Hz) of each mel band, for tests and plots."""
    mel = np.linspace(2595.0 * np.log10(1 + f_min / 700), 2595.0 * np.log10(1 + f_max / 700), n_mels + 2)
    return (700.0 * (10.0 ** (mel / 2595.0) - 1.0))[1:-1]


def n_frames(n_samples: int) -> int:
    """Frames a signal of n_samples gives (centred frames, one every HOP_LENGTH samples)."""
    return 1 + n_samples // HOP_LENGTH


FFT_BLOCK_FRAMES = 64


def power_spectrogram(x: np.ndarray) -> np.ndarray:
    """|STFT|^2 with a periodic Hann window, centred frames (zero padding): frames x (N_FFT/2+1)."""
    x = np.asarray(x, dtype=np.float32)
    pad = N_FFT // 2
    padded = np.pad(x, (pad, pad))
    count = n_frames(len(x))
    needed = (count - 1) * HOP_LENGTH + N_FFT
    if len(padded) < needed:
        padded = np.pad(padded, (0, needed - len(padded)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH][:count]
    window = np.zeros(N_FFT, dtype=np.float32)
    offset = (N_FFT - WIN_LENGTH) // 2
    window[offset:offset + WIN_LENGTH] = np.hanning(WIN_LENGTH + 1)[:-1]
    power = np.empty((count, N_FFT // 2 + 1), dtype=np.float32)
    # A block of frames at a time: the same numbers, 3-4x faster than one FFT over a 3 s window,
    # whose megabyte-sized temporaries cost more in fresh pages than the FFT itself.
    for start in range(0, count, FFT_BLOCK_FRAMES):
        spectrum = np.fft.rfft(frames[start:start + FFT_BLOCK_FRAMES] * window, axis=1)
        power[start:start + FFT_BLOCK_FRAMES] = spectrum.real ** 2 + spectrum.imag ** 2
    return power


def log_mel(x: np.ndarray) -> np.ndarray:
    """16 kHz mono waveform -> natural-log mel power, N_MELS x frames, float32.

    The model normalises gain inside its graph, so this stays a plain, checkable transform.
    """
    power = power_spectrogram(x)
    mel = power @ mel_filterbank().T
    return np.log(mel + LOG_FLOOR).T.astype(np.float32)


def frame_db(x: np.ndarray) -> np.ndarray:
    """RMS level of each 10 ms hop, in dB relative to full scale."""
    count = len(x) // HOP_LENGTH
    if count == 0:
        return np.full(1, -200.0) if len(x) == 0 else np.array([_db(np.mean(np.square(x)))])
    frames = np.asarray(x[:count * HOP_LENGTH], dtype=np.float64).reshape(count, HOP_LENGTH)
    return _db(np.mean(frames ** 2, axis=1))


def _db(power):
    return 10.0 * np.log10(np.maximum(power, 1e-20))


def active_frames(x: np.ndarray, reference_db: float | None = None) -> np.ndarray:
    """Which 10 ms hops carry sound: above SILENCE_DBFS and within SILENCE_RELATIVE_DB of the
    loudest hop (of `x`, or `reference_db` when judging a window against its whole recording)."""
    db = frame_db(x)
    loudest = db.max() if reference_db is None else reference_db
    return (db > SILENCE_DBFS) & (db > loudest - SILENCE_RELATIVE_DB)


def trim_silence(x: np.ndarray, margin_s: float = 0.1) -> np.ndarray:
    """Cut leading and trailing silence (keeping a short margin); all-silent audio comes back empty."""
    active = active_frames(x)
    if not active.any():
        return x[:0]
    first, last = int(np.argmax(active)), len(active) - int(np.argmax(active[::-1]))
    margin = int(margin_s * SAMPLE_RATE)
    return x[max(0, first * HOP_LENGTH - margin):min(len(x), last * HOP_LENGTH + margin)]


def window_starts(n_samples: int, window: int, hop: int) -> list[int]:
    """Start sample of each window: every `hop`, with the last window flush with the end."""
    if n_samples <= window:
        return [0]
    starts = list(range(0, n_samples - window + 1, hop))
    if starts[-1] + window < n_samples:
        starts.append(n_samples - window)
    return starts


def fit_window(x: np.ndarray, window: int) -> np.ndarray:
    """Centre a short clip in a window of zeros (or return the first `window` samples of a long one)."""
    if len(x) >= window:
        return x[:window]
    left = (window - len(x)) // 2
    return np.pad(x, (left, window - len(x) - left))


def clip_windows(x: np.ndarray, window_s: float, hop_s: float) -> tuple[np.ndarray, list[int]]:
    """A trimmed clip -> windows x samples, and each window's start sample in the clip."""
    window, hop = int(round(window_s * SAMPLE_RATE)), max(1, int(round(hop_s * SAMPLE_RATE)))
    starts = window_starts(len(x), window, hop)
    return np.stack([fit_window(x[s:s + window], window) for s in starts]), starts


def window_log_mels(windows: np.ndarray) -> np.ndarray:
    """windows x samples -> windows x 1 x N_MELS x frames, the model input."""
    return np.stack([log_mel(w) for w in windows])[:, None]
