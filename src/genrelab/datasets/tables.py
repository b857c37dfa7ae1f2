"""Import published feature tables as per-split feature matrices.

Two tables are in wide use and can stand in for the feature-extraction stage:

* ``gtzan_kaggle``: the Kaggle GTZAN ``features_30_sec.csv`` (one row per track,
  ``filename`` like ``blues.00000.wav``) or ``features_3_sec.csv`` (one row per 3-s
  segment, ``filename`` like ``blues.00000.7.wav``). Columns: ``filename, length``, 57
  features, ``label``. The split comes from the GTZAN lists shipped with genrelab,
  matched by file name, and the artist from Sturm's index shipped with it.
* ``fma``: FMA's ``features.csv`` from ``fma_metadata.zip``: a three-level header
  (``feature``, ``statistics``, ``number``; 518 columns) over the ``track_id`` index. The
  subset, label, artist and official split come from ``tracks.csv``.

``import_table`` is pure: it reads files and returns arrays; the caller writes them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from genrelab import GENRES
from genrelab.config import ConfigError, require_choice
from genrelab.datasets.fma import load_fma_tracks, select_fma_subset
from genrelab.datasets.gtzan import (
    SPLIT_NAMES,
    check_gtzan_split,
    load_gtzan_artists,
    load_gtzan_split,
)

__all__ = ["TABLE_FORMATS", "KAGGLE_NON_FEATURES", "FMA_SPLIT_CHOICES", "NO_SPLIT", "import_table"]

log = logging.getLogger(__name__)

KAGGLE_NON_FEATURES: tuple[str, ...] = ("filename", "length", "label")
"""Kaggle GTZAN columns that are not features (``length`` is the segment's sample count)."""

FMA_SPLIT_CHOICES: tuple[str, ...] = ("official",)
"""``split`` values for ``fma``: FMA's own split (folds are made by the split stage)."""

NO_SPLIT = "none"
"""Key of :func:`import_table`'s rows of tracks in no official split (the faulty GTZAN tracks)."""

FMA_HEADER_LEVELS: tuple[str, ...] = ("feature", "statistics", "number")
"""Names of the three column levels of FMA's ``features.csv`` (first cell of each header line)."""

_KAGGLE_NAME = r"^(?P<genre>[a-z]+)\.(?P<number>\d{5})(?:\.(?P<slice>\d+))?\.(?:wav|au)$"


@dataclass(frozen=True)
class _Long:
    """A table in long form before grouping by split: one row per (track, slice), sorted."""

    X: np.ndarray
    track_id: np.ndarray
    slice_idx: np.ndarray
    genre: np.ndarray
    split: np.ndarray
    artist: np.ndarray
    feature_names: np.ndarray


def _numeric(frame: pd.DataFrame, path: Path) -> np.ndarray:
    bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise ValueError(f"{path}: feature columns must be numeric; not numeric: {bad[:5]}")
    return frame.to_numpy(dtype=np.float32)


def _read_gtzan_kaggle(path: Path, *, split: str | None, tracks_csv: Path | None, subset: str | None) -> _Long:
    if tracks_csv is not None or subset is not None:
        raise ValueError("import_table('gtzan_kaggle', ...): `tracks_csv` and `subset` apply to 'fma' only")
    split = "fault_filtered" if split is None else split
    check_gtzan_split("GTZAN split", split)
    df = pd.read_csv(path)
    missing = [c for c in ("filename", "label") if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: not a Kaggle GTZAN features table: no column {missing} "
                         f"(expected 'filename, length, <57 features>, label')")
    parts = df["filename"].astype(str).str.extract(_KAGGLE_NAME)
    bad = df["filename"][parts["genre"].isna() | ~parts["genre"].isin(GENRES)]
    if len(bad):
        raise ValueError(f"{path}: cannot read a GTZAN track from filename(s) {bad.head(3).tolist()} "
                         f"(expected like 'blues.00000.wav' or 'blues.00000.3.wav')")
    label = df["label"].astype(str)
    wrong = df["filename"][label != parts["genre"]]
    if len(wrong):
        raise ValueError(f"{path}: label disagrees with the file name for {wrong.head(3).tolist()}")
    track_id = (parts["genre"] + "." + parts["number"]).to_numpy(dtype=str)
    slice_idx = parts["slice"].fillna("0").astype("int64").to_numpy()
    feature_cols = [c for c in df.columns if c not in KAGGLE_NON_FEATURES]
    mapping = load_gtzan_split(split)
    splits = np.array([mapping.get(t, "") for t in track_id], dtype=object)
    artists = load_gtzan_artists()
    artist = np.array([artists.get(t, "") for t in track_id], dtype=object)
    order = np.lexsort((slice_idx, track_id))
    return _Long(
        X=_numeric(df[feature_cols], path)[order],
        track_id=track_id[order],
        slice_idx=slice_idx[order],
        genre=label.to_numpy(dtype=str)[order],
        split=splits[order],
        artist=artist[order],
        feature_names=np.asarray(feature_cols, dtype=str),
    )


def _read_fma(path: Path, *, split: str | None, tracks_csv: Path | None, subset: str | None) -> _Long:
    if tracks_csv is None or subset is None:
        raise ValueError(
            "import_table('fma', ...) needs `tracks_csv` (FMA's tracks.csv) and `subset` ('small'|'medium')"
        )
    split = "official" if split is None else split
    if split == "kfold":
        raise ConfigError("FMA split: 'kfold' is not a dataset option (any more); the table keeps FMA's official "
                          "split and -S split=kfold (split.n_folds, split.fold) makes folds")
    require_choice("FMA split", split, FMA_SPLIT_CHOICES)
    try:
        feats = pd.read_csv(path, index_col=0, header=[0, 1, 2], low_memory=False)
    except (ValueError, IndexError, pd.errors.ParserError) as exc:
        raise ValueError(f"{path}: not FMA's features.csv (three header lines feature/statistics/number "
                         f"+ 'track_id' line): {exc}") from exc
    if not isinstance(feats.columns, pd.MultiIndex) or list(feats.columns.names) != list(FMA_HEADER_LEVELS):
        raise ValueError(f"{path}: not FMA's features.csv: expected a three-level header whose lines start "
                         f"with {', '.join(FMA_HEADER_LEVELS)} (then 'track_id')")
    try:
        feats.index = feats.index.astype("int64")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: the index column must hold integer track ids: {exc}") from exc
    names = np.asarray(["_".join(str(p) for p in col) for col in feats.columns], dtype=str)
    table = select_fma_subset(load_fma_tracks(tracks_csv), subset)
    table = table[table["genre"] != ""]
    absent = table.index.difference(feats.index)
    if len(absent):
        log.warning("%s: %d tracks of fma_%s have no features (e.g. %s)", path, len(absent), subset, list(absent[:3]))
    table = table.loc[table.index.intersection(feats.index)].sort_index()
    X = _numeric(feats.loc[table.index], path)
    splits = table["official_split"].to_numpy(dtype=object)
    return _Long(
        X=X,
        track_id=table.index.astype(str).to_numpy(dtype=str),
        slice_idx=np.zeros(len(table), dtype=np.int64),
        genre=table["genre"].to_numpy(dtype=str),
        split=splits,
        artist=table["artist"].to_numpy(dtype=object),
        feature_names=names,
    )


@dataclass(frozen=True)
class TableFormat:
    """One importable table: its reader and a line for error messages."""

    read: Callable[..., _Long]
    description: str


TABLE_FORMATS: dict[str, TableFormat] = {
    "gtzan_kaggle": TableFormat(_read_gtzan_kaggle, "Kaggle GTZAN features_30_sec.csv / features_3_sec.csv"),
    "fma": TableFormat(_read_fma, "FMA features.csv (+ tracks.csv)"),
}
"""Importable feature tables by name."""


def import_table(
    kind: str,
    features_csv: str | os.PathLike,
    *,
    split: str | None = None,
    tracks_csv: str | os.PathLike | None = None,
    subset: str | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Read a published feature table and group its rows by split.

    Parameters
    ----------
    kind : {"gtzan_kaggle", "fma"}
        Table format (see ``TABLE_FORMATS``).
    features_csv : str or PathLike
        ``features_30_sec.csv``/``features_3_sec.csv`` (Kaggle GTZAN) or ``features.csv``
        (FMA).
    split : str, optional
        ``gtzan_kaggle``: ``"fault_filtered"`` (default) or ``"stratified"``;
        ``fma``: ``"official"`` (the default and only choice). Folds are made downstream
        by the split stage from every row, whatever this official split is.
    tracks_csv : str or PathLike, optional
        FMA's ``tracks.csv`` (``fma`` only): subset, ``genre_top`` and official split.
    subset : {"small", "medium"}, optional
        FMA subset (``fma`` only).

    Returns
    -------
    splits : dict[str, dict[str, np.ndarray]]
        Keys ``"train"``, ``"valid"``, ``"test"`` and ``"none"`` (:data:`NO_SPLIT`: rows of
        tracks in no official split, such as the 70 faulty GTZAN tracks of the fault-filtered
        split; kept, as the audio ingest keeps them, so that ``split=grouped`` and
        ``split=kfold`` see every track), always all four, possibly empty. Each value holds:

        - ``X`` : np.ndarray [shape=(n, d)], float32 — features (d = 57 for Kaggle GTZAN,
          518 for FMA);
        - ``track_id`` : np.ndarray [shape=(n,)], str — ``"blues.00000"`` for GTZAN,
          FMA's integer id as text (``"2"``) for FMA, as in the datasets' ``index.csv``;
        - ``slice_idx`` : np.ndarray [shape=(n,)], int64 — the 3-s segment number in
          ``features_3_sec.csv``, 0 for whole-track rows;
        - ``genre`` : np.ndarray [shape=(n,)], str;
        - ``artist`` : np.ndarray [shape=(n,)], str — Sturm's GTZAN index, FMA's artist
          id; ``""`` where unknown;
        - ``feature_names`` : np.ndarray [shape=(d,)], str — column names; for FMA
          ``"<feature>_<statistic>_<number>"`` such as ``"mfcc_mean_01"``.

        Rows are sorted by ``(track_id, slice_idx)`` (FMA: by numeric id). Rows with
        non-finite features are dropped, with a log message.

    Raises
    ------
    ValueError
        If ``kind`` or ``split`` is unknown (the message lists the choices), if the file
        is not in the expected format, or if FMA arguments are missing or misplaced.
    FileNotFoundError
        If a file does not exist.
    """
    require_choice("feature table", kind, TABLE_FORMATS)
    path = Path(features_csv)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such feature table ({TABLE_FORMATS[kind].description})")
    if tracks_csv is not None:
        tracks_csv = Path(tracks_csv)
    long = TABLE_FORMATS[kind].read(path, split=split, tracks_csv=tracks_csv, subset=subset)

    keep = np.isfinite(long.X).all(axis=1)
    if not keep.all():
        log.warning("%s: dropping %d rows with non-finite features (e.g. track %s)",
                    path, int((~keep).sum()), long.track_id[~keep][0])
    unassigned = keep & (long.split == "")
    if unassigned.any():
        log.info("%s: %d rows (%d tracks) are in no official split (kept under %r)",
                 path, int(unassigned.sum()), len(set(long.track_id[unassigned].tolist())), NO_SPLIT)
    out: dict[str, dict[str, np.ndarray]] = {}
    for name in (*SPLIT_NAMES, NO_SPLIT):
        rows = np.flatnonzero(keep & (long.split == (name if name != NO_SPLIT else "")))  # readers sort rows
        out[name] = {
            "X": np.ascontiguousarray(long.X[rows], dtype=np.float32),
            "track_id": long.track_id[rows],
            "slice_idx": long.slice_idx[rows].astype(np.int64),
            "genre": long.genre[rows],
            "artist": long.artist[rows].astype(str),
            "feature_names": long.feature_names.copy(),
        }
    return out

