"""Feature sets on disk: what the features stage writes and the train and evaluate stages read.

A feature set is written per split as a few files (``<split>/X.npy``, ``<split>/S.npy``,
``<split>/meta.csv``) plus ``info.json``, never one file per clip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["FeatureSet", "load_feature_split", "write_feature_sets", "concat_feature_sets", "join_split",
           "load_split_sets"]


@dataclass
class FeatureSet:
    """Features of one split, as the train and evaluate stages read them.

    Attributes
    ----------
    X : np.ndarray [shape=(n_slices, n_features)]
    S : np.ndarray [shape=(n_slices, n_bins, n_frames) or (n_slices, n_channels, n_bins, n_frames)] or None
        Memory-mapped when read from disk.
    meta : pd.DataFrame
        ``track_id, slice_idx, start_s, label, genre`` per slice; ``group``, ``group_unit``
        and ``fold`` once joined with the split table (:func:`join_split`).
    info : dict
        ``labels`` (class names), ``feature_names`` and the settings used.
    """

    X: np.ndarray
    S: np.ndarray | None
    meta: pd.DataFrame
    info: dict = field(default_factory=dict)

    @property
    def y(self) -> np.ndarray:
        return self.meta["label"].to_numpy(dtype=np.int64)

    @property
    def track_id(self) -> np.ndarray:
        return self.meta["track_id"].astype(str).to_numpy()

    @property
    def groups(self) -> np.ndarray:
        """Group of each slice (the outer split's unit: artist, or the track where unknown).

        Inner validation (grid search, calibration, early stopping) splits by these, so that
        no group is on both sides of it. The track id where no split table was joined.
        """
        if "group" in self.meta:
            return self.meta["group"].astype(str).to_numpy()
        return self.track_id

    def take(self, rows: np.ndarray) -> FeatureSet:
        """The slices ``rows`` (a boolean mask or indices) as a new set (``S`` read into memory)."""
        rows = np.asarray(rows)
        idx = np.flatnonzero(rows) if rows.dtype == bool else rows
        return FeatureSet(X=self.X[idx], S=None if self.S is None else np.asarray(self.S[idx]),
                          meta=self.meta.iloc[idx].reset_index(drop=True), info=self.info)


def concat_feature_sets(sets: list[FeatureSet]) -> FeatureSet:
    """The slices of several sets as one (``info`` of the first)."""
    S = None if any(fs.S is None for fs in sets) else np.concatenate([np.asarray(fs.S) for fs in sets])
    return FeatureSet(X=np.concatenate([fs.X for fs in sets]), S=S,
                      meta=pd.concat([fs.meta for fs in sets], ignore_index=True), info=sets[0].info)


def join_split(fs: FeatureSet, split_table: pd.DataFrame) -> FeatureSet:
    """Add each slice's ``group``, ``group_unit`` and ``fold`` (and ``role``) from the split table.

    Parameters
    ----------
    fs : FeatureSet
    split_table : pd.DataFrame
        ``data/split.csv`` (:func:`genrelab.splits.make_split`); ``split`` becomes ``role``.

    Returns
    -------
    fs : FeatureSet
        The same arrays; ``meta`` with the columns added. A slice of a track absent from the
        table is its own track's group, with ``role`` ``""``.
    """
    table = split_table.assign(track_id=split_table["track_id"].astype(str)).set_index("track_id")
    tid = pd.Index(fs.track_id)
    meta = fs.meta.drop(columns=[c for c in ("group", "group_unit", "fold", "role") if c in fs.meta]).copy()
    known = tid.isin(table.index)
    looked = table.reindex(tid)
    meta["group"] = np.where(known, looked["group"].astype(str).to_numpy() if "group" in table else "track:" + tid,
                             "track:" + tid)
    meta["group_unit"] = np.where(known, looked["group_unit"].astype(str).to_numpy()
                                  if "group_unit" in table else "track", "track")
    meta["fold"] = (pd.to_numeric(looked["fold"], errors="coerce").fillna(-1).astype(int).to_numpy()
                    if "fold" in table else -1)
    meta["role"] = np.where(known, looked["split"].astype(str).to_numpy(), "")
    return FeatureSet(X=fs.X, S=fs.S, meta=meta, info=fs.info)


def load_split_sets(features_dir: str | Path, split_table: pd.DataFrame | None = None) -> dict[str, FeatureSet]:
    """The train, valid and test sets of one split, each slice's group joined.

    Parameters
    ----------
    features_dir : path
        The features stage's output folder.
    split_table : pd.DataFrame, optional
        A split table whose ``split`` column gives each track's role, e.g. one fold's of
        :func:`genrelab.splits.split_folds`. Without it, the features stage's own sets are
        returned (grouped by track).

    Returns
    -------
    sets : dict
        ``{'train': FeatureSet, 'valid': ..., 'test': ...}``. The features stage's sets are
        used as written when the roles agree with them (and always under the leaky split,
        whose slices it assigned); otherwise their slices are pooled and regrouped by role.
    """
    sets = {s: load_feature_split(features_dir, s) for s in ("train", "valid", "test")}
    if split_table is None:
        return sets
    sets = {s: join_split(fs, split_table) for s, fs in sets.items()}
    if all((fs.meta["role"].isin([s, "pool"])).all() for s, fs in sets.items()):
        return sets
    pooled = concat_feature_sets(list(sets.values()))
    role = pooled.meta["role"].to_numpy()
    return {s: pooled.take(role == s) for s in sets}


def load_feature_split(features_dir: str | Path, split: str, *, mmap: bool = True) -> FeatureSet:
    """Read one split written by the features stage.

    Parameters
    ----------
    features_dir : path
        The features stage's output folder.
    split : {'train', 'valid', 'test'}
    mmap : bool
        Memory-map ``S`` instead of reading it into memory.
    """
    from genrelab.io import read_json

    root = Path(features_dir)
    folder = root / split
    if not (folder / "meta.csv").is_file():
        raise FileNotFoundError(f"{folder}: no features for split {split!r}; run the 'features' stage")
    info = read_json(root / "info.json")
    meta = pd.read_csv(folder / "meta.csv", dtype={"track_id": str, "genre": str})
    X = np.load(folder / "X.npy")
    S = np.load(folder / "S.npy", mmap_mode="r" if mmap else None) if (folder / "S.npy").is_file() else None
    return FeatureSet(X=X, S=S, meta=meta, info=info)


def write_feature_sets(out_dir: Path, X: np.ndarray, S: np.ndarray | None, meta: pd.DataFrame, *,
                        info: dict, skipped: list[dict]) -> dict[str, Any]:
    """Write ``<split>/X.npy``, ``S.npy``, ``meta.csv`` and ``info.json`` atomically as one folder."""
    from genrelab.io import atomic_dir, save_npy, write_json, write_text
    from genrelab.splits import SPLITS

    summary: dict[str, Any] = {"n_tracks": int(meta["track_id"].nunique()), "n_slices": int(len(meta)),
                               "n_tracks_skipped": len(skipped), "n_features": int(X.shape[1])}
    with atomic_dir(out_dir) as tmp:
        for split in SPLITS:
            mask = (meta["split"] == split).to_numpy()
            (tmp / split).mkdir()
            save_npy(tmp / split / "X.npy", X[mask])
            if S is not None:
                save_npy(tmp / split / "S.npy", S[mask])
            write_text(tmp / split / "meta.csv", meta.loc[mask].drop(columns="split").to_csv(index=False))
            summary[f"n_slices_{split}"] = int(mask.sum())
            summary[f"n_tracks_{split}"] = int(meta.loc[mask, "track_id"].nunique())
        write_text(tmp / "skipped.csv", pd.DataFrame(skipped, columns=["track_id", "reason"]).to_csv(index=False))
        write_json(tmp / "info.json", {**info, "summary": summary})
    return summary
