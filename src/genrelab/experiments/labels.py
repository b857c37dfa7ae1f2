"""Labels of an experiment's setup, in words: dataset, split (as the split stage made it), features.

Each is a registry (dict name -> label function); names without an entry show their name.
:data:`OFFICIAL_SPLITS` is the one table of datasets with an official split (its label here, its
overrides for :mod:`genrelab.experiments.audit`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DATASET_LABELS", "OFFICIAL_SPLITS", "OfficialSplit", "SPLIT_LABELS", "FEATURE_LABELS", "dataset_key",
           "dataset_label", "split_label", "features_label"]


def _get(node: Any, dotted: str, default: Any = None) -> Any:
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return default
        node = node[key]
    return node


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _synthetic_label(d: Mapping) -> str:
    genres = d.get("genres") or []
    return f"synthetic {len(genres)}g x {d.get('n_tracks_per_genre')} x {_fmt_num(d.get('duration_s'))}s"


def _fmt_num(x: Any) -> str:
    return f"{float(x):g}" if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x)


DATASET_LABELS: dict[str, Callable[[Mapping], str]] = {
    "synthetic": _synthetic_label,
}
"""Dataset name -> label with the settings that change its size (others show their name)."""

def _gtzan_official(d: Mapping) -> str | None:
    return {"fault_filtered": "official: GTZAN fault-filtered",
            "stratified": "official: GTZAN stratified"}.get(str(d.get("split")))


@dataclass(frozen=True)
class OfficialSplit:
    """A dataset's official split.

    Attributes
    ----------
    name : str
        Its name in an audit (``fault_filtered``, ``official``).
    overrides : tuple of str
        The overrides that select it.
    label : callable
        ``label(dataset_settings) -> str or None``: its label in a report (None where the
        settings select none).
    """

    name: str
    overrides: tuple[str, ...]
    label: Callable[[Mapping], str | None]


_GTZAN = OfficialSplit("fault_filtered", ("split=official", "dataset.split=fault_filtered"), _gtzan_official)
_FMA = OfficialSplit("official", ("split=official",), lambda d: "official: FMA artist-filtered")

OFFICIAL_SPLITS: dict[str, OfficialSplit] = {
    "gtzan": _GTZAN,
    "fma_small": _FMA,
    "fma_medium": _FMA,
    "table:gtzan_kaggle": _GTZAN,
    "table:fma": _FMA,
}
"""Dataset (:func:`dataset_key`) -> its official split; the only table of them (audits and reports)."""


def dataset_key(d: Mapping) -> str:
    """The key of dataset settings ``d`` in :data:`OFFICIAL_SPLITS`: its name, ``table:<kind>`` for a feature table."""
    return str(d.get("name")) + (f":{d.get('kind')}" if d.get("name") == "table" else "")


def _official_split_label(d: Mapping) -> str | None:
    official = OFFICIAL_SPLITS.get(dataset_key(d))
    return official.label(d) if official else None


def _grouped_label(s: Mapping, counts: Mapping | None) -> str:
    """``grouped by artist (919 tracks), by track (81)`` from the split stage's counts.

    Without them (experiments from before the split stage wrote ``metrics/details/split.json``) only
    what the settings asked for is known, and the label says so.
    """
    if not counts or "n_tracks_grouped_by_artist" not in counts:
        return "grouped by track" if s.get("group_by") == "track" else "grouped by artist where known (not recorded)"
    by_artist, by_track = int(counts["n_tracks_grouped_by_artist"]), int(counts["n_tracks_grouped_by_track"])
    if by_artist and by_track:
        return f"grouped by artist ({by_artist} tracks), by track ({by_track})"
    if by_artist:
        return f"grouped by artist ({by_artist} tracks)"
    why = "" if s.get("group_by") == "track" else "; no artist ids"
    return f"grouped by track ({by_track} tracks{why})"


def _official_label(s: Mapping, d: Mapping, counts: Mapping | None) -> str:
    label = _official_split_label(d) or "official split of the dataset"
    straddle = int((counts or {}).get("n_groups_in_several_splits", 0))
    return f"{label} ({straddle} artists in several splits)" if straddle else label


def _kfold_label(s: Mapping, d: Mapping, counts: Mapping | None) -> str:
    fold = f"all {s.get('n_folds')} folds pooled" if s.get("fold") == "all" else f"{s.get('fold')}/{s.get('n_folds')}"
    return f"kfold {fold}, {_grouped_label(s, counts)}"


def _auto_label(s: Mapping, d: Mapping, counts: Mapping | None) -> str:
    """What the split stage resolved ``auto`` to (:func:`genrelab.splits.make_split` decides; an
    experiment from before the split stage recorded it says so rather than guess)."""
    if counts and "official" in counts:
        return _official_label(s, d, counts) if counts["official"] else _grouped_label(s, counts)
    return "auto: official or grouped (not recorded)"


SPLIT_LABELS: dict[str, Callable[[Mapping, Mapping, Mapping | None], str]] = {
    "leaky": lambda s, d, c: "LEAKY: random slices",
    "grouped": lambda s, d, c: _grouped_label(s, c),
    "kfold": _kfold_label,
    "official": _official_label,
    "auto": _auto_label,
}
"""``split.method`` -> label of the split actually made, from the params and the split stage's
counts (``metrics/details/split.json``): ``auto`` resolved as the split stage resolved it."""

FEATURE_LABELS: dict[str, Callable[[Mapping], str]] = {
    "mfcc": lambda f: f"mfcc({f.get('n_mfcc')}{'+d' if f.get('deltas') else ''})",
    "mel": lambda f: f"mel({f.get('n_mels')})",
}
"""Feature name -> label with the setting a sweep varies (others show their name)."""


def dataset_label(params: Mapping) -> str:
    """Dataset name, with its size for the synthetic dataset."""
    d = params.get("dataset") or {}
    name = str(d.get("name", "?"))
    return DATASET_LABELS.get(name, lambda _: name)(d)


def split_label(params: Mapping, *, leaky: bool = False, counts: Mapping | None = None) -> str:
    """The split made, in words; leaky splits say ``LEAKY`` whatever the params say.

    Parameters
    ----------
    params : mapping
        The experiment's ``params.yaml``.
    leaky : bool
        Its metrics are nested under ``leaky``.
    counts : mapping, optional
        The split stage's ``metrics/details/split.json`` (tracks grouped by artist and by track ...).
    """
    s = params.get("split") or {}
    method = str(s.get("method", "?"))
    label = SPLIT_LABELS.get(method, lambda *_: method)(s, params.get("dataset") or {}, counts)
    if leaky and not label.startswith("LEAKY"):
        label = f"LEAKY ({label})"
    return label


def features_label(params: Mapping) -> str:
    """Feature name, with the setting a recipe varies (number of MFCCs or mel bands)."""
    f = params.get("features") or {}
    name = str(f.get("name", "?"))
    return FEATURE_LABELS.get(name, lambda _: name)(f)
