"""The classic GTZAN descriptors of a :class:`~genrelab.features.analysis.SliceAnalysis`, per slice.

Each function returns one row per slice and reproduces a librosa call on that slice alone
(named in its docstring, with ``pad_mode='reflect'``), to float rounding, from the shared
STFT: nothing is normalised or estimated across slices. Arrays are ``(n_slices, n_frames,
n_bins)`` as in :mod:`~genrelab.features.analysis`.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
import scipy.fft

from genrelab.features.analysis import SliceAnalysis, window

__all__ = ["chroma", "estimate_tuning", "spectral_shape", "rolloff", "rms", "zero_crossing_rate",
           "onset_envelope", "tempo", "hpss_waveforms"]

_TINY32 = np.finfo(np.float32).tiny


@functools.lru_cache(maxsize=8)
def _fft_frequencies(sr: int, n_fft: int) -> np.ndarray:
    return np.fft.rfftfreq(n_fft, 1.0 / sr)


def estimate_tuning(power: np.ndarray, sr: int, n_fft: int, *, fmin: float = 150.0, fmax: float = 4000.0,
                    threshold: float = 0.1, resolution: float = 0.01, bins_per_octave: int = 12) -> np.ndarray:
    """Tuning deviation of each slice, ``librosa.estimate_tuning(S=power_of_slice, sr=sr, n_fft=n_fft)``.

    Only the bins in ``[fmin, fmax)`` (and their neighbours) are examined, which is all that
    ``librosa.piptrack`` keeps.

    Parameters
    ----------
    power : np.ndarray [shape=(n_slices, n_frames, n_bins)], float32
        Power spectra (``chroma_stft`` estimates its tuning on these).
    sr, n_fft : int

    Returns
    -------
    tuning : np.ndarray [shape=(n_slices,)]
        In fractions of a bin, in [-0.5, 0.5).
    """
    from librosa.core.pitch import pitch_tuning

    freqs = _fft_frequencies(sr, n_fft)
    fmax = min(fmax, sr / 2)
    band = np.flatnonzero((max(fmin, 0) <= freqs) & (freqs < fmax))
    lo, hi = int(band[0]), int(band[-1]) + 1
    if lo < 1 or hi >= power.shape[-1]:  # pragma: no cover - only for tiny n_fft
        raise ValueError(f"n_fft={n_fft} is too small to estimate the tuning between {fmin} and {fmax} Hz")
    ref = np.float32(threshold) * power.max(axis=-1, keepdims=True)
    nb = power[..., lo - 1:hi + 1]
    x = nb * (nb > ref)
    peak = (x[..., 1:-1] > x[..., :-2]) & (x[..., 1:-1] >= x[..., 2:])
    s_i, t_i, b_i = np.nonzero(peak)
    here, below, above = (nb[s_i, t_i, b_i + k] for k in (1, 0, 2))
    # librosa's parabolic shift (computed there in float64 by numba) and its np.gradient skew
    a = (above + below).astype(np.float64) - 2.0 * here.astype(np.float64)
    b = (above - below).astype(np.float64) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(np.abs(b) >= np.abs(a), 0.0, -b / a).astype(np.float32)
    avg = (above - below) / np.float32(2.0)
    pitch = ((b_i + lo + shift) * float(sr) / n_fft).astype(np.float32)
    mag = here + np.float32(0.5) * avg * shift
    out = np.zeros(power.shape[0])
    for s in range(power.shape[0]):
        keep = s_i == s
        p, m = pitch[keep], mag[keep]
        mask = p > 0
        if not mask.any():
            continue  # librosa warns and returns 0
        thr = np.median(m[mask])
        out[s] = pitch_tuning(p[(m >= thr) & mask], resolution=resolution, bins_per_octave=bins_per_octave)
    return out


@functools.lru_cache(maxsize=256)
def _chroma_filters(sr: int, n_fft: int, tuning: float, n_chroma: int) -> np.ndarray:
    import librosa

    return np.ascontiguousarray(librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=tuning, n_chroma=n_chroma).T)


def chroma(a: SliceAnalysis, n_fft: int, hop_length: int, *, n_chroma: int = 12) -> np.ndarray:
    """``librosa.feature.chroma_stft(y=slice, sr=sr, n_fft=n_fft, hop_length=hop_length)`` of each slice.

    Returns
    -------
    chroma : np.ndarray [shape=(n_slices, n_frames, n_chroma)], float32
        Each frame scaled to a maximum of 1, with the tuning estimated per slice.
    """
    power = a.power(n_fft, hop_length)
    tunings = estimate_tuning(power, a.sr, n_fft, bins_per_octave=n_chroma)
    out = np.empty(power.shape[:2] + (n_chroma,), dtype=np.float32)
    for s, tuning in enumerate(tunings):
        raw = power[s] @ _chroma_filters(a.sr, n_fft, float(tuning), n_chroma)
        norm = raw.max(axis=-1, keepdims=True)
        norm[norm < _TINY32] = 1.0
        np.divide(raw, norm, out=out[s])
    return out


def spectral_shape(a: SliceAnalysis, n_fft: int, hop_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Spectral centroid and bandwidth (``p=2``) of every frame, as librosa's on the magnitude.

    Returns
    -------
    centroid, bandwidth : np.ndarray [shape=(n_slices, n_frames)], float64, Hz
    """
    mag = a.magnitude(n_fft, hop_length)
    freqs = _fft_frequencies(a.sr, n_fft)
    moments = mag.astype(np.float64) @ np.stack([np.ones_like(freqs), freqs, freqs * freqs], axis=1)
    total = moments[..., 0].copy()  # librosa's L1 norm (a float64 sum)
    total[total < _TINY32] = 1.0  # silent frames stay unnormalised (all zero)
    m0, m1, m2 = (moments[..., k] / total for k in range(3))
    centroid = m1
    # sum_f S_f (f - c)^2 / total, expanded in the moments
    second = m2 - 2 * centroid * m1 + centroid ** 2 * m0
    return centroid, np.sqrt(np.maximum(second, 0.0))


