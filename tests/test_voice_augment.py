"""Waveform augmentation (emodetect.voice.augment): each condition does what it says, seeded runs
repeat, and training with --wave-copies gets the perturbed copies beside the originals."""

from __future__ import annotations

import numpy as np

from emodetect.voice import augment
from emodetect.voice import features as F
from test_voice_pipeline import KINDS, corpus, synth, with_silence  # noqa: F401  (fixture)

RATE = F.SAMPLE_RATE


def band_power(x: np.ndarray, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    hz = np.fft.rfftfreq(len(x), 1 / RATE)
    return float(spectrum[(hz >= low) & (hz < high)].sum())


def test_telephone_keeps_the_speech_band_and_removes_what_a_phone_cannot_carry():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(RATE).astype(np.float32) * 0.1
    y = augment.telephone(x)
    assert len(y) == len(x)
    assert band_power(y, 4000, 8000) < 1e-6 * band_power(x, 4000, 8000)
    assert band_power(y, 0, 250) < 1e-3 * band_power(x, 0, 250)
    assert 0.8 < band_power(y, 500, 3000) / band_power(x, 500, 3000) < 1.2


def test_noise_is_added_at_the_asked_signal_to_noise_ratio():
    x = synth("happy", 2.0, np.random.default_rng(1))
    for snr in (0.0, 10.0, 20.0):
        noise = augment.add_noise(x, snr, 1.0, np.random.default_rng(2)) - x
        measured = 10 * np.log10(np.mean(x ** 2) / np.mean(noise ** 2))
        assert abs(measured - snr) < 0.1, (snr, measured)


def test_pink_noise_has_more_power_low_than_high_and_white_noise_does_not():
    x = np.full(RATE, 0.1, dtype=np.float32)
    pink = augment.add_noise(x, 0.0, 1.0, np.random.default_rng(3)) - x
    white = augment.add_noise(x, 0.0, 0.0, np.random.default_rng(3)) - x
    assert band_power(pink, 100, 1000) > 5 * band_power(pink, 4000, 4900)
    assert 0.5 < band_power(white, 100, 1000) / band_power(white, 4000, 4900) < 2


def test_reverberation_spreads_a_click_over_the_room_decay_time():
    click = np.zeros(RATE, dtype=np.float32)
    click[100] = 0.5
    wet = augment.reverberate(click, 0.5, np.random.default_rng(4))
    assert abs(np.abs(wet).max() - 0.5) < 1e-6 and np.argmax(np.abs(wet)) == 100
    tail = np.abs(wet[100 + int(0.05 * RATE):100 + int(0.3 * RATE)])
    assert tail.max() > 0.01  # still ringing 50-300 ms later
    assert np.abs(wet[100 + int(0.6 * RATE):]).max() < 1e-6  # and silent after the 0.5 s room


def test_perturb_is_seeded_bounded_and_changes_speed_within_its_range():
    x = synth("sad", 2.0, np.random.default_rng(5))
    a = augment.perturb(x, np.random.default_rng([1, 2]))
    b = augment.perturb(x, np.random.default_rng([1, 2]))
    c = augment.perturb(x, np.random.default_rng([1, 3]))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.abs(a).max() <= 1.0 and a.dtype == np.float32
    lengths = [len(augment.perturb(x, np.random.default_rng(s))) for s in range(20)]
    assert all(len(x) / 1.1 - 2 <= n <= len(x) / 0.9 + 2 for n in lengths)
    assert len(set(lengths)) > 10


def test_wave_copies_add_perturbed_windows_beside_the_originals(corpus, tmp_path, monkeypatch):
    from emodetect.voice.data import WINDOW_S, clip_rows, read_manifest, select

    monkeypatch.setenv("EMODETECT_CACHE", str(tmp_path))
    clips = select(read_manifest(corpus), "train")
    labels = tuple(sorted(KINDS))
    x0, y0, c0 = clip_rows(clips, labels, WINDOW_S, 1.0, kind="train")
    x2, y2, c2 = clip_rows(clips, labels, WINDOW_S, 1.0, kind="train", copies=2)
    assert len(x2) == 3 * len(x0)  # short clips: one window each, per version
    assert np.bincount(c2).tolist() == [3] * len(clips)
    assert np.array_equal(y2[c2 == 0], np.repeat(y0[c0 == 0], 3))
    first = np.flatnonzero(c2 == 0)
    assert np.array_equal(x2[first[0]], x0[0])  # the original comes first, unchanged
    assert not np.allclose(x2[first[1]], x2[first[0]], atol=0.5)
    again, _, _ = clip_rows(clips, labels, WINDOW_S, 1.0, kind="train", copies=2)  # from the cache
    assert np.array_equal(again, x2)
