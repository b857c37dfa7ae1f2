"""Cutting a track into equal slices, or keeping it whole (the ``slicing`` section)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from genrelab.config import ConfigError

__all__ = ["SliceSettings", "slice_signal"]


@dataclass(frozen=True)
class SliceSettings:
    """Settings of the ``slicing`` section.

    Attributes
    ----------
    length_s : float > 0
        Slice length in seconds (not used when ``whole``).
    overlap : float in [0, 1)
        Fraction of a slice shared with the next one.
    whole : bool
        One slice per track: the whole track, whatever its length (the rows of the Kaggle
        ``features_30_sec.csv`` table). Tracks then differ in length, so their time-frequency
        frames cannot be stacked: whole-track rows carry summary vectors only, for the
        classical models. ``length_s`` and ``overlap`` are not used (``overlap`` must be 0).
    tolerance : float in [0, 0.5)
        Fraction of a slice that may be missing at the end of a track: a last slice at most
        this much short is kept and its shortfall zero-padded. With 0.01, a 30 s slice keeps a
        29.98 s GTZAN clip (clip lengths vary from 29.9 to 30.6 s) and 3 s slices give it 10
        slices, not 9.
    """

    length_s: float = 3.0
    overlap: float = 0.0
    whole: bool = False
    tolerance: float = 0.01

    def __post_init__(self) -> None:
        if not self.length_s > 0:
            raise ConfigError(f"slicing.length_s: must be positive, got {self.length_s} "
                              "(for one slice per whole track set slicing.whole=true)")
        if not 0 <= self.overlap < 1:
            raise ConfigError(f"slicing.overlap: must be in [0, 1), got {self.overlap}")
        if not 0 <= self.tolerance < 0.5:
            raise ConfigError(f"slicing.tolerance: must be in [0, 0.5), got {self.tolerance}")
        if self.whole and self.overlap != 0:
            raise ConfigError(f"slicing.overlap: must be 0 with slicing.whole=true (one slice per track), "
                              f"got {self.overlap}")

    def hop_s(self) -> float:
        return self.length_s * (1.0 - self.overlap)

    def min_duration_s(self) -> float:
        """Shortest track that yields a slice, in seconds (0 with ``whole``)."""
        return 0.0 if self.whole else self.length_s * (1.0 - self.tolerance)


def slice_signal(y: np.ndarray, sr: int, settings: SliceSettings) -> tuple[np.ndarray, np.ndarray]:
    """Cut a signal into equal slices; a trailing remainder shorter than a slice is dropped.

    A last slice that is short by at most ``settings.tolerance`` of its length is kept,
    zero-padded to full length. With ``settings.whole`` the signal is one slice.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)]
        Audio (any leading channel axes).
    sr : int > 0
        Sample rate in Hz.
    settings : SliceSettings

    Returns
    -------
    slices : np.ndarray [shape=(n_slices, ..., length)]
        ``length`` is ``n`` with ``whole``.
    starts_s : np.ndarray [shape=(n_slices,)]
        Start time of each slice in seconds.

    Raises
    ------
    ValueError
        If the signal is shorter than one slice (less the tolerance), or empty.
    """
    n = y.shape[-1]
    if settings.whole:
        if n == 0:
            raise ValueError("signal is empty")
        return y[None], np.zeros(1)
    length = int(round(settings.length_s * sr))
    hop = max(1, int(round(settings.hop_s() * sr)))
    short = int(math.floor(settings.tolerance * length))  # samples a last slice may miss
    if n + short < length or n == 0:
        raise ValueError(f"signal of {n / sr:.2f} s is shorter than one slice of {settings.length_s} s")
    n_slices = 1 + (n + short - length) // hop
    end = (n_slices - 1) * hop + length
    if end > n:
        y = np.concatenate([y, np.zeros((*y.shape[:-1], end - n), dtype=y.dtype)], axis=-1)
    starts = np.arange(n_slices) * hop
    slices = np.stack([y[..., s:s + length] for s in starts])
    return slices, starts / float(sr)