def rolloff(a: SliceAnalysis, n_fft: int, hop_length: int, *, roll_percent: float = 0.85) -> np.ndarray:
    """``librosa.feature.spectral_rolloff``: lowest frequency below which ``roll_percent`` of
    each frame's magnitude lies. [shape=(n_slices, n_frames)], Hz.

    The same float32 running sums as librosa's ``np.cumsum`` (so the same bin on every frame),
    without materialising them: :func:`_rolloff_bins`.
    """
    mag = a.magnitude(n_fft, hop_length)
    first = _rolloff_bins(mag.reshape(-1, mag.shape[-1]), np.float32(roll_percent))
    return _fft_frequencies(a.sr, n_fft)[first.reshape(mag.shape[:-1])]


_ROLLOFF_ROWS = 8  # frames summed side by side: independent float32 additions overlap in the CPU


@numba.njit(nogil=True, cache=True, boundscheck=False)
def _rolloff_bins(mag, roll_percent):  # pragma: no cover - compiled
    """First bin of each row of ``mag`` [shape=(rows, bins)], float32, where the running sum
    reaches ``roll_percent`` times the row's total; both sums are float32 and taken bin after
    bin, as ``np.cumsum`` does. [shape=(rows,)], int64. Magnitudes are non-negative, so the
    running sums never decrease and the first bin at the threshold is the count of bins below it.

    ``np.cumsum`` over the last axis runs one dependent addition after another (4.4 ms for a
    30 s clip's ten 3 s slices); :data:`_ROLLOFF_ROWS` rows summed together in the same order
    give the same sums several times faster.
    """
    rows, bins = mag.shape
    out = np.zeros(rows, np.int64)
    for r0 in range(0, rows, _ROLLOFF_ROWS):
        r1 = min(rows, r0 + _ROLLOFF_ROWS)
        total = np.zeros(_ROLLOFF_ROWS, np.float32)
        for f in range(bins):
            for r in range(r0, r1):
                total[r - r0] += mag[r, f]
        threshold = roll_percent * total
        acc = np.zeros(_ROLLOFF_ROWS, np.float32)
        below = np.zeros(_ROLLOFF_ROWS, np.int64)
        for f in range(bins):
            for r in range(r0, r1):
                acc[r - r0] += mag[r, f]
                below[r - r0] += acc[r - r0] < threshold[r - r0]
        out[r0:r1] = below[:r1 - r0]  # the sums never decrease: bins below the threshold come first
    return out


