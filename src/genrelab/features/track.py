"""One track's features: slice it once, analyse each slice once, run every extractor asked for.

:func:`track_feature_sets` is the per-track step of the features stage and of ``predict``: the
slices of one decoded track go through one shared
:class:`~genrelab.features.analysis.SliceAnalysis` per batch, so that several feature sets
(e.g. ``classic``, ``mel`` and ``mfcc``) cost one decoding and one STFT per slice.
:func:`file_feature_sets` decodes a file first (a picklable per-item function for
:func:`genrelab.compute.map_tracks`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from genrelab.features.analysis import SliceAnalysis
from genrelab.features.checks import require_finite
from genrelab.features.slicing import SliceSettings, slice_signal

__all__ = ["TrackFeatures", "track_feature_sets", "file_feature_sets"]

WORKER_PRELOAD = ("genrelab.io", "librosa.core.convert")
"""What the workers of a local cluster import before their first track, whatever the extractors
(decoding, the mel scale); each extractor adds its own in ``worker_preload``
(:func:`genrelab.cluster.preload_modules`)."""


@dataclass
class TrackFeatures:
    """Features of the slices of one track.

    Attributes
    ----------
    vector : np.ndarray [shape=(n_slices, n_channels * n_features)], float32
        Summary features, channel after channel (the layout of the features stage's ``X``).
    frames : np.ndarray [shape=(n_slices, n_bins, n_frames) or (n_slices, n_channels, n_bins, n_frames)] or None
        Time-frequency frames (the features stage's ``S``); ``None`` for extractors without,
        and for whole-track slicing (tracks differ in length).
    starts_s : np.ndarray [shape=(n_slices,)]
        Start time of each slice in seconds.
    """

    vector: np.ndarray
    frames: np.ndarray | None
    starts_s: np.ndarray


def track_feature_sets(y: np.ndarray, sr: int, *, extractors: Sequence, slicing: SliceSettings,
                       batch_slices: int = 64) -> dict[str, TrackFeatures]:
    """Slice one track and extract several feature sets from one analysis of each slice.

    Parameters
    ----------
    y : np.ndarray [shape=(n_channels, n)]
        The track's variant channels (:func:`genrelab.variants.variant_audio`).
    sr : int > 0
        Sample rate in Hz.
    extractors : sequence
        :data:`genrelab.features.FEATURES` entries with distinct ``name``\\ s; embedding
        extractors (``embed_track``) cut their own patches and ignore ``slicing``.
    slicing : SliceSettings
    batch_slices : int > 0
        Slices analysed together (bounds memory on long recordings; every slice is computed
        on its own, so the result does not depend on it).

    Returns
    -------
    dict of str to TrackFeatures
        By extractor name.

    Raises
    ------
    ValueError
        If the signal is shorter than one slice, or ``y`` is not 2-D.
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 2:
        raise ValueError(f"y must have shape (n_channels, n), got {y.shape}")
    if batch_slices < 1:
        raise ValueError(f"batch_slices must be positive, got {batch_slices}")
    names = [getattr(ex, "name", f"extractor{i}") for i, ex in enumerate(extractors)]
    if len(set(names)) != len(names):
        raise ValueError(f"extractors must have distinct names, got {names}")
    out: dict[str, TrackFeatures] = {}
    sliced = [(name, ex) for name, ex in zip(names, extractors) if not hasattr(ex, "embed_track")]
    for name, ex in zip(names, extractors):
        if hasattr(ex, "embed_track"):  # pretrained embeddings: the model's patches are the slices
            vector, starts = ex.embed_track(y, sr)
            out[name] = TrackFeatures(vector=vector, frames=None, starts_s=starts)
    if sliced:
        out.update(_sliced_feature_sets(y, sr, sliced, slicing=slicing, batch_slices=batch_slices))
    for feats in out.values():
        require_finite(feats.vector, feats.frames)  # a NaN never reaches a feature set or a model
    return {name: out[name] for name in names}


def _sliced_feature_sets(y: np.ndarray, sr: int, sliced: list, *, slicing: SliceSettings,
                         batch_slices: int) -> dict[str, TrackFeatures]:
    """The features of the extractors that work on slices, from one analysis per batch of slices."""
    slices, starts = slice_signal(y, sr, slicing)  # (n_slices, n_channels, L)
    n_slices, n_ch, length = slices.shape
    vectors: dict[str, list] = {name: [] for name, _ in sliced}
    frames: dict[str, list] = {name: [] for name, _ in sliced}
    for i in range(0, n_slices, batch_slices):
        part = slices[i:i + batch_slices]
        analysis = SliceAnalysis(part.reshape(len(part) * n_ch, length), sr)
        for name, ex in sliced:
            # any callable ``ex(slices, sr) -> FeatureBatch`` works; the built-in ones share the analysis
            batch = ex.extract(analysis) if hasattr(ex, "extract") else ex(analysis.slices, sr)
            vectors[name].append(batch.vector.reshape(len(part), -1))
            if batch.frames is not None and not slicing.whole:
                fr = batch.frames.reshape(len(part), n_ch, *batch.frames.shape[1:])
                frames[name].append(fr[:, 0] if n_ch == 1 else fr)
        del analysis
    return {name: TrackFeatures(
        vector=np.concatenate(vectors[name]).astype(np.float32, copy=False),
        frames=np.concatenate(frames[name]).astype(np.float32, copy=False) if frames[name] else None,
        starts_s=starts) for name, _ in sliced}


def file_feature_sets(path: str | os.PathLike, *, extractors: Sequence, slicing: SliceSettings, sample_rate: int,
                      mono: bool = True) -> dict[str, TrackFeatures]:
    """Decode an audio file once and extract several feature sets (:func:`track_feature_sets`).

    Parameters
    ----------
    path : str or PathLike
        Any format :func:`genrelab.io.load_audio` reads.
    extractors, slicing
        As in :func:`track_feature_sets`.
    sample_rate : int > 0
        Rate the file is decoded and resampled to (Hz).
    mono : bool
        Mix the channels down (one channel), else keep them.

    Returns
    -------
    dict of str to TrackFeatures
    """
    from genrelab.io import load_audio

    y, sr = load_audio(path, sr=sample_rate, mono=mono)
    return track_feature_sets(np.atleast_2d(y), sr, extractors=extractors, slicing=slicing)
