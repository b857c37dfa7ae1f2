"""Which numbers are headline metrics, and where every other number a stage computes goes.

DVC lists every key of every file declared under ``metrics:`` as one column of
``dvc metrics show`` and ``dvc exp show`` (at least the key's length plus four characters), so
the declared files hold only a *headline*: a few numbers per stage, with short names that are
the same wherever they mean the same thing (``tracks``). Everything else a stage computed --
per-split and per-genre numbers, the slice-level and majority-vote scores, per-seed statistics,
separation quality -- is written whole beside it as ``metrics/details/<file>.json`` (tracked by
git, not a DVC metric); per-genre scores are also plot data. Timings go to the log only: they are
not properties of the experiment.

A stage computes its full result dict and calls :func:`write_metrics` with its layout from
:data:`LAYOUTS`; the mapping from full dict to headline is :func:`headline`, so a new number in
the full dict reaches the details file at once, and the headline when the layout names it.

Headline keys (fractions rounded to 3 decimals, counts as integers):

=========== =====================================================================================
``acc``     track accuracy on the evaluated split (a track's prediction: the argmax of its mean
            slice probability); ``acc_lo``/``acc_hi``: its 95% interval
``f1``      track macro-F1; ``f1_lo``/``f1_hi``: its 95% interval
``slice_acc``, ``slice_f1``  slice-level accuracy and macro-F1 (their intervals are in the details)
``tracks``  tracks the stage produced or used: the dataset's tracks (prepare), tracks in the
            split (split), tracks with stems (separate), tracks with features (features), training tracks (train),
            evaluated
            tracks = the test-set size (evaluate). A drop from one row to the next is a failure;
            the details say which tracks and why.
=========== =====================================================================================

Under a leaky split the whole headline is nested under ``leaky`` (``leaky.acc`` ...), so that it
can never be read as an honest score.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["DIGITS", "LAYOUTS", "headline", "write_metrics"]

DIGITS = 3
"""Decimals of the headline fractions (0.1 percentage point; a test set of 1000 tracks resolves 0.1)."""

LAYOUTS: dict[str, dict[str, tuple[str, ...]]] = {
    "dataset": {"tracks": ("n_tracks",)},
    "split": {"tracks": ("n_tracks",)},
    "separation": {"tracks": ("n_tracks",)},
    "features": {"tracks": ("n_tracks",)},
    "train": {"tracks": ("n_train_tracks",)},
    "eval": {
        "acc": ("track_mean.accuracy",),
        "acc_lo": ("track_mean.accuracy_ci95.low", "track_accuracy_ci95.low"),
        "acc_hi": ("track_mean.accuracy_ci95.high", "track_accuracy_ci95.high"),
        "f1": ("track_mean.macro_f1",),
        "f1_lo": ("track_mean.macro_f1_ci95.low", "track_macro_f1_ci95.low"),
        "f1_hi": ("track_mean.macro_f1_ci95.high", "track_macro_f1_ci95.high"),
        "slice_acc": ("slice.accuracy",),
        "slice_f1": ("slice.macro_f1",),
        "tracks": ("n_tracks",),
    },
}
"""Headline of each metrics file: key -> dotted paths into the stage's full result, the first
one present wins (so the full dict may grow or rename a number without touching the stages)."""

LEAKY = "leaky"


def _lookup(node: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _number(value: Any, digits: int) -> int | float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int) or (hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu"):
        return int(value)
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return round(x, digits) if math.isfinite(x) else None   # NaN is no metric


def headline(full: Mapping[str, Any], layout: str | Mapping[str, Sequence[str]], *,
             digits: int = DIGITS) -> dict[str, Any]:
    """The headline numbers of a stage's full result.

    Parameters
    ----------
    full : mapping
        Everything the stage computed (nested dicts of numbers). A result nested under
        ``leaky`` gives a headline nested the same way.
    layout : str or mapping
        A :data:`LAYOUTS` name, or headline key -> candidate dotted paths into ``full``.
    digits : int
        Decimals kept of fractions.

    Returns
    -------
    headline : dict
        Headline key -> number, for every key whose path is present (absent numbers are left
        out rather than written as NaN, which DVC cannot compare).
    """
    if isinstance(layout, str):
        layout = LAYOUTS[layout]
    if set(full) == {LEAKY} and isinstance(full[LEAKY], Mapping):
        return {LEAKY: headline(full[LEAKY], layout, digits=digits)}
    out: dict[str, Any] = {}
    for key, paths in layout.items():
        for path in paths:
            value = _number(_lookup(full, path), digits)
            if value is not None:
                out[key] = value
                break
    return out


def write_metrics(path: str | os.PathLike, details: str | os.PathLike, full: Mapping[str, Any],
                  layout: str | Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """Write a stage's headline to ``path`` and its full result to ``details``.

    Parameters
    ----------
    path : path
        The metrics file declared in ``dvc.yaml`` (``metrics/eval.json``).
    details : path
        Where the full result goes (``metrics/details/eval.json``).
    full : mapping
        Everything the stage computed (numbers only).
    layout : str or mapping
        See :func:`headline`.

    Returns
    -------
    headline : dict
        What was written to ``path``.
    """
    from genrelab.io import write_json

    head = headline(full, layout)
    write_json(path, head)
    write_json(details, full)
    return head
