"""Fast HPSS: agreement with librosa, properties on a synthetic signal, invalid input."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from genrelab.separation import SEPARATORS, HPSSSeparator, hpss_batch, make_separator, median_filter_reflect
from genrelab.separation.hpss import _hpss_tensor, _median_filter_torch, hpss

SR = 22050
# Tolerance stated in genrelab.separation.hpss: waveforms within 1e-4 of the input peak and
# output spectrogram magnitudes within 1e-4 relative (Frobenius) of librosa's.
WAVE_TOL = 1e-4
SPEC_TOL = 1e-4

needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device (torch.cuda.is_available() is False)"
)


def sine_plus_clicks(seconds: float = 3.0, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 440 Hz sine plus one short noise burst ("click") every 0.25 s; returns (mix, sine, clicks)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    sine = 0.4 * np.sin(2 * np.pi * 440.0 * t)
    clicks = np.zeros(n)
    for start in range(SR // 8, n - 64, SR // 4):
        clicks[start : start + 32] = rng.uniform(-0.8, 0.8, 32)
    return (sine + clicks).astype(np.float32), sine.astype(np.float32), clicks.astype(np.float32)


def spec(y: np.ndarray) -> np.ndarray:
    return np.abs(librosa.stft(y, n_fft=2048, hop_length=512))


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"kernel_size": (17, 41), "margin": (2.0, 3.0)},
        {"kernel_size": 30, "power": np.inf},
        {"kernel_size": 9, "margin": 1.0, "power": 1.0, "n_fft": 1024, "hop_length": 256},
    ],
    ids=["default", "pair-margin", "even-hard", "small-fft"],
)
def test_matches_librosa(settings):
    y, _, _ = sine_plus_clicks(2.0)
    y = y + 0.05 * np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    kw = {"kernel_size": 31, "margin": 1.0, "power": 2.0, "n_fft": 2048, "hop_length": 512, **settings}
    h, p = hpss(y, **kw)
    h_ref, p_ref = librosa.effects.hpss(y, **kw)
    assert h.dtype == np.float32 and p.dtype == np.float32
    assert h.shape == y.shape and p.shape == y.shape
    peak = np.abs(y).max()
    assert np.abs(h - h_ref).max() <= WAVE_TOL * peak
    assert np.abs(p - p_ref).max() <= WAVE_TOL * peak
    for ours, ref in ((h, h_ref), (p, p_ref)):
        s_ref = spec(ref)
        assert np.linalg.norm(spec(ours) - s_ref) <= SPEC_TOL * np.linalg.norm(s_ref)


@pytest.mark.parametrize("margin", [1.0, 2.0])
def test_torch_pipeline_matches_librosa(margin):
    """The CUDA code path (torch STFT, unfold/kthvalue medians, torch ISTFT), run on CPU tensors."""
    y, _, _ = sine_plus_clicks(1.0)
    x = torch.from_numpy(np.stack([y, y[::-1].copy()]))
    h, p = _hpss_tensor(x, win_h=31, win_p=31, margin_h=margin, margin_p=margin, power=2.0, n_fft=2048, hop_length=512)
    peak = np.abs(y).max()
    for row in range(2):
        h_ref, p_ref = librosa.effects.hpss(x[row].numpy(), margin=margin)
        assert np.abs(h[row].numpy() - h_ref).max() <= WAVE_TOL * peak
        assert np.abs(p[row].numpy() - p_ref).max() <= WAVE_TOL * peak


def test_short_clips():
    rng = np.random.default_rng(0)
    y = rng.standard_normal(4000).astype(np.float32)  # 8 frames: fewer than the kernel
    h, p = hpss(y)
    h_ref, p_ref = librosa.effects.hpss(y)
    np.testing.assert_allclose(h, h_ref, atol=WAVE_TOL * np.abs(y).max())
    np.testing.assert_allclose(p, p_ref, atol=WAVE_TOL * np.abs(y).max())
    # 1-2 frames: scipy 1.17's median_filter returns garbage (NaN from librosa) for an axis of
    # length 2; ours follows the documented 'reflect' extension and stays finite.
    for n in (1, 100, 700):
        h, p = hpss(y[:n])
        assert h.shape == p.shape == (n,)
        assert np.all(np.isfinite(h)) and np.all(np.isfinite(p))
        np.testing.assert_allclose(h + p, y[:n], atol=1e-5)


def test_sine_goes_harmonic_clicks_go_percussive():
    y, sine, clicks = sine_plus_clicks(3.0)
    h, p = hpss(y)
    # The harmonic part is mostly the sine, the percussive part mostly the clicks.
    assert np.linalg.norm(h - sine) < 0.35 * np.linalg.norm(sine)
    assert np.linalg.norm(p - clicks) < 0.5 * np.linalg.norm(clicks)
    on = clicks != 0
    # Percussive energy concentrates on the clicks; the harmonic part carries the 440 Hz line.
    assert np.mean(p[on] ** 2) > 20 * np.mean(p[~on] ** 2)
    bins = np.fft.rfftfreq(2048, 1 / SR)
    k440 = np.argmin(np.abs(bins - 440))
    assert spec(h)[k440].mean() > 10 * spec(p)[k440].mean()
    # With margin 1 the parts add back up to the input.
    np.testing.assert_allclose(h + p, y, atol=1e-5)


def test_margin_leaves_a_residual():
    y, _, _ = sine_plus_clicks(1.0)
    h, p = hpss(y, margin=3.0)
    assert np.linalg.norm(y - h - p) > 0.01 * np.linalg.norm(y)


@pytest.mark.parametrize("size", [1, 2, 3, 8, 31, 40])
def test_median_filter_equals_scipy(size):
    rng = np.random.default_rng(size)
    x = np.abs(rng.standard_normal((37, 29))).astype(np.float32)
    x[:, 5:12] = 0.0  # ties
    x[3] = 1.0
    for axis in (0, 1):
        shape = [1, 1]
        shape[axis] = size
        expected = ndi.median_filter(x, size=shape, mode="reflect")
        np.testing.assert_array_equal(median_filter_reflect(x, size, axis=axis), expected)
        # The CUDA kernel, run on CPU tensors here.
        rows = np.ascontiguousarray(np.moveaxis(x, axis, -1))
        got = _median_filter_torch(torch.from_numpy(rows), size, max_elements=500).numpy()
        np.testing.assert_array_equal(np.moveaxis(got, -1, axis), expected)


def test_batch_equals_single_and_keeps_order():
    rng = np.random.default_rng(3)
    clips = [rng.standard_normal(n).astype(np.float32) for n in (5000, 8000, 5000, 3000)]
    out = hpss_batch(clips, kernel_size=15)
    assert len(out) == len(clips)
    for y, (h, p) in zip(clips, out):
        h1, p1 = hpss(y, kernel_size=15)
        assert h.shape == y.shape
        np.testing.assert_allclose(h, h1, atol=1e-6)
        np.testing.assert_allclose(p, p1, atol=1e-6)


def test_separator_interface_stereo_and_registry():
    y, _, _ = sine_plus_clicks(1.0)
    stereo = np.stack([y, 0.5 * y])
    sep = make_separator("hpss", kernel_size=31, margin=1.0)
    assert isinstance(sep, HPSSSeparator) and SEPARATORS["hpss"] is HPSSSeparator
    assert sep.stems == ("harmonic", "percussive")
    out = sep.separate(stereo, SR)
    assert set(out) == {"harmonic", "percussive"}
    assert out["harmonic"].shape == stereo.shape
    h, _ = hpss(y)
    np.testing.assert_allclose(out["harmonic"][0], h, atol=1e-6)
    assert sep.separate(y, SR)["percussive"].shape == y.shape
    assert "kernel_size=31" in repr(sep)


def test_make_separator_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="demucs, hpss"):
        make_separator("spleeter")


@pytest.mark.parametrize(
    ("y", "settings", "match"),
    [
        (np.zeros(0, np.float32), {}, "empty"),
        (np.zeros((2, 1000), np.float32), {}, "shape"),
        (np.array([0.0, np.nan, 1.0] * 400, np.float32), {}, "NaN"),
        (np.ones(1000, np.float32), {"kernel_size": 0}, "kernel_size"),
        (np.ones(1000, np.float32), {"kernel_size": -3}, "kernel_size"),
        (np.ones(1000, np.float32), {"kernel_size": (31,)}, "kernel_size"),
        (np.ones(1000, np.float32), {"margin": 0.5}, "margin"),
        (np.ones(1000, np.float32), {"power": 0}, "power"),
        (np.ones(1000, np.float32), {"hop_length": 2000}, "hop_length"),
        (np.ones(1000, np.float32), {"device": "tpu"}, "device"),
    ],
)
def test_invalid_input_raises_value_error(y, settings, match):
    with pytest.raises(ValueError, match=match):
        hpss(y, **settings)


def test_invalid_batch_and_separator_input():
    with pytest.raises(ValueError, match="list of 1-D"):
        hpss_batch(np.zeros((2, 100), np.float32))
    with pytest.raises(ValueError, match=r"ys\[1\]"):
        hpss_batch([np.ones(100, np.float32), np.ones(0, np.float32)])
    with pytest.raises(ValueError, match="kernel_size"):
        HPSSSeparator(kernel_size=0)
    with pytest.raises(ValueError, match="shape"):
        HPSSSeparator().separate(np.zeros((1, 2, 100), np.float32), SR)
    with pytest.raises(ValueError, match="size"):
        median_filter_reflect(np.ones((3, 3), np.float32), 0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised when CUDA is absent")
def test_cuda_requested_without_cuda_raises():
    with pytest.raises(ValueError, match="CUDA"):
        hpss(np.ones(1000, np.float32), device="cuda")


@pytest.mark.gpu
@needs_cuda
def test_cuda_matches_cpu():
    y, _, _ = sine_plus_clicks(3.0)
    h_cpu, p_cpu = hpss(y, device="cpu")
    h_gpu, p_gpu = hpss(y, device="cuda")
    peak = np.abs(y).max()
    assert np.abs(h_gpu - h_cpu).max() <= WAVE_TOL * peak
    assert np.abs(p_gpu - p_cpu).max() <= WAVE_TOL * peak
    h_auto, _ = hpss(y, device="auto")
    np.testing.assert_allclose(h_auto, h_gpu, atol=1e-6)
