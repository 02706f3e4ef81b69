"""Waveform augmentation for voice training: the recording conditions users have and corpora lack.

RAVDESS and EmoDB are quiet studio recordings. Users send phone calls, laptop microphones, rooms
with echo and streets with noise. `perturb` applies a random chain of those conditions to one
16 kHz clip; training (`--wave-copies N`) adds N perturbed copies of every clip, seeded by the
clip's position, computed once and cached with the log-mel features. numpy and soxr only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from emodetect.voice import features as F


@dataclass(frozen=True)
class WaveAugment:
    """Ranges and probabilities of each perturbation (applied in this order)."""

    speed: tuple[float, float] = (0.9, 1.1)  # tempo and pitch together, as a resampling
    p_reverb: float = 0.4
    rt60_s: tuple[float, float] = (0.15, 0.7)  # room decay time
    p_telephone: float = 0.3  # 300-3400 Hz band and 8 kHz sampling
    p_noise: float = 0.6
    snr_db: tuple[float, float] = (3.0, 30.0)
    noise_tilt: tuple[float, float] = (0.0, 2.0)  # spectral slope: 0 white, 1 pink, 2 brown
    gain_db: tuple[float, float] = (-15.0, 5.0)

    def key(self) -> dict:
        """What the feature cache is keyed on."""
        return asdict(self)


def _fft_filter(x: np.ndarray, gain_of_hz) -> np.ndarray:
    spectrum = np.fft.rfft(x)
    spectrum *= gain_of_hz(np.fft.rfftfreq(len(x), 1 / F.SAMPLE_RATE))
    return np.fft.irfft(spectrum, len(x)).astype(np.float32)


def reverberate(x: np.ndarray, rt60_s: float, rng: np.random.Generator) -> np.ndarray:
    """Convolve with a synthetic room: a direct path and exponentially decaying diffuse noise."""
    n = int(rt60_s * F.SAMPLE_RATE)
    t = np.arange(n) / F.SAMPLE_RATE
    impulse = rng.standard_normal(n) * np.exp(-6.9 * t / rt60_s) * 0.3
    impulse[0] = 1.0
    size = 1 << int(np.ceil(np.log2(len(x) + n)))
    wet = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(impulse, size), size)[:len(x)]
    peak = np.abs(wet).max()
    return (wet * (np.abs(x).max() / peak) if peak > 0 else wet).astype(np.float32)


def telephone(x: np.ndarray) -> np.ndarray:
    """Narrow-band telephone speech: 8 kHz sampling and a 300-3400 Hz pass band."""
    narrow = F.resample(F.resample(x, F.SAMPLE_RATE, 8000), 8000, F.SAMPLE_RATE)[:len(x)]
    return _fft_filter(narrow, lambda hz: ((hz >= 300) & (hz <= 3400)).astype(np.float64))


def add_noise(x: np.ndarray, snr_db: float, tilt: float, rng: np.random.Generator) -> np.ndarray:
    """Coloured noise (power falling as 1/f**tilt) at `snr_db` below the speech's power."""
    noise = _fft_filter(rng.standard_normal(len(x)), lambda hz: np.maximum(hz, 20.0) ** (-tilt / 2))
    speech_power, noise_power = float(np.mean(x ** 2)), float(np.mean(noise ** 2))
    if speech_power == 0 or noise_power == 0:
        return x
    return (x + noise * np.sqrt(speech_power / noise_power / 10 ** (snr_db / 10))).astype(np.float32)


def perturb(x: np.ndarray, rng: np.random.Generator, aug: WaveAugment = WaveAugment()) -> np.ndarray:
    """One random recording condition for a 16 kHz mono clip; kept within [-1, 1]."""
    x = np.asarray(x, dtype=np.float32)
    speed = rng.uniform(*aug.speed)
    x = F.resample(x, int(round(F.SAMPLE_RATE * speed)), F.SAMPLE_RATE)
    if rng.random() < aug.p_reverb:
        x = reverberate(x, rng.uniform(*aug.rt60_s), rng)
    if rng.random() < aug.p_telephone:
        x = telephone(x)
    if rng.random() < aug.p_noise:
        x = add_noise(x, rng.uniform(*aug.snr_db), rng.uniform(*aug.noise_tilt), rng)
    x = x * 10 ** (rng.uniform(*aug.gain_db) / 20)
    return np.clip(x, -1.0, 1.0).astype(np.float32)
