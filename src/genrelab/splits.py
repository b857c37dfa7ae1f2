"""Train/valid/test splits made per track, grouped by artist, stratified by genre.

No slice of a track ever lands in two splits, except under the deliberately leaky method,
which exists only to measure how much a slice-level random split inflates a score; every
metric computed under it is labelled ``leaky``.

Grouping is decided per track: a track with a known artist belongs to its artist's group
(artist names compared case-, punctuation- and ``&``/``and``-insensitively, so "Earth, Wind &
Fire" and "Earth Wind and Fire" are one group); a track without one is a group of its own.
The split table says, for every track, its ``group`` and the ``group_unit`` (``artist`` or
``track``) actually used, and :func:`make_split` fails if a group of a split it made lands in
two splits. :func:`split_summary` counts them (``metrics/details/split.json``), and reports label the
split from these counts, e.g. "grouped by artist (919 tracks), by track (81)".

Methods (``split.method``):

``auto``
    ``official`` when the dataset defines one (GTZAN fault-filtered, FMA artist-filtered),
    else ``grouped``.
``official``
    The dataset's own split (the index's ``official_split`` column); tracks in no official
    split are left out. The groups are not checked (an official split is what it is) but
    counted: ``n_groups_in_several_splits`` (0 for GTZAN fault-filtered and FMA; 101
    artists for GTZAN's stratified split).
``grouped``
    Groups are assigned whole to train, valid and test so that each genre's tracks follow
    ``fractions``.
``kfold``
    Stratified group k-fold over every track of the index: fold ``fold`` is the test set,
    the next fold the valid set, the others train. ``fold: all`` trains and evaluates every
    fold in one experiment (the train and evaluate stages loop over the ``fold`` column).
``leaky``
    Tracks go to a common pool; each slice is then assigned at random. For leakage audits only.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from genrelab.config import ConfigError

__all__ = ["SplitSettings", "SPLITS", "GROUP_UNITS", "SPLIT_COLUMNS", "ALL_FOLDS", "SplitLeakError", "artist_key",
           "track_groups", "make_split", "check_groups", "fold_roles", "split_folds", "split_summary",
           "assign_slices", "LEAKY_POOL", "read_split_table"]

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
LEAKY_POOL = "pool"
METHODS = ("auto", "official", "grouped", "kfold", "leaky")
GROUP_UNITS = ("artist", "track")
ALL_FOLDS = "all"
SPLIT_COLUMNS = ("track_id", "genre", "artist", "group", "group_unit", "split", "method", "fold")
"""Columns of the split table (``data/split.csv``); ``fold`` is each track's test fold under
``kfold`` and -1 otherwise."""


class SplitLeakError(RuntimeError):
    """A split that was meant to be grouped puts one group in two splits."""


@dataclass(frozen=True)
class SplitSettings:
    """Settings of the ``split`` section.

    Attributes
    ----------
    method : {'auto', 'official', 'grouped', 'kfold', 'leaky'}
    fractions : dict
        ``{'train': f, 'valid': f, 'test': f}``, positive, summing to 1 (``grouped``, ``leaky``).
    n_folds : int >= 3
        Number of folds (``kfold``).
    fold : int in [0, n_folds) or 'all'
        Test fold (``kfold``); the valid fold is ``(fold + 1) % n_folds``. ``'all'`` runs
        every fold in one experiment and pools their test predictions (``kfold`` only).
    group_by : {'artist', 'track'}
        What must not straddle splits. ``artist`` groups the tracks of a known artist and
        leaves every track without one in a group of its own.
    """

    method: str = "auto"
    fractions: dict = field(default_factory=lambda: {"train": 0.6, "valid": 0.2, "test": 0.2})
    n_folds: int = 5
    fold: int | str = 0
    group_by: str = "artist"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"split.method: unknown choice {self.method!r}; valid choices: {', '.join(METHODS)}")
        if self.group_by not in GROUP_UNITS:
            raise ConfigError(f"split.group_by: unknown choice {self.group_by!r}; valid choices: artist, track")
        if set(self.fractions) != set(SPLITS):
            raise ConfigError(f"split.fractions: needs exactly the keys {list(SPLITS)}, got {sorted(self.fractions)}")
        values = [float(self.fractions[k]) for k in SPLITS]
        if any(v <= 0 for v in values) or abs(sum(values) - 1.0) > 1e-6:
            raise ConfigError(f"split.fractions: must be positive and sum to 1, got {dict(self.fractions)}")
        if self.n_folds < 3:
            raise ConfigError(f"split.n_folds: must be at least 3 (test, valid and train folds), got {self.n_folds}")
        if isinstance(self.fold, str):
            if self.fold != ALL_FOLDS:
                raise ConfigError(f"split.fold: a fold number in [0, {self.n_folds}) or 'all', got {self.fold!r}")
            if self.method != "kfold":
                raise ConfigError(f"split.fold: 'all' runs every fold of a k-fold split; it needs split=kfold "
                                  f"(split.method is {self.method!r})")
        elif not 0 <= self.fold < self.n_folds:
            raise ConfigError(f"split.fold: must be in [0, {self.n_folds}) or 'all', got {self.fold}")

    @property
    def all_folds(self) -> bool:
        """Whether every fold is trained and evaluated in one experiment (``fold: all``)."""
        return self.fold == ALL_FOLDS


def artist_key(name: str) -> str:
    """The key under which artist names are compared: ``"Earth, Wind & Fire"`` -> ``"earth wind and fire"``.

    Case, punctuation, ``&`` versus ``and`` and runs of spaces do not make two artists.
    ``""`` for an unknown artist.
    """
    key = str(name).casefold().replace("&", " and ")
    return " ".join(re.sub(r"[^\w\s]", " ", key).split())


def track_groups(index: pd.DataFrame, group_by: str = "artist") -> pd.DataFrame:
    """The group of every track: its artist's where known, else the track alone.

    Parameters
    ----------
    index : pd.DataFrame
        ``track_id`` and (optionally) ``artist`` per track.
    group_by : {'artist', 'track'}

    Returns
    -------
    groups : pd.DataFrame [shape=(n_tracks, 2)]
        ``group`` (``"artist:<artist_key>"`` or ``"track:<track_id>"``) and ``group_unit``
        (``"artist"`` or ``"track"``), on ``index``'s index.
    """
    if group_by not in GROUP_UNITS:
        raise ConfigError(f"split.group_by: unknown choice {group_by!r}; valid choices: artist, track")
    tracks = index["track_id"].astype(str)
    keys = (index["artist"].astype(str).map(artist_key) if group_by == "artist" and "artist" in index
            else pd.Series("", index=index.index))
    by_artist = keys != ""
    return pd.DataFrame({"group": np.where(by_artist, "artist:" + keys, "track:" + tracks),
                         "group_unit": np.where(by_artist, "artist", "track")}, index=index.index)


def _grouped_fractions(index: pd.DataFrame, groups: pd.Series, fractions: dict, rng: np.random.Generator) -> pd.Series:
    """Greedy stratified group assignment: each group goes where its genres are most short."""
    genres = sorted(index["genre"].unique())
    target = {s: index["genre"].value_counts().reindex(genres).to_numpy() * float(fractions[s]) for s in SPLITS}
    have = {s: np.zeros(len(genres)) for s in SPLITS}
    counts = pd.crosstab(groups, index["genre"]).reindex(columns=genres, fill_value=0)
    order = counts.index.to_numpy().copy()
    rng.shuffle(order)
    # place large groups first (less fragmentation), random order among equals
    sizes = counts.loc[order].sum(axis=1).to_numpy()
    order = order[np.argsort(-sizes, kind="stable")]
    assign: dict[str, str] = {}
    for g in order:
        c = counts.loc[g].to_numpy()
        # deficit of each split over the genres this group holds, relative to its target
        scores = {}
        for s in SPLITS:
            deficit = (target[s] - have[s]) / np.maximum(target[s], 1e-9)
            scores[s] = float((deficit * c).sum() / max(c.sum(), 1))
        best = max(SPLITS, key=lambda s: (scores[s], float(fractions[s])))
        assign[g] = best
        have[best] += c
    return groups.map(assign)


def _kfold(index: pd.DataFrame, groups: pd.Series, n_folds: int, seed: int) -> np.ndarray:
    """Test fold of every track (stratified by genre, whole groups per fold)."""
    from sklearn.model_selection import StratifiedGroupKFold

    n_groups = groups.nunique()
    if n_groups < n_folds:
        raise ConfigError(f"split.n_folds: {n_folds} folds need at least {n_folds} groups, the dataset has {n_groups}")
    skf = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    fold_of = np.empty(len(index), dtype=int)
    for k, (_, test_idx) in enumerate(skf.split(np.zeros(len(index)), index["genre"], groups)):
        fold_of[test_idx] = k
    return fold_of


def read_split_table(split_table: pd.DataFrame | str | os.PathLike) -> pd.DataFrame:
    """The split stage's table (``split.csv``), or the frame itself when given one.

    Identifiers (``track_id``, ``artist``, ``group``) and ``split`` are read as text, with no
    value turned into NaN.

    Raises
    ------
    FileNotFoundError
        Naming the stage that writes it.
    """
    if isinstance(split_table, pd.DataFrame):
        return split_table
    path = Path(split_table)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: split table not found; run the 'split' stage (dvc repro split)")
    return pd.read_csv(path, dtype={"track_id": str, "artist": str, "group": str, "split": str},
                       keep_default_na=False)


def fold_roles(fold_of: np.ndarray, fold: int, n_folds: int) -> np.ndarray:
    """Role of every track when ``fold`` is the test fold.

    Parameters
    ----------
    fold_of : np.ndarray [shape=(n_tracks,)], int
        Test fold of each track (the split table's ``fold`` column).
    fold : int in [0, n_folds)
    n_folds : int

    Returns
    -------
    roles : np.ndarray [shape=(n_tracks,)], str
        ``test`` for fold ``fold``, ``valid`` for fold ``(fold + 1) % n_folds``, ``train`` otherwise.
    """
    fold_of = np.asarray(fold_of, dtype=int)
    return np.where(fold_of == fold, "test", np.where(fold_of == (fold + 1) % n_folds, "valid", "train"))


def split_folds(table: pd.DataFrame, settings: SplitSettings) -> list[tuple[int | None, pd.DataFrame]]:
    """The (fold, split table) pairs an experiment trains and evaluates.

    ``[(None, table)]`` for one split; under ``kfold`` with ``fold: all``, one table per fold
    with its ``split`` column set to that fold's roles.
    """
    if not settings.all_folds:
        return [(None, table)]
    if "fold" not in table or (table["fold"].astype(int) < 0).any():
        raise ConfigError("split.fold=all: the split table has no folds; re-run the split stage with split=kfold")
    fold_of = table["fold"].astype(int).to_numpy()
    return [(k, table.assign(split=fold_roles(fold_of, k, settings.n_folds))) for k in range(settings.n_folds)]


def check_groups(table: pd.DataFrame) -> int:
    """Count the groups that lie in more than one split (and, under ``kfold``, more than one fold).

    Parameters
    ----------
    table : pd.DataFrame
        A split table (:data:`SPLIT_COLUMNS`).

    Returns
    -------
    n : int
        Groups in two or more splits (or folds). Leaky pool tracks are not counted.

    Raises
    ------
    SplitLeakError
        If ``n > 0`` for a split this module made to be grouped (``grouped``, ``kfold``);
        the message names some of the groups.
    """
    rows = table[table["split"] != LEAKY_POOL]
    column = "fold" if (rows["method"] == "kfold").all() and len(rows) else "split"
    spread = rows.groupby("group")[column].nunique()
    bad = spread[spread > 1]
    method = str(rows["method"].iloc[0]) if len(rows) else ""
    if len(bad) and method in ("grouped", "kfold"):
        raise SplitLeakError(f"split {method!r}: {len(bad)} group(s) lie in more than one "
                             f"{'fold' if column == 'fold' else 'split'}, e.g. {list(bad.index[:3])}; "
                             "this is a bug in genrelab.splits, please report it")
    if len(bad):
        log.warning("the %s split puts %d group(s) in more than one split (e.g. %s)", method, len(bad),
                    list(bad.index[:3]))
    return len(bad)


def make_split(index: pd.DataFrame, settings: SplitSettings, *, seed: int) -> pd.DataFrame:
    """Assign every track of ``index`` to a split.

    Parameters
    ----------
    index : pd.DataFrame
        The dataset index (``track_id``, ``genre``, ``artist``, ``official_split``).
    settings : SplitSettings
    seed : int
        Seed of the assignment (explicit; same seed, same split).

    Returns
    -------
    table : pd.DataFrame
        Columns :data:`SPLIT_COLUMNS`: ``group`` and ``group_unit`` from
        :func:`track_groups`; ``split`` one of train, valid, test, or ``pool`` under the
        leaky method (slices are assigned later by :func:`assign_slices`); ``fold`` the test
        fold of each track under ``kfold`` (-1 otherwise), and ``split`` the roles of fold
        ``settings.fold`` (of fold 0 for ``fold: all``). Tracks outside the official split
        are dropped under ``official``.

    Raises
    ------
    ConfigError
        If the dataset is empty or too small for the method.
    SplitLeakError
        If a ``grouped`` or ``kfold`` split put a group in two splits (a bug; never expected).
    """
    if len(index) == 0:
        raise ConfigError("split: the dataset index is empty")
    method = settings.method
    has_official = "official_split" in index and (index["official_split"].astype(str) != "").any()
    if method == "auto":
        method = "official" if has_official else "grouped"
    groups = track_groups(index, settings.group_by)
    rng = np.random.default_rng(seed)
    fold_of = np.full(len(index), -1, dtype=int)
    if method == "official":
        if not has_official:
            raise ConfigError("split.method: 'official' but this dataset defines no official split; "
                              "use one of: auto, grouped, kfold")
        split = index["official_split"].astype(str)
    elif method == "grouped":
        split = _grouped_fractions(index, groups["group"], settings.fractions, rng)
    elif method == "kfold":
        fold_of = _kfold(index, groups["group"], settings.n_folds, seed)
        fold = 0 if settings.all_folds else int(settings.fold)
        split = pd.Series(fold_roles(fold_of, fold, settings.n_folds), index=index.index)
    else:  # leaky
        split = pd.Series(LEAKY_POOL, index=index.index)
    table = pd.DataFrame({
        "track_id": index["track_id"].astype(str),
        "genre": index["genre"].astype(str),
        "artist": index["artist"].astype(str) if "artist" in index else "",
        "group": groups["group"],
        "group_unit": groups["group_unit"],
        "split": split.astype(str),
        "method": method,
        "fold": fold_of,
    })
    table = table[table["split"].isin([*SPLITS, LEAKY_POOL])].reset_index(drop=True)
    if method != "leaky":
        # an official split may define no valid set (published embedding files: train and test only)
        required = ("train", "test") if method == "official" else SPLITS
        missing = [s for s in required if not (table["split"] == s).any()]
        if missing:
            raise ConfigError(f"split: no track landed in {missing}; " + _too_small(index, groups, method))
    check_groups(table)
    return table


def split_summary(table: pd.DataFrame, settings: SplitSettings | None = None) -> dict[str, int]:
    """The numbers a report needs to say what split was made (``metrics/details/split.json``).

    Parameters
    ----------
    table : pd.DataFrame
        Output of :func:`make_split`.
    settings : SplitSettings, optional
        Adds ``n_folds`` and ``all_folds`` under ``kfold``.

    Returns
    -------
    summary : dict
        Numbers only: ``n_tracks``; ``n_train``/``n_valid``/``n_test`` tracks (``n_pool``
        under leaky); ``n_groups``; ``n_artists`` (artist groups);
        ``n_tracks_grouped_by_artist`` and ``n_tracks_grouped_by_track``;
        ``n_groups_in_several_splits``; flags ``official``, ``leaky``, ``kfold``; ``n_folds`` and
        ``all_folds`` (0/1) under kfold.
    """
    unit = table["group_unit"].astype(str)
    method = str(table["method"].iloc[0]) if len(table) else ""
    counts = table["split"].value_counts()
    out: dict[str, int] = {"n_tracks": len(table)}
    for name in ([LEAKY_POOL] if method == "leaky" else list(SPLITS)):
        out[f"n_{name}"] = int(counts.get(name, 0))
    out.update({
        "n_groups": int(table["group"].nunique()),
        "n_artists": int(table.loc[unit == "artist", "group"].nunique()),
        "n_tracks_grouped_by_artist": int((unit == "artist").sum()),
        "n_tracks_grouped_by_track": int((unit == "track").sum()),
        "n_groups_in_several_splits": check_groups(table) if method == "official" else 0,
        "official": int(method == "official"),
        "leaky": int(method == "leaky"),
        "kfold": int(method == "kfold"),
    })
    if method == "kfold" and settings is not None:
        out["n_folds"] = int(settings.n_folds)
        out["all_folds"] = int(settings.all_folds)
    return out


def _too_small(index: pd.DataFrame, groups: pd.DataFrame, method: str) -> str:
    """Why a split could not be made, and the least the dataset needs."""
    per_genre = groups["group"].groupby(index["genre"].to_numpy()).nunique()
    what = "artists" if (groups["group_unit"] == "artist").any() else "tracks"
    return (f"the dataset is too small for method {method!r}: every genre needs at least 3 {what} (one for each "
            f"of train, valid and test, more for a split near the fractions), and {per_genre.idxmin()} has "
            f"{per_genre.min()}. With the built-in dataset, raise dataset.n_tracks_per_genre to at least "
            "3 x dataset.tracks_per_artist (e.g. 10 tracks of 3 per artist), lower dataset.tracks_per_artist, "
            "or set split.group_by=track")


def assign_slices(track_ids: np.ndarray, split_table: pd.DataFrame, *, fractions: dict | None = None,
                  seed: int = 0) -> np.ndarray:
    """Split of every slice.

    Parameters
    ----------
    track_ids : np.ndarray [shape=(n_slices,)]
        Track of each slice.
    split_table : pd.DataFrame
        Output of :func:`make_split`.
    fractions : dict, optional
        Slice fractions for tracks in the leaky pool.
    seed : int
        Seed of the leaky slice assignment.

    Returns
    -------
    split : np.ndarray [shape=(n_slices,)], str
        ``train``/``valid``/``test`` for each slice; ``''`` for slices of tracks in no split.
    """
    lookup = dict(zip(split_table["track_id"], split_table["split"]))
    split = np.array([lookup.get(str(t), "") for t in track_ids], dtype=object)
    pool = split == LEAKY_POOL
    if pool.any():
        fractions = fractions or {"train": 0.6, "valid": 0.2, "test": 0.2}
        rng = np.random.default_rng(seed)
        p = np.array([float(fractions[s]) for s in SPLITS])
        split[pool] = rng.choice(np.array(SPLITS, dtype=object), size=int(pool.sum()), p=p / p.sum())
    return split.astype(str)
