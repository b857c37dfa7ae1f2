"""The evaluate stage: one ``evaluate()`` for every classifier, slice and track level, with uncertainty.

What is evaluated is what ships: the bundle's ensemble (mean probability over its seeds, the
members' majority class), exactly as ``genrelab predict`` uses it. Per-seed scores are given
beside it as a mean and std, never as a "best" seed picked on the test split. Under
``split.fold=all`` every track is predicted by the ensemble of the fold that held it out, and
the metrics pool all tracks, with per-fold figures beside them.

Levels: ``slice`` (each slice's class as its model predicts it; for an SVM the SVC's own
decision), ``track_vote`` (majority of a track's slice classes) and ``track_mean`` (argmax of
the mean slice probability, what ``genrelab predict`` reports). Macro-F1 averages the genres
present in the evaluated split.

Intervals: each accuracy has its own 95% interval (``<level>.accuracy_ci95``), a Wilson score
interval on a cluster-adjusted effective sample size: slices and tracks of one group (the split's
unit: artist, or track where unknown) are not independent, so the number of observations is
shrunk by the design effect measured between groups (Kish), between the number of groups and the
number of observations; at 0% or 100% (where it cannot be measured) it is the number of groups.
The interval never collapses to a point.

Metrics are numbers only (DVC diffs them); under a leaky split every metric is nested under a
``leaky`` key so that it can never be mistaken for an honest one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from genrelab.config import ConfigError, require_choice

if TYPE_CHECKING:
    from genrelab.models import Bundle

__all__ = ["EvaluateSettings", "per_genre_table", "confusion_title", "aggregate_tracks",
           "classification_metrics", "accuracy_interval", "evaluate", "evaluate_bundle", "confusion_png"]

LEVELS = ("slice", "track_vote", "track_mean")
"""Metric levels; ``track_mean`` is the headline (what ``genrelab predict`` reports)."""


@dataclass(frozen=True)
class EvaluateSettings:
    """Settings of the ``evaluate`` section.

    Attributes
    ----------
    split : {'test', 'valid'}
        Which split is scored (``valid`` only while developing a model).
    """

    split: str = "test"

    def __post_init__(self) -> None:
        require_choice("evaluate.split", self.split, ("test", "valid"))


def aggregate_tracks(proba: np.ndarray, track_ids: np.ndarray, pred: np.ndarray | None = None) -> pd.DataFrame:
    """Aggregate slice predictions to tracks.

    Parameters
    ----------
    proba : np.ndarray [shape=(n_slices, n_classes)]
        Slice class probabilities.
    track_ids : np.ndarray [shape=(n_slices,)]
        Track of each slice.
    pred : np.ndarray [shape=(n_slices,)], optional
        Class of each slice as the model predicts it (default: argmax of ``proba``).

    Returns
    -------
    tracks : pd.DataFrame
        One row per track (in order of first appearance): ``track_id``, ``n_slices``,
        ``pred_vote`` (majority of the slice classes, ties to the higher summed probability),
        ``pred_mean`` (argmax of the mean probability), and ``p_<k>`` mean probabilities.
    """
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or len(proba) != len(track_ids):
        raise ValueError(f"proba must be (n_slices, n_classes) matching {len(track_ids)} track ids, "
                         f"got {proba.shape}")
    pred = proba.argmax(axis=1) if pred is None else np.asarray(pred, dtype=np.int64)
    if pred.shape != (len(proba),):
        raise ValueError(f"pred must hold one class per slice ({len(proba)}), got shape {pred.shape}")
    track_ids = np.asarray(track_ids).astype(str)
    uniq, first, inverse = np.unique(track_ids, return_index=True, return_inverse=True)
    n_tracks, n_classes = len(uniq), proba.shape[1]
    sums = np.zeros((n_tracks, n_classes))
    np.add.at(sums, inverse, proba)
    votes = np.zeros((n_tracks, n_classes))
    np.add.at(votes, (inverse, pred), 1.0)
    counts = np.bincount(inverse, minlength=n_tracks)
    mean = sums / counts[:, None]
    # majority vote; ties broken by the summed probability (a tiny, order-free tie-breaker)
    pred_vote = np.argmax(votes + 1e-6 * mean, axis=1)
    order = np.argsort(first)
    out = pd.DataFrame({"track_id": uniq, "n_slices": counts, "pred_vote": pred_vote,
                        "pred_mean": mean.argmax(axis=1)})
    for k in range(n_classes):
        out[f"p_{k}"] = mean[:, k]
    return out.iloc[order].reset_index(drop=True)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict:
    """Accuracy, macro-F1 and per-genre F1 over the genres present in ``y_true`` (numbers only).

    A genre absent from the evaluated split has no F1 (it would count as 0 and drag the
    macro average down however good the predictions are); predictions of it still lower the
    recall of the genres that are present.
    """
    from sklearn.metrics import accuracy_score, f1_score

    y_true = np.asarray(y_true)
    present = sorted(int(k) for k in np.unique(y_true))
    per = f1_score(y_true, y_pred, labels=present, average=None, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(np.mean(per)) if len(per) else float("nan"),
        "f1": {labels[k]: float(f) for k, f in zip(present, per)},
    }


def accuracy_interval(correct: np.ndarray, groups: np.ndarray | None = None, *,
                      level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of an accuracy whose observations come in groups.

    Parameters
    ----------
    correct : np.ndarray [shape=(n,)], bool
        Whether each prediction (slice or track) is right.
    groups : np.ndarray [shape=(n,)], optional
        Group of each observation (artist, or track); observations of one group are not
        independent. ``None``: every observation is its own group (the plain Wilson interval).
    level : float
        Coverage, 0.95 for a 95% interval.

    Returns
    -------
    low, high : float
        In [0, 1]; ``low < high`` always (no collapse at 0% or 100%).

    Notes
    -----
    With ``k`` groups, ``c_i`` right out of ``m_i`` in group ``i`` and ``p = sum c / n``, the
    between-group (ratio-estimator) variance ``v = k / (k - 1) * sum (c_i - p m_i)^2 / n^2``
    gives an effective sample size ``n_eff = p (1 - p) / v``, kept within ``[1, n]``; the Wilson
    interval is then computed with ``n_eff`` observations. Where ``p`` is 0 or 1 the
    variance says nothing and ``n_eff = k``.
    """
    from scipy.stats import norm

    correct = np.asarray(correct, dtype=float)
    n = correct.size
    if n == 0:
        raise ValueError("an interval of an empty set of predictions")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    p = float(correct.mean())
    if groups is None:
        n_eff = float(n)
    else:
        groups = np.asarray(groups)
        if groups.shape != correct.shape:
            raise ValueError(f"groups must match the {n} predictions, got shape {groups.shape}")
        _, inverse = np.unique(groups, return_inverse=True)
        k = int(inverse.max()) + 1
        if p in (0.0, 1.0) or k < 2:
            n_eff = float(k)
        else:
            c = np.bincount(inverse, weights=correct, minlength=k)
            m = np.bincount(inverse, minlength=k).astype(float)
            v = k / (k - 1) * float(((c - p * m) ** 2).sum()) / n ** 2
            n_eff = float(np.clip(p * (1 - p) / v, 1.0, n)) if v > 0 else float(n)
    z = float(norm.ppf(1 - (1 - level) / 2))
    denom = 1 + z * z / n_eff
    centre = (p + z * z / (2 * n_eff)) / denom
    half = z * np.sqrt(p * (1 - p) / n_eff + z * z / (4 * n_eff * n_eff)) / denom
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def _level(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, labels: list[str]) -> dict:
    m = classification_metrics(y_true, y_pred, labels)
    low, high = accuracy_interval(np.asarray(y_true) == np.asarray(y_pred), groups)
    return {"accuracy": m["accuracy"], "accuracy_ci95": {"low": low, "high": high}, "macro_f1": m["macro_f1"],
            "f1": m["f1"]}


