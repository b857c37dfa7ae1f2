"""Checks on computed features: nothing that is not finite reaches a feature set or a model."""

from __future__ import annotations

import numpy as np

__all__ = ["NonFiniteFeaturesError", "require_finite"]


class NonFiniteFeaturesError(ValueError):
    """A track's features hold NaN or inf (the features stage skips the track with this reason)."""


def require_finite(vector: np.ndarray, frames: np.ndarray | None = None, *, names: list[str] | None = None) -> None:
    """Raise if the features of one track hold NaN or inf.

    Parameters
    ----------
    vector : np.ndarray [shape=(n_slices, n_features)]
        Summary features of every slice.
    frames : np.ndarray [shape=(n_slices, ...)] or None
        Time-frequency frames, when the extractor makes them.
    names : list of str, optional
        Feature names, to say which features are broken.

    Raises
    ------
    NonFiniteFeaturesError
        With a one-line reason: how many values, in how many slices, and which features.
    """
    bad = ~np.isfinite(vector)
    if bad.any():
        cols = np.flatnonzero(bad.any(axis=0))
        shown = [names[c] if names is not None and c < len(names) else str(c) for c in cols[:5]]
        more = f" and {len(cols) - 5} more" if len(cols) > 5 else ""
        raise NonFiniteFeaturesError(
            f"features are not finite: {int(bad.sum())} NaN/inf values in {int(bad.any(axis=1).sum())} of "
            f"{len(vector)} slices (features {', '.join(shown)}{more}); the audio is broken or extreme")
    if frames is not None and not np.isfinite(frames).all():
        n = int((~np.isfinite(frames)).reshape(len(frames), -1).any(axis=1).sum())
        raise NonFiniteFeaturesError(f"time-frequency features are not finite in {n} of {len(frames)} slices; "
                                     "the audio is broken or extreme")
