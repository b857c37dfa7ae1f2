"""Precomputed embeddings as a dataset: ``.npz`` files with ``X``, ``Y`` and ``IDS``.

Studies such as *sklearn-audio-transfer-learning* (Pons & Serra) keep their audio
representations as ``np.savez(file, X=X, Y=Y, IDS=IDS)``:

* ``X`` : np.ndarray [shape=(n_frames, n_dims)] -- one embedding (or taggram row) per frame;
* ``Y`` : np.ndarray [shape=(n_frames,)] -- the label of each frame's track, an integer index
  into a list of genre names or the name itself;
* ``IDS`` : np.ndarray [shape=(n_frames,)] -- the track of each frame, e.g. the audio path
  ``blues/blues.00012.wav``.

``dataset=embeddings`` imports such files in the prepare stage into the same ``table.npz`` and
per-track ``index.csv`` as the published feature tables (:mod:`genrelab.datasets.table`);
``features=table`` then hands the rows to split, train and evaluate, which vote over each
track's frames as they do over slices. Give ``train`` and ``test`` files (and ``valid``, if
there is one), or one ``source`` file whose tracks the split stage divides. Integer labels
need their names (``labels``, or ``labels_file`` with one name per line); when every id is a
GTZAN file name (``genre.000NN.wav`` or ``.au``, with or without a folder), the names may
also come from the ids, and ``split: auto`` applies GTZAN's fault-filtered split.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genrelab.config import ConfigError, from_mapping, require_choice

__all__ = ["EmbeddingsSettings", "EmbeddingFile", "read_embedding_file", "gtzan_track_id", "prepare_embeddings"]

log = logging.getLogger(__name__)

SPLIT_CHOICES = ("auto", "files", "fault_filtered", "stratified", "none")
"""``split`` values: from which file a row came, a GTZAN list by id, or none (the split stage makes one)."""

_GTZAN_ID = re.compile(r"(?:^|[/\\])(?P<genre>[a-z]+)\.(?P<number>\d{5})\.(?:wav|au)$")


def gtzan_track_id(name: str) -> str | None:
    """``'blues/blues.00012.wav'`` -> ``'blues.00012'``; ``None`` when ``name`` is not a GTZAN file name."""
    from genrelab import GENRES

    m = _GTZAN_ID.search(str(name))
    return f"{m['genre']}.{m['number']}" if m and m["genre"] in GENRES else None


@dataclass(frozen=True)
class EmbeddingsSettings:
    """Settings of ``dataset=embeddings``.

    Attributes
    ----------
    train, valid, test : str
        ``.npz`` files of each split (``valid`` may stay empty).
    source : str
        Or one ``.npz`` with every track (then ``split`` is ``auto``, a GTZAN list, or ``none``).
    split : {'auto', 'files', 'fault_filtered', 'stratified', 'none'}
        ``files``: the file a track came from; ``fault_filtered`` / ``stratified``: GTZAN's lists,
        matched by id (tracks in no list are left out); ``none``: the split stage makes one
        (``split=grouped`` or ``kfold``). ``auto``: ``fault_filtered`` when every id is a
        GTZAN file name, else ``files`` (``none`` for a single ``source``).
    labels : list of str, optional
        Genre names of integer labels, in label order.
    labels_file : str
        Or a text file with one name per line.
    """

    train: str = ""
    valid: str = ""
    test: str = ""
    source: str = ""
    split: str = "auto"
    labels: tuple | None = None
    labels_file: str = ""

    def __post_init__(self) -> None:
        require_choice("dataset.split", self.split, SPLIT_CHOICES)
        if bool(self.source) == bool(self.train or self.test):
            raise ConfigError("dataset: give `train` and `test` .npz files (and `valid` if there is one), or one "
                              "`source` .npz -- not both, not neither")
        if not self.source and not (self.train and self.test):
            raise ConfigError("dataset.test: give both `train` and `test` files (or one `source`)")
        if self.source and self.split == "files":
            raise ConfigError("dataset.split: 'files' needs separate train/test files; with one `source` use auto, "
                              "fault_filtered, stratified or none")
        for key in ("train", "valid", "test", "source", "labels_file"):
            value = getattr(self, key)
            if value and not Path(value).expanduser().is_file():
                raise ConfigError(f"dataset.{key}: {value} is not a file")
        if self.labels is not None and self.labels_file:
            raise ConfigError("dataset: give the label names in `labels` or in `labels_file`, not both")

    def files(self) -> dict[str, Path]:
        """The given files by split name (``all`` for a single ``source``)."""
        if self.source:
            return {"all": Path(self.source).expanduser()}
        return {k: Path(getattr(self, k)).expanduser() for k in ("train", "valid", "test") if getattr(self, k)}

    def label_names(self) -> list[str] | None:
        if self.labels is not None:
            return [str(x) for x in self.labels]
        if self.labels_file:
            lines = Path(self.labels_file).expanduser().read_text(encoding="utf-8").splitlines()
            return [line.strip() for line in lines if line.strip()]
        return None


@dataclass(frozen=True)
class EmbeddingFile:
    """One checked ``.npz``: ``X`` (n, d) float32, ``Y`` (n,), ``IDS`` (n,) str."""

    path: Path
    X: np.ndarray
    Y: np.ndarray
    IDS: np.ndarray


def read_embedding_file(path: str | Path) -> EmbeddingFile:
    """Read and check one ``.npz`` in the published layout.

    Parameters
    ----------
    path : path
        ``np.savez(path, X=..., Y=..., IDS=...)``.

    Returns
    -------
    EmbeddingFile

    Raises
    ------
    ValueError
        Naming the file and the key: a missing key, an array that needs pickle to load, ``X``
        not 2-D numeric, ``Y`` or ``IDS`` not one value per row of ``X``, or rows of ``X``
        with NaN or infinite values.
    """
    path = Path(path)
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npz file ({exc or type(exc).__name__})") from exc
    if not hasattr(npz, "files"):
        raise ValueError(f"{path}: a single array, not an .npz archive with keys X, Y and IDS")
    with npz:
        missing = [k for k in ("X", "Y", "IDS") if k not in npz.files]
        if missing:
            raise ValueError(f"{path}: no key {', '.join(missing)} (it has {', '.join(npz.files) or 'none'}); "
                             "expected X (frames x dims), Y (a label per frame) and IDS (a track id per frame)")
        arrays = {}
        for key in ("X", "Y", "IDS"):
            try:
                arrays[key] = npz[key]
            except ValueError as exc:  # object arrays need pickle
                raise ValueError(f"{path}: key {key} is an object array, which would need pickle to load; "
                                 f"save it as numbers or strings (np.asarray(..., dtype=str))") from exc
    X, Y, ids = arrays["X"], arrays["Y"], arrays["IDS"]
    if X.ndim != 2 or not np.issubdtype(X.dtype, np.number):
        raise ValueError(f"{path}: key X must be a 2-D numeric array (frames x dims), got {X.dtype} {X.shape}")
    for key, arr in (("Y", Y), ("IDS", ids)):
        if arr.ndim != 1 or len(arr) != len(X):
            raise ValueError(f"{path}: key {key} must hold one value per row of X ({len(X)} rows), got shape "
                             f"{arr.shape}")
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{path}: key X has {int(bad.sum())} row(s) with NaN or infinite values (first: row "
                         f"{first}, IDS {ids[first]!s}); remove or recompute them")
    if len(X) == 0:
        raise ValueError(f"{path}: key X has no rows")
    return EmbeddingFile(path=path, X=X.astype(np.float32), Y=Y, IDS=ids.astype(str))


def _names_of(f: EmbeddingFile, names: list[str] | None, gtzan: np.ndarray | None) -> np.ndarray:
    """The genre name of every row of one file."""
    if np.issubdtype(f.Y.dtype, np.integer) or (np.issubdtype(f.Y.dtype, np.floating)
                                                and np.all(f.Y == np.round(f.Y))):
        y = f.Y.astype(np.int64)
        if names is None:
            if gtzan is None:
                raise ConfigError(f"{f.path}: key Y holds label numbers; give their names in dataset.labels or "
                                  "dataset.labels_file (one per line, in label order)")
            return np.char.partition(gtzan.astype(str), ".")[:, 0]
        if y.min() < 0 or y.max() >= len(names):
            raise ValueError(f"{f.path}: key Y has label {int(y.max() if y.max() >= len(names) else y.min())}, "
                             f"outside the {len(names)} names given (0..{len(names) - 1})")
        return np.asarray(names, dtype=object)[y].astype(str)
    if f.Y.dtype.kind not in "US":
        raise ValueError(f"{f.path}: key Y must hold label numbers or names, got {f.Y.dtype}")
    return f.Y.astype(str)


def prepare_embeddings(settings: Mapping[str, Any], out_dir: Path, *, progress: bool = True) -> pd.DataFrame:
    """Import ``.npz`` embedding files into ``out_dir/table.npz`` and write the per-track index.

    Returns
    -------
    index : pd.DataFrame
        One row per track; ``official_split`` from the files or a GTZAN list ('' for ``none``).

    Raises
    ------
    ValueError
        For a malformed file (see :func:`read_embedding_file`), a track in two files, a track
        whose frames disagree on its label, or GTZAN ids whose genre contradicts the label.
    """
    from genrelab.datasets.gtzan import load_gtzan_split
    from genrelab.datasets.table import write_table_dataset

    s = from_mapping(EmbeddingsSettings, settings, section="dataset")
    names = s.label_names()
    files = {split: read_embedding_file(path) for split, path in s.files().items()}
    dims = {f.X.shape[1] for f in files.values()}
    if len(dims) > 1:
        raise ValueError("key X: the files differ in width: "
                         + ", ".join(f"{f.path} {f.X.shape[1]}" for f in files.values()))
    rows = []
    for split, f in files.items():
        ids = np.array([gtzan_track_id(i) or "" for i in f.IDS])
        gtzan = ids if (ids != "").all() else None
        genre = _names_of(f, names, gtzan)
        if gtzan is not None:
            wrong = genre != np.char.partition(gtzan.astype(str), ".")[:, 0]
            if wrong.any():
                i = int(np.flatnonzero(wrong)[0])
                raise ValueError(f"{f.path}: key Y says {str(genre[i])!r} for {f.IDS[i]}, whose GTZAN name says "
                                 f"otherwise; check the order of the label names")
        rows.append(pd.DataFrame({"row": np.arange(len(f.X)), "file": split, "ids": f.IDS,
                                  "track_id": gtzan if gtzan is not None else f.IDS, "genre": genre,
                                  "gtzan": gtzan is not None}))
    table = pd.concat(rows, ignore_index=True)
    where = table.groupby("track_id")["file"].nunique()
    if (where > 1).any():
        tid = where[where > 1].index[0]
        files = ", ".join(sorted(set(table.loc[table["track_id"] == tid, "file"])))
        raise ValueError(
            f"key IDS: track {tid!r} is in more than one file ({files}); "
            "a track must belong to one split"
        )
    labels_per_track = table.groupby("track_id")["genre"].nunique()
    if (labels_per_track > 1).any():
        tid = labels_per_track[labels_per_track > 1].index[0]
        raise ValueError(f"key Y: the frames of track {tid!r} have different labels")
    split = s.split
    if split == "auto":
        split = "fault_filtered" if table["gtzan"].all() else ("none" if s.source else "files")
    if split in ("fault_filtered", "stratified"):
        if not table["gtzan"].all():
            odd = table.loc[~table["gtzan"], "ids"].iloc[0]
            raise ConfigError(f"dataset.split: {split!r} needs GTZAN file names in IDS (like blues/blues.00012.wav), "
                              f"but found {odd!r}; use split: files or none")
        mapping = load_gtzan_split(split)
        table["split"] = table["track_id"].map(mapping).fillna("")
        dropped = table.loc[table["split"] == "", "track_id"].nunique()
        if dropped:
            log.info("%d tracks are in no %s list and are left out", dropped, split)
        table = table[table["split"] != ""]
    elif split == "files":
        table["split"] = table["file"]
    else:
        table["split"] = ""
    table = table.reset_index(drop=True)
    table["slice_idx"] = table.groupby("track_id").cumcount().astype(np.int64)
    if table.empty:
        raise ValueError(f"no row of {', '.join(str(f.path) for f in files.values())} is in the {split} split")
    # the table keeps the files' order, so stacking each file's kept rows lines X up with it
    X = np.concatenate([files[k].X[table.loc[table["file"] == k, "row"].to_numpy()] for k in files])
    dim = X.shape[1]
    source = ", ".join(str(f.path.resolve()) for f in files.values())
    return write_table_dataset(out_dir, X=X, track_id=table["track_id"].to_numpy(dtype=str),
                               slice_idx=table["slice_idx"].to_numpy(), genre=table["genre"].to_numpy(dtype=str),
                               split=table["split"].to_numpy(dtype=str),
                               feature_names=[f"emb{i}" for i in range(dim)], source=source)