def evaluate(proba: np.ndarray, y: np.ndarray, track_ids: np.ndarray, labels: list[str], *,
             pred: np.ndarray | None = None, groups: np.ndarray | None = None,
             leaky: bool = False) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Slice- and track-level metrics of one classifier (or ensemble) on one split.

    Parameters
    ----------
    proba : np.ndarray [shape=(n_slices, n_classes)]
        Slice probabilities (the mean-probability track aggregation reads them).
    y : np.ndarray [shape=(n_slices,)]
        True label of each slice.
    track_ids : np.ndarray [shape=(n_slices,)]
    labels : list of str
        Class names, in label order.
    pred : np.ndarray [shape=(n_slices,)], optional
        The model's class of each slice (default: argmax of ``proba``); slice accuracy and the
        track majority vote read it.
    groups : np.ndarray [shape=(n_slices,)], optional
        Group of each slice (artist, or track; default: its track), for the intervals.
    leaky : bool
        Nest every metric under ``'leaky'``.

    Returns
    -------
    metrics : dict
        ``slice``, ``track_vote``, ``track_mean``: each ``accuracy``, ``accuracy_ci95``
        (``low``, ``high``), ``macro_f1`` and ``f1`` per genre present; counts ``n_slices``,
        ``n_tracks``, ``n_groups``, ``n_genres`` (present).
    slices : pd.DataFrame
        Per slice: track_id, actual, predicted, and the probability of the predicted class.
    tracks : pd.DataFrame
        Per track: track_id, actual, predicted (mean probability), predicted_vote, confidence.
    """
    y = np.asarray(y)
    track_ids = np.asarray(track_ids).astype(str)
    pred = np.asarray(proba).argmax(axis=1) if pred is None else np.asarray(pred, dtype=np.int64)
    groups = track_ids if groups is None else np.asarray(groups).astype(str)
    tracks = aggregate_tracks(proba, track_ids, pred)
    truth = pd.Series(y, index=track_ids).groupby(level=0).first()
    group_of = pd.Series(groups, index=track_ids).groupby(level=0).first()
    y_track = truth.loc[tracks["track_id"]].to_numpy()
    g_track = group_of.loc[tracks["track_id"]].to_numpy()
    metrics = {
        "slice": _level(y, pred, groups, labels),
        "track_vote": _level(y_track, tracks["pred_vote"].to_numpy(), g_track, labels),
        "track_mean": _level(y_track, tracks["pred_mean"].to_numpy(), g_track, labels),
        "n_slices": len(y),
        "n_tracks": len(tracks),
        "n_groups": len(np.unique(g_track)),
        "n_genres": len(np.unique(y_track)),
    }
    if leaky:
        metrics = {"leaky": metrics}
    names = np.array(labels, dtype=object)
    proba = np.asarray(proba, dtype=np.float64)
    slices = pd.DataFrame({"track_id": track_ids, "actual": names[y], "predicted": names[pred],
                           "probability": proba[np.arange(len(pred)), pred]})
    p_cols = [f"p_{k}" for k in range(len(labels))]
    table = pd.DataFrame({
        "track_id": tracks["track_id"], "actual": names[y_track], "predicted": names[tracks["pred_mean"]],
        "predicted_vote": names[tracks["pred_vote"]],
        "confidence": tracks[p_cols].to_numpy().max(axis=1).round(4),
    })
    return metrics, slices, table


def per_genre_table(metrics: dict, tracks: pd.DataFrame) -> pd.DataFrame:
    """Per-genre scores as plot data (``dvc plots``): one row per genre.

    Parameters
    ----------
    metrics : dict
        The full result of :func:`evaluate_bundle` (nested under ``leaky`` or not).
    tracks : pd.DataFrame
        Its track predictions (``actual`` is the true genre).

    Returns
    -------
    table : pd.DataFrame
        ``genre``, ``f1`` (track level, mean probability), ``f1_vote``, ``f1_slice`` and
        ``n_tracks`` (evaluated tracks of the genre), in label order.
    """
    m = metrics.get("leaky", metrics)
    genres = list(m["track_mean"]["f1"])
    support = tracks["actual"].astype(str).value_counts()
    return pd.DataFrame({
        "genre": genres,
        "f1": [round(float(m["track_mean"]["f1"][g]), 4) for g in genres],
        "f1_vote": [round(float(m["track_vote"]["f1"].get(g, float("nan"))), 4) for g in genres],
        "f1_slice": [round(float(m["slice"]["f1"].get(g, float("nan"))), 4) for g in genres],
        "n_tracks": [int(support.get(g, 0)) for g in genres],
    })


def confusion_title(meta: dict, metrics: dict, *, split: str = "test") -> str:
    """``svm · mfcc · normal`` over ``track accuracy 78.3% of 60 test tracks`` (``LEAKY split`` where it was)."""
    m = metrics.get("leaky", metrics)
    params = meta.get("params") or {}
    parts = [str(meta.get("model", "?")), str((params.get("features") or {}).get("name", "?")),
             str((params.get("variant") or {}).get("name", "?"))]
    leaky = " - LEAKY split" if "leaky" in metrics else ""
    return (f"{' · '.join(parts)}\ntrack accuracy {100 * m['track_mean']['accuracy']:.1f}% "
            f"of {m['n_tracks']} {split} tracks{leaky}")


def confusion_png(actual: list[str] | np.ndarray, predicted: list[str] | np.ndarray, labels: list[str],
                  path: str | Path, *, title: str = "Track-level confusion matrix") -> None:
    """Draw a confusion matrix (counts, rows = actual) as a PNG, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    from genrelab.io import atomic_path

    cm = confusion_matrix(actual, predicted, labels=labels)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(labels), 0.8 + 0.55 * len(labels)), dpi=120)
    im = ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title, fontsize=9)
    thresh = cm.max() / 2 if cm.size else 0
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                        color="white" if cm[i, j] > thresh else "black", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")   # a long title widens the image, not cut
    plt.close(fig)


