"""Per-track variant audio and features of new recordings, as the features stage computes them.

:func:`genrelab.features.extract_dataset` reads a dataset's tracks and the separate stage's
stems from disk; a recording to classify has neither. The two functions here reproduce its
per-track steps in memory:

* :func:`variant_audio` turns a mono signal into the channels of a variant (the mix, or sums
  of stems separated on the fly with the same separator and settings as the separate stage);
* :func:`track_features` slices those channels and extracts features exactly as
  ``extract_dataset`` does (same slicing, same channel layout of ``vector`` and ``frames``).

``tests/test_predict.py`` checks that both give the same numbers as the pipeline's stages.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from genrelab.config import ConfigError
from genrelab.features import SliceSettings, slice_signal
from genrelab.variants import VariantSettings

__all__ = ["TrackFeatures", "make_variant_separator", "variant_audio", "track_features"]


@dataclass
class TrackFeatures:
    """Features of the slices of one track.

    Attributes
    ----------
    vector : np.ndarray [shape=(n_slices, n_channels * n_features)], float32
        Summary features, channel after channel (the layout of the features stage's ``X``).
    frames : np.ndarray [shape=(n_slices, n_bins, n_frames) or (n_slices, n_channels, n_bins, n_frames)] or None
        Time-frequency frames (the features stage's ``S``); ``None`` for extractors without.
    starts_s : np.ndarray [shape=(n_slices,)]
        Start time of each slice in seconds.
    """

    vector: np.ndarray
    frames: np.ndarray | None
    starts_s: np.ndarray


@functools.lru_cache(maxsize=4)
def _cached_separator(name: str, settings_json: str):
    from genrelab.separation import make_separator

    return make_separator(name, **json.loads(settings_json))


def make_variant_separator(variant: VariantSettings, separation: dict[str, Any] | None):
    """The separator a variant needs, built from the ``separation`` section (cached).

    Parameters
    ----------
    variant : VariantSettings
    separation : dict, optional
        The ``separation`` params section; ``separation[variant.separator]`` are the settings
        the separate stage used.

    Returns
    -------
    separator : object with ``separate(y, sr) -> dict[str, np.ndarray]``, or None
        ``None`` for ``separator: none`` (the mix needs no separation).

    Raises
    ------
    ConfigError
        For ``oracle`` variants: their stems are the synthetic generator's ground truth, which
        a new recording does not have.
    """
    if variant.separator == "none":
        return None
    if variant.separator == "oracle":
        raise ConfigError(
            f"variant {variant.name!r} reads the generator's true stems (separator: oracle), which exist only for "
            "the synthetic dataset; a model trained on it cannot classify new audio. Train on a variant with "
            "separator none, hpss or demucs (e.g. dvc exp run -S variant=normal)")
    settings = dict((separation or {}).get(variant.separator) or {})
    return _cached_separator(variant.separator, json.dumps(settings, sort_keys=True, default=str))


def variant_audio(y: np.ndarray, sr: int, variant: VariantSettings, *, separator=None) -> np.ndarray:
    """The channels of ``variant`` for one mono signal.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono audio at ``sr``.
    sr : int > 0
        Sample rate in Hz.
    variant : VariantSettings
    separator : object, optional
        From :func:`make_variant_separator`; required when a channel uses a stem other than
        ``mix``.

    Returns
    -------
    channels : np.ndarray [shape=(n_channels, n)], float32
        Each channel is the sum of its stems (as :func:`genrelab.variants.load_variant`).
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"y must be mono with shape (n,), got shape {y.shape}; mix it down first")
    stems: dict[str, np.ndarray] = {"mix": y}
    needed = {s for ch in variant.channels for s in ch} - {"mix"}
    if needed:
        if separator is None:
            raise ValueError(f"variant {variant.name!r} needs stems {sorted(needed)}; pass its separator "
                             "(make_variant_separator(variant, params['separation']))")
        out = separator.separate(y, sr)
        missing = sorted(needed - set(out))
        if missing:
            raise ValueError(f"separator {type(separator).__name__} returned stems {sorted(out)}, "
                             f"not {missing} that variant {variant.name!r} needs")
        stems.update({k: np.asarray(v, dtype=np.float32) for k, v in out.items()})
    channels = []
    for ch in variant.channels:
        parts = [stems[s] for s in ch]
        n = min(len(p) for p in parts)
        channels.append(np.sum([p[:n] for p in parts], axis=0))
    n = min(len(c) for c in channels)
    return np.stack([c[:n] for c in channels]).astype(np.float32)


def track_features(y: np.ndarray, sr: int, *, extractor, slicing: SliceSettings,
                   batch_slices: int = 64) -> TrackFeatures:
    """Slice one track and extract per-slice features, as the features stage does.

    Parameters
    ----------
    y : np.ndarray [shape=(n_channels, n)]
        The track's variant channels (:func:`variant_audio`).
    sr : int > 0
        Sample rate in Hz.
    extractor : callable
        A :data:`genrelab.features.FEATURES` entry (:func:`genrelab.features.make_extractor`).
    slicing : SliceSettings
    batch_slices : int > 0
        Slices per extractor call (bounds memory on long recordings; extractors treat every
        slice independently, so the result does not depend on it).

    Returns
    -------
    TrackFeatures

    Raises
    ------
    ValueError
        If the signal is shorter than one slice.
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 2:
        raise ValueError(f"y must have shape (n_channels, n), got {y.shape}")
    if hasattr(extractor, "embed_track"):  # pretrained embeddings: the model's patches are the slices
        vector, starts = extractor.embed_track(y, sr)
        return TrackFeatures(vector=vector, frames=None, starts_s=starts)
    if batch_slices < 1:
        raise ValueError(f"batch_slices must be positive, got {batch_slices}")
    slices, starts = slice_signal(y, sr, slicing)  # (n_slices, n_channels, L)
    n_slices, n_ch, length = slices.shape
    vectors, frames = [], []
    for i in range(0, n_slices, batch_slices):
        part = slices[i:i + batch_slices]
        batch = extractor(part.reshape(len(part) * n_ch, length), sr)
        vectors.append(batch.vector.reshape(len(part), -1))
        if batch.frames is not None:
            fr = batch.frames.reshape(len(part), n_ch, *batch.frames.shape[1:])
            frames.append(fr[:, 0] if n_ch == 1 else fr)
    return TrackFeatures(vector=np.concatenate(vectors).astype(np.float32),
                         frames=np.concatenate(frames).astype(np.float32) if frames else None,
                         starts_s=starts)
