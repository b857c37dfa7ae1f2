"""One spectral analysis of a batch of slices, shared by every extractor that reads it.

:class:`SliceAnalysis` computes each representation once, when an extractor first asks for it,
and keeps it for the others: one STFT per slice serves MFCC, log-mel and every classic
descriptor (chroma, spectral shape, HPSS, onset strength). Every quantity is computed for each
slice on its own (dB clipping, tuning, onset envelopes), so a slice's features never depend on
the other slices of the batch or on the batch size.

Framing
-------
All extractors frame a slice as ``librosa.stft(y, n_fft=n_fft, hop_length=hop_length,
center=True, pad_mode='reflect')`` does (a periodic Hann window of ``n_fft`` samples; each
slice reflected by ``n_fft // 2`` samples at both ends). ``pad_mode='reflect'`` was librosa's
default before 0.10 and is the framing of the Kaggle GTZAN feature tables. The STFT is
computed in float64 like librosa's and stored as complex64: it equals ``librosa.stft`` bit for
bit. (A float32 STFT takes 0.65 of the time, but its rounding is relative to the loudest bin:
log-mel bins 90 dB below it moved by up to 0.2 dB against librosa's.)

Layout: arrays here are ``(n_slices, n_frames, n_bins)`` (frequency last, so that reductions
over frequency and products with filter banks read contiguous memory); extractors transpose
their frames to librosa's ``(n_slices, n_bins, n_frames)`` at the end.
"""

from __future__ import annotations

import functools
from typing import Any

import numba
import numpy as np

__all__ = ["MEL_GROUP", "SliceAnalysis", "mel_filters", "mel_project", "window"]


@functools.lru_cache(maxsize=8)
def window(n_fft: int) -> np.ndarray:
    """Periodic Hann window [shape=(n_fft,)], float64, bit-equal to librosa's.

    librosa takes ``scipy.signal.get_window('hann', n_fft, fftbins=True)``; importing
    ``scipy.signal`` costs about a second, paid by the first track of every process. This
    computes the same values with the same operations (``general_cosine`` of scipy 1.x: the
    symmetric window of ``n_fft + 1`` points, ``0.5 + 0.5 * cos(fac)`` summed term by term over
    ``linspace(-pi, pi)``, its last point dropped); ``tests/test_features.py`` checks
    equality with scipy's for many lengths.
    """
    if n_fft <= 1:
        return np.ones(max(n_fft, 0))
    fac = np.linspace(-np.pi, np.pi, n_fft + 1)
    w = np.zeros(n_fft + 1)
    for k, a in enumerate((0.5, 0.5)):
        w += a * np.cos(k * fac)
    return w[:-1]


