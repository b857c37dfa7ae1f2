"""Feature sets on disk: what the features stage writes and the train and evaluate stages read.

The features stage writes one set for every track of the dataset, whatever the split, as a
few files (never one file per clip)::

    X.npy       float32 [shape=(n_slices, n_features)]   summary features
    S.npy       float32 [shape=(n_slices, ...)]           frames, for extractors that make them
    meta.csv    track_id, slice_idx, start_s, genre, label (one row per slice, track order)
    info.json   labels, feature names, settings
    skipped.csv track_id, reason

:class:`FeatureWriter` fills ``X.npy`` and ``S.npy`` track by track into files preallocated
at their final size, so the stage's memory does not grow with the dataset.
:func:`load_split_sets` and :func:`load_feature_split` join a set with a split table
(``split.csv``, or one fold's under ``split.fold=all``) for the train and evaluate stages, so that
changing the split never re-extracts a feature.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["FeatureSet", "FeatureWriter", "RowSubset", "load_feature_split", "load_split_sets", "join_split",
           "write_feature_set", "META_COLUMNS"]

META_COLUMNS = ("track_id", "slice_idx", "start_s", "genre", "label")


@dataclass
class FeatureSet:
    """Features of one split, as the train and evaluate stages read them.

    Attributes
    ----------
    X : np.ndarray [shape=(n_slices, n_features)]
    S : array-like [shape=(n_slices, n_bins, n_frames) or (n_slices, n_channels, n_bins, n_frames)] or None
        Rows of the memory-mapped ``S.npy`` (a :class:`RowSubset`) when read from disk.
    meta : pd.DataFrame
        ``track_id, slice_idx, start_s, genre, label`` per slice; ``group``, ``group_unit``,
        ``fold`` and ``role`` once joined with the split table (:func:`join_split`).
    info : dict
        ``labels`` (class names), ``feature_names``, the settings used and ``split_method``.
    """

    X: np.ndarray
    S: Any
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


class RowSubset:
    """Some rows of an array (a memory map), read only when indexed.

    Behaves like the array ``base[rows]`` for what the models do with frames: ``len``,
    ``shape``, ``dtype``, ``ndim``, indexing by an int, a slice or an int array, and
    ``np.asarray``; nothing is read before it is indexed.

    Parameters
    ----------
    base : np.ndarray [shape=(n, ...)]
    rows : np.ndarray [shape=(m,)], int
        Increasing row numbers of ``base``.
    """

    def __init__(self, base: np.ndarray, rows: np.ndarray) -> None:
        self.base = base
        self.rows = np.asarray(rows, dtype=np.int64)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.base.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.base.dtype

    @property
    def ndim(self) -> int:
        return self.base.ndim

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx: Any) -> np.ndarray:
        return np.asarray(self.base[self.rows[idx]])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = np.asarray(self.base[self.rows])
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"RowSubset(shape={self.shape}, dtype={self.dtype})"


def load_feature_split(features_dir: str | os.PathLike, split: str, *,
                       split_table: pd.DataFrame | str | os.PathLike, fractions: dict | None = None, seed: int = 0,
                       mmap: bool = True) -> FeatureSet:
    """The slices of one split: the features stage's set joined with a split table.

    Parameters
    ----------
    features_dir : path
        The features stage's output folder.
    split : {'train', 'valid', 'test'}
    split_table : pd.DataFrame or path
        Output of :func:`genrelab.splits.make_split` (``split.csv``): each track's split (or
        ``pool`` for the leaky method), group and fold; or one fold's table
        (:func:`genrelab.splits.split_folds`).
    fractions : dict, optional
        Slice fractions of the leaky pool (``split.fractions``).
    seed : int
        Seed of the leaky slice assignment (the ``seed`` parameter); the same seed and table
        give the same assignment in the train and evaluate stages.
    mmap : bool
        Leave ``S`` on disk (a :class:`RowSubset` of the memory-mapped file) instead of reading
        the split's rows into memory.

    Returns
    -------
    FeatureSet
        Slices of tracks in ``split``, in the set's order, each with its ``group`` (tracks of the
        split table without features, skipped ones, are absent).
    """
    return load_split_sets(features_dir, split_table, fractions=fractions, seed=seed, mmap=mmap,
                           splits=(split,))[split]


def load_split_sets(features_dir: str | os.PathLike, split_table: pd.DataFrame | str | os.PathLike, *,
                    fractions: dict | None = None, seed: int = 0, mmap: bool = True,
                    splits: tuple[str, ...] = ("train", "valid", "test")) -> dict[str, FeatureSet]:
    """The train, valid and test sets of one split table, each slice's group joined.

    Parameters
    ----------
    features_dir : path
        The features stage's output folder (one set for every track).
    split_table : pd.DataFrame or path
        Whose ``split`` column gives each track's role (see :func:`load_feature_split`).
    fractions, seed, mmap
        As in :func:`load_feature_split`.
    splits : tuple of str
        Which sets to return.

    Returns
    -------
    sets : dict
        ``{'train': FeatureSet, 'valid': ..., 'test': ...}``.
    """
    from genrelab.io import read_json
    from genrelab.splits import assign_slices, read_split_table

    root = Path(features_dir)
    if not (root / "meta.csv").is_file():
        raise FileNotFoundError(f"{root}: no features (meta.csv); run the 'features' stage (dvc repro features)")
    table = read_split_table(split_table)
    info = read_json(root / "info.json")
    meta = pd.read_csv(root / "meta.csv", dtype={"track_id": str, "genre": str}, keep_default_na=False)
    role = assign_slices(meta["track_id"].to_numpy(), table, fractions=fractions, seed=seed)
    X = np.load(root / "X.npy", mmap_mode="r")
    frames = np.load(root / "S.npy", mmap_mode="r") if (root / "S.npy").is_file() else None
    methods = table["method"].astype(str).unique() if "method" in table and len(table) else []
    info = {**info, "split_method": str(methods[0]) if len(methods) else None}
    joined = join_split(FeatureSet(X=X, S=None, meta=meta, info=info), table)
    sets = {}
    for split in splits:
        rows = np.flatnonzero(role == split)
        S = None
        if frames is not None:
            S = RowSubset(frames, rows) if mmap else np.asarray(frames[rows])
        m = joined.meta.iloc[rows].reset_index(drop=True)
        m["role"] = split  # a leaky pool's slices take the split they were drawn into
        sets[split] = FeatureSet(X=np.asarray(X[rows], dtype=np.float32), S=S, meta=m, info={**info, "split": split})
    return sets


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


class FeatureWriter:
    """Write a feature set track by track into ``.npy`` files preallocated at their final size.

    ``numpy.lib.format.open_memmap`` writes each file's header and sizes it; rows are then
    written in place with positioned writes, so only one track's arrays and the small slice
    index are ever in memory (pages written through a memory map would count in the process's
    resident memory until the kernel writes them back; written through the file they sit in
    the page cache only).

    Parameters
    ----------
    folder : Path
        Existing (temporary) output folder.
    n_rows : int
        Total number of slices.
    n_features : int
        Columns of ``X``.
    frames_shape : tuple of int, optional
        Shape of one slice's frames (``S.npy`` is written when given).
    """

    def __init__(self, folder: Path, n_rows: int, n_features: int, frames_shape: tuple[int, ...] | None) -> None:
        self.folder = Path(folder)
        self.n_rows = int(n_rows)
        self.row = 0
        self._files = {"X": self._open("X.npy", (self.n_rows, int(n_features)))}
        if frames_shape is not None:
            self._files["S"] = self._open("S.npy", (self.n_rows, *map(int, frames_shape)))
        self._meta: dict[str, list] = {c: [] for c in META_COLUMNS}

    def _open(self, name: str, shape: tuple[int, ...]) -> tuple[Any, int, tuple[int, ...]]:
        mm = np.lib.format.open_memmap(self.folder / name, mode="w+", dtype=np.float32, shape=shape)
        offset = int(mm.offset)
        del mm
        return open(self.folder / name, "r+b"), offset, shape  # noqa: SIM115 - closed in close()

    def _write(self, which: str, block: np.ndarray) -> None:
        fh, offset, shape = self._files[which]
        block = np.ascontiguousarray(block, dtype=np.float32)
        if block.shape[1:] != shape[1:]:
            raise ValueError(f"{which}: rows of shape {block.shape[1:]} do not fit {shape[1:]}")
        row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * 4
        fh.seek(offset + self.row * row_bytes)
        fh.write(memoryview(block).cast("B"))

    def append(self, track_id: str, genre: str, label: int, vector: np.ndarray, frames: np.ndarray | None,
               starts_s: np.ndarray, slice_idx: np.ndarray | None = None) -> None:
        """Add one track's slices (``vector`` [shape=(n, n_features)], ``frames`` [shape=(n, ...)]).

        ``slice_idx`` defaults to ``0 .. n-1``.
        """
        n = len(vector)
        if self.row + n > self.n_rows:
            raise ValueError(f"track {track_id}: {n} more slices overflow the {self.n_rows} preallocated")
        if ("S" in self._files) != (frames is not None) or (frames is not None and len(frames) != n):
            raise ValueError(f"track {track_id}: frames do not match the set (expected "
                             f"{'frames' if 'S' in self._files else 'none'} for {n} slices)")
        self._write("X", vector)
        if frames is not None:
            self._write("S", frames)
        self.row += n
        self._meta["track_id"] += [track_id] * n
        self._meta["slice_idx"] += list(range(n)) if slice_idx is None else [int(i) for i in slice_idx]
        self._meta["start_s"] += [float(s) for s in starts_s]
        self._meta["genre"] += [genre] * n
        self._meta["label"] += [int(label)] * n

    def close(self, *, info: dict, skipped: list[dict]) -> None:
        """Check every row was written; write ``meta.csv``, ``skipped.csv`` and ``info.json``."""
        from genrelab.io import write_json, write_text

        for fh, _, _ in self._files.values():
            fh.close()
        if self.row != self.n_rows:
            raise ValueError(f"{self.row} slices written, {self.n_rows} preallocated")
        write_text(self.folder / "meta.csv", pd.DataFrame(self._meta, columns=list(META_COLUMNS)).to_csv(index=False))
        write_text(self.folder / "skipped.csv",
                   pd.DataFrame(skipped, columns=["track_id", "reason"]).to_csv(index=False))
        write_json(self.folder / "info.json", info)

    def abort(self) -> None:
        for fh, _, _ in self._files.values():
            fh.close()


def write_feature_set(out_dir: str | os.PathLike, X: np.ndarray, S: np.ndarray | None, meta: pd.DataFrame, *,
                      info: dict, skipped: list[dict] | None = None) -> None:
    """Write a whole feature set held in memory (imports, tests) in the features stage's layout.

    Parameters
    ----------
    out_dir : path
        Output folder, replaced atomically.
    X : np.ndarray [shape=(n_slices, n_features)]
    S : np.ndarray [shape=(n_slices, ...)] or None
    meta : pd.DataFrame
        :data:`META_COLUMNS` per slice (other columns, such as a split, are not written: the
        split comes from the split table when the set is read).
    info : dict
        ``labels``, ``feature_names`` and the settings (``info.json``).
    skipped : list of dict, optional
        ``track_id``, ``reason`` of tracks left out.
    """
    from genrelab.io import atomic_dir

    with atomic_dir(out_dir) as tmp:
        writer = FeatureWriter(tmp, len(meta), X.shape[1], None if S is None else S.shape[1:])
        try:
            ids = meta["track_id"].astype(str).to_numpy()
            for tid in pd.unique(ids):  # tracks in order of first appearance
                rows = np.flatnonzero(ids == tid)
                m = meta.iloc[rows]
                writer.append(str(m["track_id"].iloc[0]), str(m["genre"].iloc[0]), int(m["label"].iloc[0]), X[rows],
                              None if S is None else S[rows], m["start_s"].to_numpy(),
                              slice_idx=m["slice_idx"].to_numpy())
        except BaseException:
            writer.abort()
            raise
        writer.close(info=info, skipped=list(skipped or []))
