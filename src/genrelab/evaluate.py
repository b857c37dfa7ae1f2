"""The evaluate stage: one ``evaluate()`` for every classifier, slice and track level, with uncertainty.

Track-level predictions aggregate a track's slices by majority vote and by mean
probability. Metrics are numbers only (DVC diffs them); under a leaky split every metric is
nested under a ``leaky`` key so that it can never be mistaken for an honest one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from genrelab.config import ConfigError

if TYPE_CHECKING:
    from genrelab.models import Bundle

__all__ = ["aggregate_tracks", "classification_metrics", "bootstrap_accuracy_ci", "evaluate", "evaluate_bundle",
           "confusion_png"]


def aggregate_tracks(proba: np.ndarray, track_ids: np.ndarray) -> pd.DataFrame:
    """Aggregate slice probabilities to tracks.

    Parameters
    ----------
    proba : np.ndarray [shape=(n_slices, n_classes)]
        Slice class probabilities.
    track_ids : np.ndarray [shape=(n_slices,)]
        Track of each slice.

    Returns
    -------
    tracks : pd.DataFrame
        One row per track (in order of first appearance): ``track_id``, ``n_slices``,
        ``pred_vote`` (majority of slice argmaxes, ties to the higher summed probability),
        ``pred_mean`` (argmax of the mean probability), and ``p_<k>`` mean probabilities.
    """
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or len(proba) != len(track_ids):
        raise ValueError(f"proba must be (n_slices, n_classes) matching {len(track_ids)} track ids, "
                         f"got {proba.shape}")
    track_ids = np.asarray(track_ids).astype(str)
    uniq, first, inverse = np.unique(track_ids, return_index=True, return_inverse=True)
    n_tracks, n_classes = len(uniq), proba.shape[1]
    sums = np.zeros((n_tracks, n_classes))
    np.add.at(sums, inverse, proba)
    votes = np.zeros((n_tracks, n_classes))
    np.add.at(votes, (inverse, proba.argmax(axis=1)), 1.0)
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
    """Accuracy, macro-F1 and per-genre F1 (numbers only)."""
    from sklearn.metrics import accuracy_score, f1_score

    idx = list(range(len(labels)))
    per = f1_score(y_true, y_pred, labels=idx, average=None, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=idx, average="macro", zero_division=0)),
        "f1": {labels[i]: float(per[i]) for i in idx},
    }


def bootstrap_accuracy_ci(correct: np.ndarray, *, n_boot: int = 1000, seed: int = 0,
                          level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of an accuracy.

    Parameters
    ----------
    correct : np.ndarray [shape=(n,)], bool
        Whether each (track-level) prediction is right.
    n_boot : int
        Resamples.
    seed : int
    level : float
        Coverage, 0.95 for a 95% interval.

    Returns
    -------
    low, high : float
    """
    correct = np.asarray(correct, dtype=float)
    if correct.size == 0:
        raise ValueError("bootstrap of an empty set of predictions")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(correct), size=(n_boot, len(correct)))
    accs = correct[draws].mean(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(accs, alpha)), float(np.quantile(accs, 1 - alpha))