def _scored(outputs: list[tuple[np.ndarray, np.ndarray]], fs) -> dict:
    """The ensemble of some members' outputs on ``fs``, with what :func:`evaluate` needs."""
    from genrelab.models.bundle import combine_members

    proba, pred = combine_members(outputs)
    return {"proba": proba, "pred": pred, "y": fs.y, "track_id": fs.track_id, "groups": fs.groups}


def _pool(parts: list[dict]) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _spread(values: list[float]) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def evaluate_bundle(bundle: Bundle, features_dir: str | Path, *, split: str = "test",
                    split_table: str | Path | pd.DataFrame | None, fractions: dict | None = None,
                    seed: int = 0) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Evaluate what a bundle ships (its ensemble) on one split; per-seed and per-fold figures beside it.

    Parameters
    ----------
    bundle : Bundle
    features_dir : path
        Output of the features stage (one set for every track).
    split : {'test', 'valid'}
    split_table : path or pd.DataFrame
        ``data/split.csv``: which tracks of the set are in ``split``, the groups of the
        intervals and, for a ``split.fold=all`` bundle, each track's fold.
    fractions : dict, optional
        ``split.fractions``: slice fractions of a leaky split's pool.
    seed : int
        The ``seed`` parameter: with ``fractions``, assigns a leaky split's slices as the train
        stage did.

    Returns
    -------
    metrics : dict
        The ensemble's metrics (:func:`evaluate`); with several seeds ``per_seed``
        (``n_seeds`` and mean and std over seeds of each seed's slice, vote and mean-probability
        track accuracy); for a ``split.fold=all`` bundle pooled over every fold's held-out
        tracks, plus ``per_fold`` (``fold_<f>``: track accuracy, its ``accuracy_ci95``,
        ``n_tracks``) and ``over_folds`` (mean and std of the fold accuracies). Nested under
        ``leaky`` when the split was leaky.
    slices, tracks : pd.DataFrame
        The ensemble's predictions (with a ``fold`` column for a ``fold=all`` bundle).
    """
    from genrelab.features import load_split_sets
    from genrelab.splits import fold_roles, read_split_table

    EvaluateSettings(split=split)
    table = None if split_table is None else read_split_table(split_table)
    folds = bundle.folds
    if table is None:  # the features stage's set holds every track: the table says which are tested
        raise ConfigError("evaluate: needs the split table (--split data/split.csv) to pick the test tracks")
    per_fold, fold_sets = {}, []
    for fold in folds:
        fold_table = table
        if fold is not None:
            fold_table = table.assign(split=fold_roles(table["fold"].astype(int).to_numpy(), fold, len(folds)))
        fs = load_split_sets(features_dir, fold_table, fractions=fractions, seed=seed, splits=(split,))[split]
        if len(fs.meta) == 0:
            raise ConfigError(
                f"evaluate: the {split} split{'' if fold is None else f' of fold {fold}'} holds no slices"
            )
        fold_sets.append((fold, fs))
    from genrelab.models.bundle import bundle_members

    leaky = bundle.meta.get("split_method") == "leaky"
    seed_of = {m["path"]: int(m["seed"]) for m in bundle_members(bundle.meta)}
    outputs = [bundle.member_outputs(fs, fold=fold) for fold, fs in fold_sets]   # every model run once
    parts = [_scored(list(out.values()), fs) for out, (_, fs) in zip(outputs, fold_sets)]
    pooled = _pool(parts)
    metrics, slices, tracks = evaluate(pooled["proba"], pooled["y"], pooled["track_id"], bundle.labels,
                                       pred=pooled["pred"], groups=pooled["groups"])
    if folds != [None]:
        fold_of = {t: f for (f, fs) in fold_sets for t in fs.track_id}
        slices.insert(1, "fold", slices["track_id"].map(fold_of).astype(int))
        tracks.insert(1, "fold", tracks["track_id"].map(fold_of).astype(int))
        accs = []
        for (fold, _), part in zip(fold_sets, parts):
            m, _, _ = evaluate(part["proba"], part["y"], part["track_id"], bundle.labels, pred=part["pred"],
                               groups=part["groups"])
            tm = m["track_mean"]
            per_fold[f"fold_{fold}"] = {"track_mean_accuracy": tm["accuracy"],
                                        "track_mean_accuracy_ci95": tm["accuracy_ci95"], "n_tracks": m["n_tracks"]}
            accs.append(tm["accuracy"])
        mean, std = _spread(accs)
        metrics["per_fold"] = per_fold
        metrics["over_folds"] = {"n_folds": len(accs), "track_mean_accuracy_mean": mean,
                                 "track_mean_accuracy_std": std}
    seeds = list(dict.fromkeys(int(s) for s in bundle.meta["seeds"]))
    if len(seeds) > 1:
        scores: dict[str, list[float]] = {level: [] for level in LEVELS}
        for seed in seeds:
            p = _pool([_scored([o for path, o in out.items() if seed_of[path] == seed], fs)
                       for out, (_, fs) in zip(outputs, fold_sets)])
            m, _, _ = evaluate(p["proba"], p["y"], p["track_id"], bundle.labels, pred=p["pred"], groups=p["groups"])
            for level in LEVELS:
                scores[level].append(m[level]["accuracy"])
        metrics["per_seed"] = {"n_seeds": len(seeds)}
        for level in LEVELS:
            mean, std = _spread(scores[level])
            metrics["per_seed"][f"{level}_accuracy_mean"] = mean
            metrics["per_seed"][f"{level}_accuracy_std"] = std
    if leaky:
        metrics = {"leaky": metrics}
    return metrics, slices, tracks