def _frame_sums(v: np.ndarray, frame_length: int, hop_length: int, n_frames: int) -> np.ndarray:
    """Sums of ``v`` [shape=(n, m)] over frames ``[t * hop, t * hop + frame_length)``, float64."""
    if frame_length % hop_length == 0:  # sums of hop-long blocks, then of consecutive blocks
        k = frame_length // hop_length
        n_blocks = n_frames + k - 1
        blocks = v[:, :n_blocks * hop_length].reshape(len(v), n_blocks, hop_length).sum(axis=-1, dtype=np.float64)
        out = blocks[:, :n_frames].copy()
        for j in range(1, k):
            out += blocks[:, j:j + n_frames]
        return out
    c = np.zeros((v.shape[0], v.shape[1] + 1))
    np.cumsum(v, axis=-1, out=c[:, 1:])
    starts = np.arange(n_frames) * hop_length
    return c[:, starts + frame_length] - c[:, starts]


def rms(a: SliceAnalysis, frame_length: int, hop_length: int) -> np.ndarray:
    """``librosa.feature.rms(y=slice, frame_length=..., hop_length=..., pad_mode='reflect')``.
    [shape=(n_slices, n_frames)]."""
    pad = frame_length // 2
    y = np.pad(a.slices, ((0, 0), (pad, pad)), mode="reflect")
    return np.sqrt(_frame_sums(np.square(y), frame_length, hop_length, a.n_frames(hop_length)) / frame_length)


def zero_crossing_rate(a: SliceAnalysis, frame_length: int, hop_length: int) -> np.ndarray:
    """``librosa.feature.zero_crossing_rate(slice, frame_length=..., hop_length=...)`` (edge
    padding; samples within 1e-10 of zero count as positive). [shape=(n_slices, n_frames)]."""
    pad = frame_length // 2
    negative = np.pad(a.slices, ((0, 0), (pad, pad)), mode="edge") < -1e-10
    change = np.zeros(negative.shape, dtype=bool)
    np.not_equal(negative[:, 1:], negative[:, :-1], out=change[:, 1:])
    n_frames = a.n_frames(hop_length)
    # a frame counts the crossings into its samples 1 .. frame_length - 1, not into its first
    counts = _frame_sums(change, frame_length, hop_length, n_frames) - change[:, np.arange(n_frames) * hop_length]
    return counts / frame_length


def onset_envelope(a: SliceAnalysis, n_fft: int, hop_length: int, *, n_mels: int = 128) -> np.ndarray:
    """``librosa.onset.onset_strength(y=slice, sr=sr, hop_length=hop_length, aggregate=np.median)``.

    The median over mel bands of the positive log-mel flux (dB clipped 80 dB below the slice's
    maximum), as ``librosa.beat.beat_track`` computes it. [shape=(n_slices, n_frames)], float32.
    """
    db = a.mel_db(n_fft, hop_length, n_mels, 0.0, None, 80.0)
    flux = np.maximum(db[:, 1:] - db[:, :-1], np.float32(0.0))
    env = np.zeros(db.shape[:2], dtype=np.float32)
    lag_pad = 1 + n_fft // (2 * hop_length)
    n = max(0, db.shape[1] - lag_pad)
    env[:, lag_pad:] = np.median(flux[:, :n], axis=-1)
    return env


