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

__all__ = ["FeatureSet", "load_feature_split", "write_feature_sets"]


@dataclass
class FeatureSet:
    """Features of one split, as the train and evaluate stages read them.

    Attributes
    ----------
    X : np.ndarray [shape=(n_slices, n_features)]
    S : np.ndarray [shape=(n_slices, n_bins, n_frames) or (n_slices, n_channels, n_bins, n_frames)] or None
        Memory-mapped when read from disk.
    meta : pd.DataFrame
        ``track_id, slice_idx, start_s, label, genre`` per slice.
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

    summary: dict[str, Any] = {"n_tracks_skipped": len(skipped), "n_features": int(X.shape[1])}
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
