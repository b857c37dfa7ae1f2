"""The features stage: slice every track of the dataset and extract features, one set per split."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genrelab.config import ConfigError
from genrelab.features.extractors import settings_dict
from genrelab.features.sets import write_feature_sets
from genrelab.features.slicing import SliceSettings
from genrelab.features.track import TrackFeatures, track_feature_sets

__all__ = ["extract_dataset", "TrackFeatures", "track_features"]

log = logging.getLogger(__name__)


def extract_dataset(
    index: pd.DataFrame,
    split_table: pd.DataFrame,
    *,
    extractor,
    variant,
    slicing: SliceSettings,
    sample_rate: int,
    dataset_dir: Path,
    separated_dir: Path,
    out_dir: Path,
    separation: dict | None = None,
    leaky_fractions: dict | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Slice every track of the split table, extract features, write one feature set per split.

    Parameters
    ----------
    index : pd.DataFrame
        Dataset index (``track_id``, ``genre``, ``path``, ``duration_s``).
    split_table : pd.DataFrame
        Output of :func:`genrelab.splits.make_split`.
    extractor : callable
        A :data:`FEATURES` entry (``extractor(slices, sr) -> FeatureBatch``).
    variant : genrelab.variants.VariantSettings
    slicing : SliceSettings
    sample_rate : int
        Rate every track is decoded and resampled to (Hz).
    dataset_dir, separated_dir : Path
        Outputs of the prepare and separate stages.
    out_dir : Path
        Output folder; replaced atomically as a whole.
    separation : dict, optional
        The ``separation`` params section (selects which settings' stems to read).
    leaky_fractions : dict, optional
        Slice fractions for a leaky split.
    seed : int
        Seed of the leaky slice assignment.

    Returns
    -------
    summary : dict
        Counts of tracks and slices per split, and of skipped tracks (numbers only).
    """
    from genrelab.progress import progress_bar

    from genrelab.splits import assign_slices
    from genrelab.variants import load_variant

    labels = sorted(index["genre"].unique())
    label_of = {g: i for i, g in enumerate(labels)}
    if getattr(extractor, "precomputed", False):
        return _write_table_features(Path(dataset_dir) / "table.npz", split_table, labels=labels, out_dir=out_dir,
                                     leaky_fractions=leaky_fractions, seed=seed, settings=settings_dict(extractor),
                                     variant=settings_dict(variant), slicing=settings_dict(slicing))
    longest = float(index["duration_s"].max()) if len(index) else 0.0
    if slicing.min_duration_s() > longest:
        raise ConfigError(f"slicing.length_s: {slicing.length_s} s is longer than every clip "
                          f"(longest {longest:.2f} s); choose at most {longest:.2f}")
    if hasattr(extractor, "load"):
        extractor.load()  # a missing model file is a setup error, not a per-track one
    tracks = index.set_index("track_id").loc[split_table["track_id"]].reset_index()
    vectors, frames, metas, skipped = [], [], [], []
    for _, track in progress_bar(tracks.iterrows(), total=len(tracks), desc="features", unit="track", disable=not progress):
        try:
            y = load_variant(track, variant, dataset_dir=dataset_dir, separated_dir=separated_dir, sr=sample_rate,
                             separation=separation)
            feats = track_features(y, sample_rate, extractor=extractor, slicing=slicing)
        except (ValueError, FileNotFoundError) as exc:  # AudioDecodeError is a ValueError
            skipped.append({"track_id": track["track_id"], "reason": str(exc)})
            log.warning("skipped %s: %s", track["track_id"], exc)
            continue
        n_slices = len(feats.vector)
        vectors.append(feats.vector)
        if feats.frames is not None:
            frames.append(feats.frames)
        metas.append(pd.DataFrame({
            "track_id": track["track_id"], "slice_idx": np.arange(n_slices), "start_s": feats.starts_s,
            "label": label_of[track["genre"]], "genre": track["genre"],
        }))
    if not metas:
        raise RuntimeError("features: every track was skipped; see the log for the reasons")
    meta = pd.concat(metas, ignore_index=True)
    X = np.concatenate(vectors).astype(np.float32)
    S = np.concatenate(frames).astype(np.float32) if frames else None
    meta["split"] = assign_slices(meta["track_id"].to_numpy(), split_table, fractions=leaky_fractions, seed=seed)
    names = extractor.names()
    if variant.n_channels > 1:
        names = [f"ch{c}_{n}" for c in range(variant.n_channels) for n in names]
    info = {"labels": labels, "feature_names": names, "sample_rate": sample_rate,
            "frames_shape": list(S.shape[1:]) if S is not None else None,
            "features": settings_dict(extractor), "variant": settings_dict(variant),
            "slicing": settings_dict(slicing), "split_method": str(split_table["method"].iloc[0])}
    summary = write_feature_sets(out_dir, X, S, meta, info=info, skipped=skipped)
    return summary


def _write_table_features(table_path: Path, split_table: pd.DataFrame, *, labels: list[str], out_dir: Path,
                          leaky_fractions: dict | None, seed: int, settings: dict, variant: dict,
                          slicing: dict) -> dict[str, Any]:
    """Feature sets from an imported table (rows of tracks in the split table)."""
    from genrelab.splits import assign_slices

    if not table_path.is_file():
        raise ConfigError(f"features=table needs a table dataset (dataset=gtzan_kaggle_table or fma_table); "
                          f"{table_path} is missing")
    t = np.load(table_path, allow_pickle=False)
    keep = np.isin(t["track_id"], split_table["track_id"].astype(str).to_numpy())
    label_of = {g: i for i, g in enumerate(labels)}
    meta = pd.DataFrame({"track_id": t["track_id"][keep], "slice_idx": t["slice_idx"][keep],
                         "start_s": 0.0, "genre": t["genre"][keep]})
    meta["label"] = meta["genre"].map(label_of).astype(int)
    meta["split"] = assign_slices(meta["track_id"].to_numpy(), split_table, fractions=leaky_fractions, seed=seed)
    info = {"labels": labels, "feature_names": [str(n) for n in t["feature_names"]], "sample_rate": None,
            "frames_shape": None, "features": settings, "variant": variant, "slicing": slicing,
            "split_method": str(split_table["method"].iloc[0])}
    return write_feature_sets(out_dir, t["X"][keep].astype(np.float32), None,
                               meta[["track_id", "slice_idx", "start_s", "label", "genre", "split"]],
                               info=info, skipped=[])


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
        If the signal is shorter than one slice;
        :class:`~genrelab.features.checks.NonFiniteFeaturesError` (a ``ValueError``) if a
        feature is NaN or inf.

    See Also
    --------
    genrelab.features.track.track_feature_sets : several extractors from one analysis.
    """
    (feats,) = track_feature_sets(y, sr, extractors=[extractor], slicing=slicing, batch_slices=batch_slices).values()
    return feats