def evaluate(proba: np.ndarray, y: np.ndarray, track_ids: np.ndarray, labels: list[str], *, leaky: bool = False,
             n_boot: int = 1000, seed: int = 0) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Slice- and track-level metrics of one classifier on one split.

    Parameters
    ----------
    proba : np.ndarray [shape=(n_slices, n_classes)]
    y : np.ndarray [shape=(n_slices,)]
        True label of each slice.
    track_ids : np.ndarray [shape=(n_slices,)]
    labels : list of str
        Class names, in label order.
    leaky : bool
        Nest every metric under ``'leaky'``.
    n_boot : int
        Bootstrap resamples for the track accuracy interval.
    seed : int

    Returns
    -------
    metrics : dict
        ``slice``, ``track_vote``, ``track_mean`` (each accuracy, macro_f1, f1 per genre),
        the 95% interval of the track accuracy (mean probability), and counts.
    slices : pd.DataFrame
        Per slice: track_id, actual, predicted, and probability of the prediction.
    tracks : pd.DataFrame
        Per track: track_id, actual, predicted (mean probability), predicted_vote, confidence.
    """
    y = np.asarray(y)
    pred = proba.argmax(axis=1)
    tracks = aggregate_tracks(proba, track_ids)
    truth = pd.Series(y, index=np.asarray(track_ids).astype(str)).groupby(level=0).first()
    y_track = truth.loc[tracks["track_id"]].to_numpy()
    low, high = bootstrap_accuracy_ci(tracks["pred_mean"].to_numpy() == y_track, n_boot=n_boot, seed=seed)
    metrics = {
        "slice": classification_metrics(y, pred, labels),
        "track_vote": classification_metrics(y_track, tracks["pred_vote"].to_numpy(), labels),
        "track_mean": classification_metrics(y_track, tracks["pred_mean"].to_numpy(), labels),
        "track_accuracy_ci95": {"low": low, "high": high},
        "n_slices": int(len(y)),
        "n_tracks": int(len(tracks)),
    }
    if leaky:
        metrics = {"leaky": metrics}
    names = np.array(labels, dtype=object)
    slices = pd.DataFrame({"track_id": np.asarray(track_ids).astype(str), "actual": names[y],
                           "predicted": names[pred], "probability": proba.max(axis=1)})
    p_cols = [f"p_{k}" for k in range(len(labels))]
    table = pd.DataFrame({
        "track_id": tracks["track_id"], "actual": names[y_track], "predicted": names[tracks["pred_mean"]],
        "predicted_vote": names[tracks["pred_vote"]],
        "confidence": tracks[p_cols].to_numpy().max(axis=1).round(4),
    })
    return metrics, slices, table


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
    ax.set_title(title)
    thresh = cm.max() / 2 if cm.size else 0
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                        color="white" if cm[i, j] > thresh else "black", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def evaluate_bundle(bundle: Bundle, features_dir: str | Path, *, split: str = "test", n_boot: int = 1000,
                    seed: int = 0) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Evaluate every seed's model of a bundle on one split.

    Returns
    -------
    metrics : dict
        Means over seeds of every number of :func:`genrelab.evaluate.evaluate`, plus
        ``over_seeds`` (std and best of slice and track accuracy) when there are several seeds.
        Nested under ``leaky`` when the split was leaky.
    slices, tracks : pd.DataFrame
        Predictions of the first seed's model.
    """
    from genrelab.features import load_feature_split

    fs = load_feature_split(features_dir, split)
    if len(fs.meta) == 0:
        raise ConfigError(f"evaluate: the {split} split holds no slices")
    leaky = bundle.meta.get("split_method") == "leaky"
    per_seed = []
    first = None
    for s, model in bundle.models.items():
        m, slices, tracks = evaluate(model.predict_proba(fs), fs.y, fs.track_id, bundle.labels, leaky=False,
                                     n_boot=n_boot, seed=seed)
        per_seed.append(m)
        if first is None:
            first = (slices, tracks)
    metrics = _mean_dicts(per_seed)
    if len(per_seed) > 1:
        track = np.array([m["track_mean"]["accuracy"] for m in per_seed])
        sl = np.array([m["slice"]["accuracy"] for m in per_seed])
        metrics["over_seeds"] = {"n_seeds": len(per_seed),
                                 "track_accuracy_std": float(track.std(ddof=1)), "track_accuracy_best": float(track.max()),
                                 "slice_accuracy_std": float(sl.std(ddof=1)), "slice_accuracy_best": float(sl.max())}
    if leaky:
        metrics = {"leaky": metrics}
    assert first is not None
    return metrics, first[0], first[1]


def _mean_dicts(dicts: list[dict]) -> dict:
    out: dict = {}
    for key, value in dicts[0].items():
        if isinstance(value, dict):
            out[key] = _mean_dicts([d[key] for d in dicts])
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            out[key] = int(value)
        else:
            out[key] = float(np.mean([d[key] for d in dicts]))
    return out
