"""The one log-mel implementation, audio reading and resampling, checked against references."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from emodetect.voice import features as F


def tone(freq: float, seconds: float, rate: int = F.SAMPLE_RATE, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def naive_power_frame(x: np.ndarray, frame: int) -> np.ndarray:
    """|DFT|^2 of one centred, Hann-windowed frame, by the textbook sum (no FFT)."""
    padded = np.pad(x.astype(np.float64), (F.N_FFT // 2, F.N_FFT))
    segment = padded[frame * F.HOP_LENGTH:frame * F.HOP_LENGTH + F.N_FFT]
    n = np.arange(F.WIN_LENGTH)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / F.WIN_LENGTH)  # periodic Hann
    window = np.zeros(F.N_FFT)
    off = (F.N_FFT - F.WIN_LENGTH) // 2
    window[off:off + F.WIN_LENGTH] = hann
    k = np.arange(F.N_FFT // 2 + 1)[:, None]
    basis = np.exp(-2j * np.pi * k * np.arange(F.N_FFT)[None] / F.N_FFT)
    return np.abs(basis @ (segment * window)) ** 2


@pytest.mark.parametrize("samples", [4000, 3 * F.SAMPLE_RATE + 1234])  # one FFT block; several and a part
def test_power_spectrogram_matches_the_textbook_dft(samples):
    x = np.random.default_rng(0).normal(0, 0.1, samples).astype(np.float32)
    power = F.power_spectrogram(x)
    assert power.shape == (F.n_frames(len(x)), F.N_FFT // 2 + 1)
    block = F.FFT_BLOCK_FRAMES
    for frame in sorted({0, 7, block - 1, block, 2 * block + 1, power.shape[0] - 1} & set(range(len(power)))):
        reference = naive_power_frame(x, frame)
        np.testing.assert_allclose(power[frame], reference, rtol=2e-3, atol=1e-4)


@pytest.mark.parametrize("freq", [300.0, 1000.0, 3000.0, 6000.0])
def test_pure_tone_energy_lands_in_the_mel_band_centred_on_it(freq):
    mel = F.log_mel(tone(freq, 1.0))
    assert mel.shape == (F.N_MELS, F.n_frames(F.SAMPLE_RATE))
    loudest = int(mel[:, 10:-10].mean(axis=1).argmax())
    nearest = int(np.abs(F.mel_centres() - freq).argmin())
    assert abs(loudest - nearest) <= 1, (loudest, nearest)


def test_mel_filters_peak_at_their_centres_and_cover_the_spectrum():
    bank = F.mel_filterbank()
    freqs = np.linspace(0, F.SAMPLE_RATE / 2, F.N_FFT // 2 + 1)
    peaks = freqs[bank.argmax(axis=1)]
    spacing = F.SAMPLE_RATE / F.N_FFT
    assert np.all(np.abs(peaks - F.mel_centres()) <= spacing)
    inside = (freqs > F.mel_centres()[0]) & (freqs < F.mel_centres()[-1])
    assert np.all(bank[:, inside].sum(axis=0) > 0.5)  # no gaps between neighbouring filters
    assert not bank.flags.writeable


def test_louder_input_shifts_log_mel_by_the_gain_in_nepers():
    x = tone(500, 0.5)
    diff = F.log_mel(4 * x) - F.log_mel(x)
    voiced = F.log_mel(x) > -5
    np.testing.assert_allclose(diff[voiced], np.log(16), atol=1e-3)


def test_any_rate_and_channel_count_becomes_16k_mono(tmp_path):
    rate = 44_100
    left = tone(1000, 1.0, rate)
    stereo = np.stack([left, left], axis=1)
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo, rate)
    wave = F.load_audio(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - F.SAMPLE_RATE) <= 2
    spectrum = np.abs(np.fft.rfft(wave))
    assert abs(np.argmax(spectrum) * F.SAMPLE_RATE / len(wave) - 1000) < 3
    assert abs(np.sqrt(np.mean(wave[1000:-1000] ** 2)) - 0.3 / np.sqrt(2)) < 0.01


def test_streamed_blocks_equal_a_one_shot_read(tmp_path):
    rate = 22_050
    x = np.random.default_rng(1).normal(0, 0.1, rate * 5).astype(np.float32)
    path = tmp_path / "noise.flac"
    sf.write(path, x, rate)
    whole = F.load_audio(path)
    streamed = np.concatenate(list(F.stream_audio(path, block_seconds=0.7)))
    assert abs(len(streamed) - len(whole)) <= 2
    n = min(len(whole), len(streamed))
    np.testing.assert_allclose(streamed[:n], whole[:n], atol=2e-3)


def test_trim_silence_keeps_the_sound_and_a_short_margin():
    silence = np.zeros(F.SAMPLE_RATE, dtype=np.float32)
    x = np.concatenate([silence, tone(440, 0.5), silence])
    trimmed = F.trim_silence(x, margin_s=0.1)
    assert abs(len(trimmed) - int(0.7 * F.SAMPLE_RATE)) <= 2 * F.HOP_LENGTH
    assert len(F.trim_silence(silence)) == 0


def test_windows_cover_a_long_clip_and_centre_a_short_one():
    starts = F.window_starts(10 * F.SAMPLE_RATE, 3 * F.SAMPLE_RATE, F.SAMPLE_RATE)
    assert starts[0] == 0 and starts[-1] == 7 * F.SAMPLE_RATE and len(starts) == 8
    short = np.ones(1000, dtype=np.float32)
    window = F.fit_window(short, 3000)
    assert window.sum() == 1000 and window[1000] == 1 and window[0] == 0


def test_unreadable_and_empty_files_raise_audio_error_naming_the_file(tmp_path):
    bad = tmp_path / "noise.wav"
    bad.write_bytes(b"RIFF\x00\x00garbage" * 10)
    with pytest.raises(F.AudioError, match="noise.wav"):
        F.load_audio(bad)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(F.AudioError, match="zero length"):
        F.load_audio(empty)
    with pytest.raises(F.AudioError, match="NaN"):
        F.prepare(np.array([0.0, np.nan]), 16000)
