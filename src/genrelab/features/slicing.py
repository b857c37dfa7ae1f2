"""Cutting a track into equal slices (the ``slicing`` section)."""

from __future__ import annotations

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
        Slice length in seconds.
    overlap : float in [0, 1)
        Fraction of a slice shared with the next one.
    """

    length_s: float = 3.0
    overlap: float = 0.0

    def __post_init__(self) -> None:
        if not self.length_s > 0:
            raise ConfigError(f"slicing.length_s: must be positive, got {self.length_s}")
        if not 0 <= self.overlap < 1:
            raise ConfigError(f"slicing.overlap: must be in [0, 1), got {self.overlap}")

    def hop_s(self) -> float:
        return self.length_s * (1.0 - self.overlap)


def slice_signal(y: np.ndarray, sr: int, settings: SliceSettings) -> tuple[np.ndarray, np.ndarray]:
    """Cut a signal into equal slices; a trailing remainder shorter than a slice is dropped.

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
    starts_s : np.ndarray [shape=(n_slices,)]
        Start time of each slice in seconds.

    Raises
    ------
    ValueError
        If the signal is shorter than one slice.
    """
    length = int(round(settings.length_s * sr))
    hop = max(1, int(round(settings.hop_s() * sr)))
    n = y.shape[-1]
    if n < length:
        raise ValueError(f"signal of {n / sr:.2f} s is shorter than one slice of {settings.length_s} s")
    starts = np.arange(0, n - length + 1, hop)
    slices = np.stack([y[..., s:s + length] for s in starts])
    return slices, starts / float(sr)