@functools.lru_cache(maxsize=16)
def mel_filters(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    """``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)`` transposed.

    Slaney mel scale and area normalisation, librosa's defaults. The triangles are built here
    with librosa's own frequency grids and the same operations as ``librosa.filters.mel``
    (bit-equal; ``tests/test_features.py`` checks it), because importing ``librosa.filters``
    imports ``scipy.signal``, about a second that the first track of every process would pay.

    Returns
    -------
    np.ndarray [shape=(1 + n_fft // 2, n_mels)], float32, cached
        Filter ``m`` is column ``m``. Warns (``UserWarning``) when a filter is empty, as librosa.
    """
    import warnings

    from librosa.core.convert import fft_frequencies, mel_frequencies

    fmax = float(sr) / 2 if fmax is None else fmax
    weights = np.zeros((int(n_mels), int(1 + n_fft // 2)), dtype=np.float32)
    mel_f = mel_frequencies(int(n_mels) + 2, fmin=fmin, fmax=fmax, htk=False)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_frequencies(sr=sr, n_fft=n_fft))
    for i in range(int(n_mels)):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]
    if not np.all((mel_f[:-2] == 0) | (weights.max(axis=1) > 0)):
        warnings.warn("Empty filters detected in mel frequency basis: some mel bands will be empty; use fewer mels "
                      "or a higher sample rate (and fmax).", UserWarning, stacklevel=2)
    return np.ascontiguousarray(weights.T)


MEL_GROUP = 8
"""Consecutive mel filters projected together by :func:`mel_project`."""


@functools.lru_cache(maxsize=16)
def _mel_groups(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> tuple:
    """``(first, end, lo, hi, weights [shape=(hi - lo, end - first)])`` per group of filters:
    bins ``lo:hi`` are those where some filter of the group is non-zero (``weights`` is None
    when none is)."""
    fb = mel_filters(sr, n_fft, n_mels, fmin, fmax)
    groups = []
    for first in range(0, n_mels, MEL_GROUP):
        end = min(first + MEL_GROUP, n_mels)
        bins = np.flatnonzero(fb[:, first:end].any(axis=1))
        if bins.size == 0:
            groups.append((first, end, 0, 0, None))
            continue
        lo, hi = int(bins[0]), int(bins[-1]) + 1
        groups.append((first, end, lo, hi, np.ascontiguousarray(fb[lo:hi, first:end])))
    return tuple(groups)


def mel_project(power: np.ndarray, sr: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                fmax: float | None = None) -> np.ndarray:
    """``power @ mel_filters(...)``, reading only the bins where each filter is non-zero.

    A mel filter covers a few bins (its triangle), so the dense product with the
    ``(1 + n_fft // 2, n_mels)`` filter bank multiplies mostly zeros: for 128 mels and
    ``n_fft=2048`` the bands of groups of :data:`MEL_GROUP` filters hold 7 % of the bank, and
    the projection takes 0.6 ms instead of 3.5 ms for a 30 s clip's ten 3 s slices (one
    thread). Equal to the dense product up to float32 rounding (the sums run in another order).

    Parameters
    ----------
    power : np.ndarray [shape=(..., 1 + n_fft // 2)], float32
    sr, n_fft, n_mels, fmin, fmax
        As :func:`mel_filters`.

    Returns
    -------
    np.ndarray [shape=(..., n_mels)], float32
    """
    flat = power.reshape(-1, power.shape[-1])
    out = np.zeros((flat.shape[0], n_mels), dtype=np.float32)
    for first, end, lo, hi, weights in _mel_groups(sr, n_fft, n_mels, float(fmin), fmax):
        if weights is not None:
            out[:, first:end] = flat[:, lo:hi] @ weights
    return out.reshape(power.shape[:-1] + (n_mels,))


class SliceAnalysis:
    """Spectra of a batch of equal-length slices, computed on demand and cached.

    Parameters
    ----------
    slices : np.ndarray [shape=(n_slices, length)]
        Mono slices (float32 is used).
    sr : int > 0
        Sample rate in Hz.

    Notes
    -----
    Memory: a 3 s slice at 22050 Hz with ``n_fft=2048, hop_length=512`` takes about 1 MB of
    STFT and 0.5 MB per real spectrum; batches of tens of slices stay well under 100 MB.
    """

    def __init__(self, slices: np.ndarray, sr: int) -> None:
        x = np.asarray(slices, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"slices must have shape (n_slices, length), got {x.shape}")
        if x.shape[1] == 0:
            raise ValueError("slices are empty (length 0)")
        self.slices = np.ascontiguousarray(x)
        self.sr = int(sr)
        self._cache: dict[tuple, Any] = {}

    def __len__(self) -> int:
        return self.slices.shape[0]

    def _cached(self, key: tuple, compute) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def n_frames(self, hop_length: int) -> int:
        """Frames per slice: ``1 + length // hop_length`` (centred framing)."""
        return 1 + self.slices.shape[1] // hop_length

    def stft(self, n_fft: int, hop_length: int) -> np.ndarray:
        """STFT [shape=(n_slices, n_frames, 1 + n_fft // 2)], complex64 (see the module notes)."""
        return self._cached(("stft", n_fft, hop_length), lambda: _stft(self.slices, n_fft, hop_length))

    def magnitude(self, n_fft: int, hop_length: int) -> np.ndarray:
        """``|stft|`` [shape=(n_slices, n_frames, n_bins)], float32."""
        return self._cached(("mag", n_fft, hop_length), lambda: np.abs(self.stft(n_fft, hop_length)))

    def power(self, n_fft: int, hop_length: int) -> np.ndarray:
        """``|stft| ** 2`` [shape=(n_slices, n_frames, n_bins)], float32.

        ``re * re + im * im`` in float32, in one compiled pass over the STFT: within a few
        float32 roundings of librosa's ``np.abs(stft) ** 2`` (which takes a square root and
        squares it), without the magnitude when no extractor asks for it.
        """
        return self._cached(("pow", n_fft, hop_length), lambda: _power(self.stft(n_fft, hop_length)))

    def mel_power(self, n_fft: int, hop_length: int, n_mels: int, fmin: float = 0.0,
                  fmax: float | None = None) -> np.ndarray:
        """Mel power spectrogram [shape=(n_slices, n_frames, n_mels)], float32.

        ``librosa.feature.melspectrogram(y=slice, sr=sr, n_fft=n_fft, hop_length=hop_length,
        n_mels=n_mels, fmin=fmin, fmax=fmax, pad_mode='reflect')`` transposed.
        """
        key = ("mel", n_fft, hop_length, n_mels, float(fmin), fmax)
        return self._cached(key, lambda: mel_project(self.power(n_fft, hop_length), self.sr, n_fft, n_mels,
                                                     float(fmin), fmax))

    def mel_db(self, n_fft: int, hop_length: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None,
               top_db: float | None = 80.0) -> np.ndarray:
        """Log-mel spectrogram in dB [shape=(n_slices, n_frames, n_mels)], float32.

        ``librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=top_db)`` of each slice on its own:
        with ``top_db`` every slice is clipped ``top_db`` below its own maximum.
        """
        key = ("mel_db", n_fft, hop_length, n_mels, float(fmin), fmax, top_db)

        def compute() -> np.ndarray:
            mel = self.mel_power(n_fft, hop_length, n_mels, fmin, fmax)
            db = np.log10(np.maximum(mel, np.float32(1e-10)))
            db *= np.float32(10.0)
            if top_db is not None:
                floor = db.max(axis=(1, 2), keepdims=True) - np.float32(top_db)
                np.maximum(db, floor, out=db)
            return db

        return self._cached(key, compute)


def _stft(x: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """``librosa.stft(x, center=True, pad_mode='reflect')`` of each row, as (n, frames, bins)."""
    n, length = x.shape
    pad = n_fft // 2
    if length <= pad:
        raise ValueError(f"a slice of {length} samples is too short for n_fft={n_fft} with reflect padding; "
                         f"use slices of at least {pad + 1} samples")
    padded = np.pad(x, ((0, 0), (pad, pad)), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=-1)[:, ::hop_length]
    n_frames = 1 + length // hop_length
    frames = frames[:, :n_frames]
    win = window(n_fft)
    out = np.empty((n, n_frames, n_fft // 2 + 1), dtype=np.complex64)
    for i in range(n):  # one slice at a time: the float64 frames stay in cache
        out[i] = np.fft.rfft(frames[i] * win, axis=-1)  # librosa's FFT library (numpy's), 5 % faster than scipy's
    return out


@numba.njit(nogil=True, cache=True, boundscheck=False)
def _power_into(z: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    for i in range(z.size):
        v = z[i]
        out[i] = v.real * v.real + v.imag * v.imag


def _power(stft: np.ndarray) -> np.ndarray:
    """``|stft| ** 2`` of a complex64 array [shape=any], float32."""
    z = np.ascontiguousarray(stft, dtype=np.complex64)
    out = np.empty(z.shape, dtype=np.float32)
    _power_into(z.reshape(-1), out.reshape(-1))
    return out