def tempo(env: np.ndarray, sr: int, hop_length: int, *, start_bpm: float = 120.0, std_bpm: float = 1.0,
          ac_size: float = 8.0, max_tempo: float = 320.0) -> np.ndarray:
    """``librosa.feature.tempo(onset_envelope=env_of_slice, sr=sr, hop_length=hop_length)`` of each
    row (the global tempo of ``librosa.beat.beat_track``), in BPM. [shape=(n_slices,)].

    The same arithmetic as librosa's (a Hann-windowed autocorrelation tempogram of
    ``ac_size`` seconds, each frame scaled to its maximum, averaged over time, weighted by a
    log-normal prior around ``start_bpm``), in float64, with the lags contiguous in memory.
    """
    import librosa

    env = np.atleast_2d(env)
    n, n_frames = env.shape
    win = int(librosa.time_to_frames(ac_size, sr=sr, hop_length=hop_length))
    padded = np.pad(env, ((0, 0), (win // 2, win // 2)), mode="linear_ramp", end_values=0)
    frames = np.lib.stride_tricks.sliding_window_view(padded, win, axis=-1)[:, :n_frames]
    w = window(win)  # scipy.signal.get_window("hann", win, fftbins=True), bit for bit
    n_pad = scipy.fft.next_fast_len(2 * win - 1, real=True)
    tg = np.empty((n, win))
    for i in range(n):
        spec = scipy.fft.rfft(frames[i] * w, n=n_pad, axis=-1)
        ac = scipy.fft.irfft(spec.real ** 2 + spec.imag ** 2, n=n_pad, axis=-1)[:, :win]
        norm = np.abs(ac).max(axis=-1, keepdims=True)
        norm[norm < np.finfo(np.float64).tiny] = 1.0
        tg[i] = (ac / norm).mean(axis=0)
    bpms = librosa.tempo_frequencies(win, hop_length=hop_length, sr=sr)
    logprior = -0.5 * ((np.log2(bpms) - np.log2(start_bpm)) / std_bpm) ** 2
    logprior[:int(np.argmax(bpms < max_tempo))] = -np.inf
    return bpms[np.argmax(np.log1p(1e6 * tg) + logprior, axis=-1)]


@functools.lru_cache(maxsize=32)
def _window_sumsquare(n_fft: int, hop_length: int, n_frames: int) -> np.ndarray:
    import librosa

    wss = librosa.filters.window_sumsquare(window="hann", n_frames=n_frames, win_length=n_fft, n_fft=n_fft,
                                           hop_length=hop_length, dtype=np.float32)
    out = np.ones_like(wss)
    nonzero = wss > _TINY32
    out[nonzero] = wss[nonzero]
    return out


def _istft(stft: np.ndarray, n_fft: int, hop_length: int, length: int) -> np.ndarray:
    """``librosa.istft`` of (n, frames, bins) frames, centred, trimmed to ``length`` samples."""
    n, n_frames, _ = stft.shape
    frames = scipy.fft.irfft(stft, n=n_fft, axis=-1)  # float32
    frames *= window(n_fft).astype(np.float32)
    full = np.zeros((n, n_fft + hop_length * (n_frames - 1)), dtype=np.float32)
    if n_fft % hop_length == 0:
        k = n_fft // hop_length
        blocks = full.reshape(n, n_frames + k - 1, hop_length)
        for j in range(k):
            blocks[:, j:j + n_frames] += frames[:, :, j * hop_length:(j + 1) * hop_length]
    else:
        for t in range(n_frames):
            full[:, t * hop_length:t * hop_length + n_fft] += frames[:, t]
    full /= _window_sumsquare(n_fft, hop_length, n_frames)
    start = n_fft // 2
    return full[:, start:start + length]


def hpss_waveforms(
    a: SliceAnalysis, n_fft: int, hop_length: int, *, kernel_size: int = 31
) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic and percussive waveforms of each slice, as the Kaggle GTZAN tables computed them.

    ``librosa.decompose.hpss`` of the slice's STFT (margin 1, power 2), each part inverted with
    ``librosa.istft`` without a target length (``hop_length * (n_frames - 1)`` samples) and
    zero-padded to the slice length: librosa's ``effects.hpss`` before 0.10. The median
    filters are :func:`genrelab.separation.hpss.harmonic_mask`'s (exact, compiled); the
    percussive part is the slice minus the harmonic part (the masks sum to one).

    Returns
    -------
    harmonic, percussive : np.ndarray [shape=(n_slices, length)], float32
    """
    from genrelab.separation.hpss import harmonic_mask

    stft = a.stft(n_fft, hop_length)
    mask = harmonic_mask(a.magnitude(n_fft, hop_length), time_axis=1, freq_axis=2, kernel_size=kernel_size)
    n_out = min(hop_length * (stft.shape[1] - 1), a.slices.shape[1])
    harmonic = np.zeros_like(a.slices)
    harmonic[:, :n_out] = _istft(stft * mask, n_fft, hop_length, n_out)
    percussive = np.zeros_like(a.slices)
    np.subtract(a.slices[:, :n_out], harmonic[:, :n_out], out=percussive[:, :n_out])
    return harmonic, percussive
