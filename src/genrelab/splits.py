"""Train/valid/test splits made per track, grouped by artist, stratified by genre.

No slice of a track ever lands in two splits, except under the deliberately leaky method,
which exists only to measure how much a slice-level random split inflates a score; every
metric computed under it is labelled ``leaky``.

Methods (``split.method``):

``auto``
    ``official`` when the dataset defines one (GTZAN fault-filtered, FMA artist-filtered),
    else ``grouped``.
``official``
    The dataset's own split (the index's ``official_split`` column).
``grouped``
    Artists (or tracks, where the dataset has no artists) are assigned whole to train,
    valid and test so that each genre's tracks follow ``fractions``.
``kfold``
    Stratified group k-fold: fold ``fold`` is the test set, the next fold the valid set.
``leaky``
    Tracks go to a common pool; each slice is then assigned at random. For leakage audits only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from genrelab.config import ConfigError

__all__ = ["SplitSettings", "SPLITS", "make_split", "assign_slices", "LEAKY_POOL", "is_leaky"]

SPLITS = ("train", "valid", "test")
LEAKY_POOL = "pool"
METHODS = ("auto", "official", "grouped", "kfold", "leaky")


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
    fold : int in [0, n_folds)
        Test fold (``kfold``); the valid fold is ``(fold + 1) % n_folds``.
    group_by : {'artist', 'track'}
        What must not straddle splits. ``artist`` falls back to the track where the
        dataset has no artist ids.
    """

    method: str = "auto"
    fractions: dict = field(default_factory=lambda: {"train": 0.6, "valid": 0.2, "test": 0.2})
    n_folds: int = 5
    fold: int = 0
    group_by: str = "artist"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"split.method: unknown choice {self.method!r}; valid choices: {', '.join(METHODS)}")
        if self.group_by not in ("artist", "track"):
            raise ConfigError(f"split.group_by: unknown choice {self.group_by!r}; valid choices: artist, track")
        if set(self.fractions) != set(SPLITS):
            raise ConfigError(f"split.fractions: needs exactly the keys {list(SPLITS)}, got {sorted(self.fractions)}")
        values = [float(self.fractions[k]) for k in SPLITS]
        if any(v <= 0 for v in values) or abs(sum(values) - 1.0) > 1e-6:
            raise ConfigError(f"split.fractions: must be positive and sum to 1, got {dict(self.fractions)}")
        if self.n_folds < 3:
            raise ConfigError(f"split.n_folds: must be at least 3 (test, valid and train folds), got {self.n_folds}")
        if not 0 <= self.fold < self.n_folds:
            raise ConfigError(f"split.fold: must be in [0, {self.n_folds}), got {self.fold}")


def is_leaky(settings: SplitSettings) -> bool:
    """Whether metrics under these settings must be labelled leaky."""
    return settings.method == "leaky"


def _groups(index: pd.DataFrame, group_by: str) -> pd.Series:
    if group_by == "artist" and "artist" in index and (index["artist"].astype(str) != "").all():
        return index["artist"].astype(str)
    return index["track_id"].astype(str)


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


def _kfold(index: pd.DataFrame, groups: pd.Series, n_folds: int, fold: int, seed: int) -> pd.Series:
    from sklearn.model_selection import StratifiedGroupKFold

    n_groups = groups.nunique()
    if n_groups < n_folds:
        raise ConfigError(f"split.n_folds: {n_folds} folds need at least {n_folds} groups, the dataset has {n_groups}")
    skf = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    fold_of = np.empty(len(index), dtype=int)
    for k, (_, test_idx) in enumerate(skf.split(np.zeros(len(index)), index["genre"], groups)):
        fold_of[test_idx] = k
    out = np.where(fold_of == fold, "test", np.where(fold_of == (fold + 1) % n_folds, "valid", "train"))
    return pd.Series(out, index=index.index)


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
        Columns ``track_id, genre, artist, split, method``; ``split`` is one of train, valid,
        test, or ``pool`` under the leaky method (slices are assigned later by
        :func:`assign_slices`). Tracks outside the official split are dropped.
    """
    if len(index) == 0:
        raise ConfigError("split: the dataset index is empty")
    method = settings.method
    has_official = "official_split" in index and (index["official_split"].astype(str) != "").any()
    if method == "auto":
        method = "official" if has_official else "grouped"
    groups = _groups(index, settings.group_by)
    rng = np.random.default_rng(seed)
    if method == "official":
        if not has_official:
            raise ConfigError("split.method: 'official' but this dataset defines no official split; "
                              "use one of: auto, grouped, kfold")
        split = index["official_split"].astype(str)
    elif method == "grouped":
        split = _grouped_fractions(index, groups, settings.fractions, rng)
    elif method == "kfold":
        split = _kfold(index, groups, settings.n_folds, settings.fold, seed)
    else:  # leaky
        split = pd.Series(LEAKY_POOL, index=index.index)
    table = pd.DataFrame({
        "track_id": index["track_id"].astype(str),
        "genre": index["genre"].astype(str),
        "artist": index["artist"].astype(str) if "artist" in index else "",
        "split": split.astype(str),
        "method": method,
    })
    table = table[table["split"].isin([*SPLITS, LEAKY_POOL])].reset_index(drop=True)
    if method != "leaky":
        # an official split may define no valid set (published embedding files: train and test only)
        required = ("train", "test") if method == "official" else SPLITS
        missing = [s for s in required if not (table["split"] == s).any()]
        if missing:
            raise ConfigError(f"split: no track landed in {missing}; the dataset is too small for method {method!r}")
    return table


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
