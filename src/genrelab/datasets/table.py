"""Published feature tables as a dataset: the Kaggle GTZAN tables and FMA's ``features.csv``.

The prepare stage imports the table (``dataset=gtzan_kaggle_table`` or ``dataset=fma_table``)
into ``table.npz`` beside a per-track ``index.csv``; the features stage (``features=table``)
then writes its rows as the feature sets, so the same split, train and evaluate stages run on
them. GTZAN's split lists and artists (Sturm's index) are applied by file name, FMA's official
split and artist ids come from ``tracks.csv``. Every row is kept, also those of tracks in no
official split (the 70 faulty GTZAN tracks), exactly as the GTZAN audio ingest keeps them:
``split=official`` leaves them out, ``split=grouped`` and ``split=kfold`` use them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genrelab.config import ConfigError, from_mapping, require_choice
from genrelab.io import atomic_path, write_text

__all__ = ["TableSettings", "prepare_table", "write_table_dataset"]


@dataclass(frozen=True)
class TableSettings:
    """Settings of a feature-table dataset.

    Attributes
    ----------
    kind : {'gtzan_kaggle', 'fma'}
    source : str
        ``features_30_sec.csv`` / ``features_3_sec.csv`` (Kaggle GTZAN) or ``features.csv`` (FMA).
    split : str
        The official split: ``fault_filtered`` | ``stratified`` (GTZAN), ``official`` (FMA).
        Folds are the split stage's (``split=kfold``).
    tracks_csv : str
        FMA's ``tracks.csv`` (labels and official split); FMA only.
    subset : str
        ``small`` | ``medium`` (FMA only).
    """

    kind: str = "gtzan_kaggle"
    source: str = ""
    split: str = "fault_filtered"
    tracks_csv: str = ""
    subset: str = ""

    def __post_init__(self) -> None:
        require_choice("dataset.kind", self.kind, ("gtzan_kaggle", "fma"))
        if not self.source:
            raise ConfigError("dataset.source: give the path of the feature table "
                              "(e.g. -S dataset.source=/path/to/features_3_sec.csv)")
        if not Path(self.source).expanduser().is_file():
            raise ConfigError(f"dataset.source: {self.source} is not a file")
        if self.kind == "fma" and not self.tracks_csv:
            raise ConfigError("dataset.tracks_csv: FMA's features.csv needs tracks.csv for labels and splits")


def prepare_table(settings: Mapping[str, Any], out_dir: Path, *, progress: bool = True) -> pd.DataFrame:
    """Import a feature table into ``out_dir/table.npz`` and write the per-track index.

    Returns
    -------
    index : pd.DataFrame
        One row per track (``path`` is the table; ``duration_s`` 30, nominal).
    """
    from genrelab.datasets.tables import NO_SPLIT, import_table

    s = from_mapping(TableSettings, settings, section="dataset")
    parts = import_table(s.kind, Path(s.source).expanduser(), split=s.split,
                         tracks_csv=Path(s.tracks_csv).expanduser() if s.tracks_csv else None,
                         subset=s.subset or None)
    rows = {k: [] for k in ("X", "track_id", "slice_idx", "genre", "split", "artist")}
    names = None
    for split, d in parts.items():
        if len(d["X"]) == 0:
            continue
        names = d["feature_names"]
        rows["X"].append(d["X"])
        rows["track_id"].append(d["track_id"].astype(str))
        rows["slice_idx"].append(d["slice_idx"])
        rows["genre"].append(d["genre"].astype(str))
        rows["artist"].append(d["artist"].astype(str))
        rows["split"].append(np.full(len(d["X"]), "" if split == NO_SPLIT else split, dtype=object))
    if names is None:
        raise ConfigError(f"dataset.source: {s.source} holds no usable rows")
    arrays = {k: np.concatenate(v) for k, v in rows.items()}
    return write_table_dataset(out_dir, **arrays, feature_names=list(names),
                               source=str(Path(s.source).expanduser().resolve()))


def write_table_dataset(out_dir: Path, *, X: np.ndarray, track_id: np.ndarray, slice_idx: np.ndarray,
                        genre: np.ndarray, split: np.ndarray, feature_names: list[str], source: str,
                        artist: np.ndarray | None = None) -> pd.DataFrame:
    """Write ``out_dir/table.npz`` and the per-track ``index.csv`` that ``features=table`` reads.

    Parameters
    ----------
    out_dir : Path
    X : np.ndarray [shape=(n_rows, n_features)]
    track_id, genre, split : np.ndarray [shape=(n_rows,)], str
        Track, genre and official split ('' for none) of each row.
    slice_idx : np.ndarray [shape=(n_rows,)], int
        Row number within its track.
    feature_names : list of str
    source : str
        What the rows came from (the index's ``path``).
    artist : np.ndarray [shape=(n_rows,)], str, optional
        Artist of each row's track ('' where unknown; all unknown when not given): the split
        stage groups by it.

    Returns
    -------
    index : pd.DataFrame
        One row per track (``duration_s`` 30, nominal).
    """
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with atomic_path(Path(out_dir) / "table.npz", suffix=".npz") as tmp:
        np.savez(tmp, X=np.asarray(X, dtype=np.float32), track_id=np.asarray(track_id).astype(str),
                 slice_idx=np.asarray(slice_idx).astype(np.int64), genre=np.asarray(genre).astype(str),
                 feature_names=np.asarray(feature_names, dtype=str))
    artist = np.full(len(track_id), "", dtype=object) if artist is None else np.asarray(artist).astype(str)
    per_track = pd.DataFrame({"track_id": np.asarray(track_id).astype(str), "genre": np.asarray(genre).astype(str),
                              "artist": artist,
                              "official_split": np.asarray(split).astype(str)}).drop_duplicates("track_id")
    index = per_track.assign(path=source, duration_s=30.0,
                             sample_rate=0)[["track_id", "genre", "artist", "path", "duration_s", "sample_rate",
                                             "official_split"]]
    write_text(Path(out_dir) / "index.csv", index.to_csv(index=False))
    return index.reset_index(drop=True)
