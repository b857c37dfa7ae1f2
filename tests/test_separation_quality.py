"""SDR and SI-SDR: definitions, invariances, invalid input."""

from __future__ import annotations

import numpy as np
import pytest

from genrelab.separation import sdr, si_sdr


@pytest.fixture
def signals():
    rng = np.random.default_rng(0)
    t = np.arange(22050) / 22050
    ref = np.sin(2 * np.pi * 220 * t) + 0.3 * np.sin(2 * np.pi * 660 * t)
    noise = rng.standard_normal(ref.shape)
    return ref.astype(np.float32), noise.astype(np.float32)


def test_identical_signal_scores_very_high(signals):
    ref, _ = signals
    assert si_sdr(ref, ref) > 80
    assert sdr(ref, ref) > 80


@pytest.mark.parametrize("gain", [0.01, 0.5, 3.0, -2.0])
def test_si_sdr_is_scale_invariant_sdr_is_not(signals, gain):
    ref, noise = signals
    est = ref + 0.1 * noise
    # Exact up to float32 rounding of the scaled copy and the tiny eps on the residual.
    assert si_sdr(gain * est, ref) == pytest.approx(si_sdr(est, ref), abs=1e-4)
    if gain != 1:
        assert sdr(gain * est, ref) < sdr(est, ref)


def test_more_noise_lowers_both(signals):
    ref, noise = signals
    scores = [(si_sdr(ref + a * noise, ref), sdr(ref + a * noise, ref)) for a in (0.01, 0.1, 1.0)]
    assert scores[0][0] > scores[1][0] > scores[2][0]
    assert scores[0][1] > scores[1][1] > scores[2][1]


def test_matches_reference_formulas(signals):
    ref, noise = signals
    ref64 = ref.astype(np.float64)
    # SDR with noise orthogonal to nothing in particular: 10 log10(|s|^2 / |n|^2).
    n = 0.2 * noise.astype(np.float64)
    expected_sdr = 10 * np.log10(np.sum(ref64**2) / np.sum(n**2))
    assert sdr(ref64 + n, ref64) == pytest.approx(expected_sdr, abs=1e-6)
    # SI-SDR through the cosine similarity rho: 10 log10(rho^2 / (1 - rho^2)).
    est = ref64 + n
    rho = est @ ref64 / (np.linalg.norm(est) * np.linalg.norm(ref64))
    assert si_sdr(est, ref64, eps=0) == pytest.approx(10 * np.log10(rho**2 / (1 - rho**2)), abs=1e-6)
    # Noise with a known SNR orthogonal to the reference: SI-SDR equals that SNR.
    ortho = n - (n @ ref64) / (ref64 @ ref64) * ref64
    snr = 10 * np.log10(np.sum(ref64**2) / np.sum(ortho**2))
    assert si_sdr(ref64 + ortho, ref64, eps=0) == pytest.approx(snr, abs=1e-6)


def test_multichannel_and_zero_mean(signals):
    ref, noise = signals
    stereo = np.stack([ref, 0.5 * ref])
    est = stereo + 0.05 * np.stack([noise, noise[::-1]])
    assert np.isfinite(si_sdr(est, stereo)) and np.isfinite(sdr(est, stereo))
    # A DC offset costs SI-SDR unless means are removed.
    assert si_sdr(ref + 1.0, ref, zero_mean=True) > 80
    assert si_sdr(ref + 1.0, ref) < 10


def test_silent_reference_is_nan_for_si_sdr(signals):
    ref, _ = signals
    assert np.isnan(si_sdr(ref, np.zeros_like(ref)))
    assert sdr(ref, np.zeros_like(ref)) < -50


@pytest.mark.parametrize(
    ("est", "ref", "match"),
    [
        (np.ones(10), np.ones(11), "same shape"),
        (np.ones(0), np.ones(0), "n > 0"),
        (np.ones((2, 2, 2)), np.ones((2, 2, 2)), "shape"),
        (np.array([1.0, np.nan]), np.ones(2), "NaN"),
        (np.ones(3, complex), np.ones(3, complex), "real"),
    ],
)
def test_invalid_input(est, ref, match):
    with pytest.raises(ValueError, match=match):
        si_sdr(est, ref)
    with pytest.raises(ValueError, match=match):
        sdr(est, ref)
