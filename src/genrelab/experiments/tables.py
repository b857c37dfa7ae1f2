"""The results table: one row per experiment, ranked within groups evaluated on the same tracks.

:func:`results_table` builds the rows from :data:`COLUMNS` (a registry of column extractors);
:func:`distinct_configurations` keeps the newest run of each configuration; :func:`rank_table`
ranks the rows within each group evaluated on the same test tracks and compares each with the
best on paired predictions (difference, paired bootstrap interval, McNemar p-value
Holm-corrected over the table); :func:`markdown_table` renders it.
"""

from __future__ import annotations

import json
import logging
import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from genrelab.experiments.expshow import Experiment
from genrelab.experiments.labels import _fmt_num, _get, _num, dataset_label, features_label, split_label

__all__ = ["COLUMNS", "RANK_COLUMNS", "MARKDOWN_COLUMNS", "results_table", "distinct_configurations",
           "comparison_group", "rank_table", "markdown_table"]

log = logging.getLogger(__name__)


def _first(node: Any, *paths: str) -> float:
    """The first of ``paths`` that holds a number in ``node`` (headline names first, then older layouts)."""
    for path in paths:
        value = _num(_get(node, path))
        if np.isfinite(value):
            return value
    return math.nan


def _n_genres(e: Experiment) -> float:
    per_genre = _get(e.details, "track_mean.f1")
    if isinstance(per_genre, Mapping) and per_genre:
        return float(len(per_genre))
    return _first(e.metrics.get("dataset"), "n_genres")


COLUMNS: dict[str, Callable[[Experiment], Any]] = {
    "experiment": lambda e: e.name,
    "rev": lambda e: e.rev[:7],
    "kind": lambda e: e.kind,
    "recipe": lambda e: str(e.params.get("recipe") or ""),
    "dataset": lambda e: dataset_label(e.params),
    "split": lambda e: split_label(e.params, leaky=e.leaky,
                                   counts=e.metrics.get("split_details") or e.metrics.get("split")),
    "leaky": lambda e: e.leaky,
    "variant": lambda e: str(_get(e.params, "variant.name", "?")),
    "features": lambda e: features_label(e.params),
    "model": lambda e: str(_get(e.params, "model.name", "?")),
    "slice_s": lambda e: _num(_get(e.params, "slicing.length_s")),
    "seeds": lambda e: len(_get(e.params, "train.seeds") or [0]),
    "slice_accuracy": lambda e: _first(e.evaluation, "slice_acc", "slice.accuracy"),
    "track_accuracy": lambda e: _first(e.evaluation, "acc", "track_mean.accuracy"),
    "track_vote_accuracy": lambda e: _first(e.details or e.evaluation, "track_vote.accuracy"),
    "macro_f1": lambda e: _first(e.evaluation, "f1", "track_mean.macro_f1"),
    "ci95_low": lambda e: _first(e.evaluation, "acc_lo", "track_mean.accuracy_ci95.low", "track_accuracy_ci95.low"),
    "ci95_high": lambda e: _first(e.evaluation, "acc_hi", "track_mean.accuracy_ci95.high",
                                  "track_accuracy_ci95.high"),
    "f1_low": lambda e: _first(e.evaluation, "f1_lo"),
    "f1_high": lambda e: _first(e.evaluation, "f1_hi"),
    "seeds_std": lambda e: _first(e.details or e.evaluation, "per_seed.track_mean_accuracy_std",
                                  "over_seeds.track_accuracy_std"),
    "n_test_tracks": lambda e: _first(e.evaluation, "tracks", "n_tracks"),
    "n_test_slices": lambda e: _first(e.details or e.evaluation, "n_slices"),
    "n_genres": _n_genres,
    "timestamp": lambda e: e.timestamp or "",
}
"""Column name -> how to read it from an :class:`Experiment` (the headline of
``metrics/eval.json``, its details where the report read them, or an older layout).
Accuracies are fractions (track accuracy: mean probability over a track's slices, of the seeds'
ensemble; ``ci95_*``: its 95% interval as evaluate gives it, Wilson on an artist-cluster-adjusted
sample size; ``seeds_std``: the std of the single seeds' track accuracies, NaN for one seed)."""

# params summarised by the columns above; other params that vary go to the `other` column
_SHOWN = ("recipe", "conf_digest", "dataset.name", "dataset.n_tracks_per_genre", "dataset.duration_s",
          "dataset.genres", "dataset.split", "split.method", "split.group_by", "split.fold", "split.n_folds",
          "variant.name", "variant.separator", "variant.channels", "features.name", "features.n_mfcc",
          "features.n_mels", "features.deltas", "model.name", "slicing.length_s", "train.seeds")
# sort order of the table before ranking
_ORDER = ["dataset", "leaky", "split", "features", "variant", "model", "slice_s", "seeds", "other", "timestamp"]


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: json.dumps(node) if isinstance(node, (list, dict)) else node}


_GROUPS = ("dataset", "features", "model", "variant")   # keys under these depend on the chosen option


def _other_params(experiments: Sequence[Experiment]) -> list[str]:
    """Per experiment, ``key=value`` of the params that vary but have no column of their own.

    A setting of a config group option (``model.C``, ``features.stats``) is compared only
    among experiments that chose the same option, so that a sweep over models does not list
    every model's hyperparameters.
    """
    flat = [_flatten(e.params) for e in experiments]
    choice = [{g: str(_get(e.params, f"{g}.name")) for g in _GROUPS} for e in experiments]
    keys = sorted({k for f in flat for k in f} - set(_SHOWN))
    out = []
    for f, ch in zip(flat, choice):
        parts = []
        for k in keys:
            group = k.split(".", 1)[0]
            peers = [g for g, gch in zip(flat, choice) if group not in ch or gch[group] == ch[group]]
            if len({json.dumps(g.get(k), default=str) for g in peers}) > 1:
                parts.append(f"{k}={f.get(k, '(unset)')}")
        out.append(" ".join(parts))
    return out


def _configuration(e: Experiment) -> str:
    """The experiment's configuration (its params, less what does not change a result)."""
    return json.dumps({k: v for k, v in e.params.items() if k not in ("recipe", "conf_digest")}, sort_keys=True,
                      default=str)


def results_table(experiments: Sequence[Experiment]) -> pd.DataFrame:
    """One row per experiment: its setup, headline metrics and their uncertainty.

    Parameters
    ----------
    experiments : sequence of Experiment

    Returns
    -------
    table : pd.DataFrame
        The columns of :data:`COLUMNS` plus ``other`` (params that vary between the
        experiments but have no column of their own) and ``config`` (the configuration, for
        :func:`distinct_configurations`), sorted by setup.
    """
    rows = [{name: get(e) for name, get in COLUMNS.items()} for e in experiments]
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table.insert(table.columns.get_loc("seeds") + 1, "other", _other_params(experiments) if rows else [])
    table["config"] = [_configuration(e) for e in experiments]
    if len(table):
        # the full mix first: separated variants read as changes from it
        table = table.sort_values(_ORDER, kind="stable",
                                  key=lambda c: c.replace("normal", "") if c.name == "variant" else c)
        table = table.reset_index(drop=True)
    return table


def distinct_configurations(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep the newest run of each configuration (a baseline commit and its copy run as an
    experiment, or one configuration run again, are one row).

    Returns
    -------
    kept, dropped : pd.DataFrame
        The rows kept (in the table's order) and the older runs left out.
    """
    if len(table) == 0:
        return table, table.iloc[:0]
    newest_first = table.assign(_t=table["timestamp"].replace("", "9999")).sort_values("_t", ascending=False,
                                                                                      kind="stable")
    keep = ~newest_first["config"].duplicated()
    kept_index = newest_first.index[keep.to_numpy()]
    return table.loc[table.index.isin(kept_index)], table.loc[~table.index.isin(kept_index)]


def comparison_group(row: Mapping) -> str:
    """Rows evaluated on the same test tracks can be paired: same dataset and split (and size)."""
    n = row.get("n_test_tracks")
    size = f" · {int(n)} test tracks" if isinstance(n, (int, float)) and np.isfinite(n) else ""
    return f"{row['dataset']} · {row['split']}{size}"


RANK_COLUMNS = ("group", "rank", "diff", "diff_low", "diff_high", "p_value", "p_holm", "paired_n")
"""Columns :func:`rank_table` adds (``diff*``: accuracy minus the group's best, on paired
predictions; ``p_*``: McNemar's exact p-value of that difference, raw and Holm-corrected over
every comparison of the table; ``paired_n``: the tracks compared)."""


def rank_table(table: pd.DataFrame, predictions: Mapping[str, pd.DataFrame | None] | None = None, *,
               n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Rank the rows within each comparison group and compare each with the group's best.

    Parameters
    ----------
    table : pd.DataFrame
        Output of :func:`results_table` (usually after :func:`distinct_configurations`).
    predictions : mapping, optional
        ``rev`` (7 characters, as in the table) -> that experiment's track predictions
        (``plots/predictions.csv``); a row without them gets its rank but no paired difference.
    n_boot, seed : int
        Resamples and seed of the paired bootstrap intervals.

    Returns
    -------
    ranked : pd.DataFrame
        The table sorted by group, then by track accuracy (best first), with
        :data:`RANK_COLUMNS` added.
    """
    from genrelab.experiments.compare import CompareError, compare_predictions, holm

    predictions = predictions or {}
    out = table.copy()
    for col in RANK_COLUMNS[2:]:
        out[col] = math.nan
    out["group"] = [comparison_group(r) for _, r in out.iterrows()]
    out["rank"] = 0
    if len(out) == 0:
        return out
    group_order = list(dict.fromkeys(out.sort_values(["leaky", "group"], kind="stable")["group"]))
    out["_g"] = out["group"].map({g: i for i, g in enumerate(group_order)})
    out = out.sort_values(["_g", "track_accuracy"], ascending=[True, False], kind="stable",
                          na_position="last").drop(columns="_g").reset_index(drop=True)
    for _, idx in out.groupby("group", sort=False).groups.items():
        rows = list(idx)
        out.loc[rows, "rank"] = out.loc[rows, "track_accuracy"].rank(ascending=False, method="min").fillna(
            len(rows)).astype(int).to_numpy()
        best = rows[0]
        out.loc[best, "diff"] = 0.0
        best_pred = predictions.get(out.loc[best, "rev"])
        for r in rows[1:]:
            pred = predictions.get(out.loc[r, "rev"])
            if best_pred is None or pred is None:
                continue
            try:
                res = compare_predictions(
                    best_pred,
                    pred,
                    names=(out.loc[best, "experiment"], out.loc[r, "experiment"]),
                    n_boot=n_boot,
                    seed=seed,
                )
            except CompareError as exc:
                log.info("%s is not paired with %s: %s", out.loc[r, "experiment"], out.loc[best, "experiment"], exc)
                continue
            out.loc[r, ["diff", "diff_low", "diff_high", "p_value", "paired_n"]] = [
                res.difference, res.diff_low, res.diff_high, res.p_value, res.n]
    out["p_holm"] = holm(out["p_value"].to_numpy(float))
    out["rank"] = out["rank"].astype(int)
    return out


def _pct(x: float) -> str:
    return "–" if not np.isfinite(x) else f"{100 * x:.1f}"


def _ci(low: float, high: float) -> str:
    return "" if not (np.isfinite(low) and np.isfinite(high)) else f" [{_pct(low)}, {_pct(high)}]"


def _pts(x: float) -> str:
    return f"{100 * x:+.1f}".replace("+0.0", "0.0").replace("-0.0", "0.0")


def _diff_cell(r: pd.Series) -> str:
    if r["rank"] == 1 and r.get("diff") == 0.0 and not np.isfinite(r.get("p_value", math.nan)):
        return "best"
    if not np.isfinite(r.get("diff_low", math.nan)):
        return "–"
    return f"{_pts(r['diff'])} [{_pts(r['diff_low'])}, {_pts(r['diff_high'])}]"


def _p_cell(r: pd.Series) -> str:
    p = r.get("p_holm", math.nan)
    if not np.isfinite(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


MARKDOWN_COLUMNS: dict[str, tuple[str, Callable[[pd.Series], str]]] = {
    "#": ("rank", lambda r: str(int(r["rank"])) if r.get("rank", 0) else ""),
    "Experiment": ("experiment", lambda r: r["experiment"]),
    "Dataset": ("dataset", lambda r: r["dataset"]),
    "Split": ("split", lambda r: f"**{r['split']}**" if r["leaky"] else r["split"]),
    "Variant": ("variant", lambda r: r["variant"]),
    "Features": ("features", lambda r: r["features"]),
    "Model": ("model", lambda r: r["model"]),
    "Slice s": ("slice_s", lambda r: _fmt_num(r["slice_s"])),
    "Seeds": ("seeds", lambda r: str(r["seeds"])),
    "Test n": ("n_test_tracks", lambda r: "–" if not np.isfinite(r["n_test_tracks"]) else str(int(r["n_test_tracks"]))),
    "Acc. % [95% CI]": ("track_accuracy", lambda r: _pct(r["track_accuracy"]) + _ci(r["ci95_low"], r["ci95_high"])),
    "Δ vs #1 [95% CI]": ("diff_low", _diff_cell),
    "p Holm": ("p_holm", _p_cell),
    "F1 %": ("macro_f1", lambda r: _pct(r["macro_f1"])),
    "± sd seeds": ("seeds_std", lambda r: "–" if not np.isfinite(r["seeds_std"]) else f"± {_pct(r['seeds_std'])}"),
    "Slice %": ("slice_accuracy", lambda r: _pct(r["slice_accuracy"])),
}
"""Markdown header -> (the table column it shows, cell text of a row). Setup columns whose
value all rows of a group share are stated once above the group's table instead."""

WRAP = 100   # prose lines of results.md; its tables are as wide as their cells (about 100 for a typical sweep)
_SETUP = ("dataset", "split", "variant", "features", "model", "slice_s", "seeds", "n_test_tracks")
_OPTIONAL = ("seeds_std", "diff_low", "p_holm")   # shown only where some row has a value


def _aligned(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    right = [h not in ("Experiment", "Dataset", "Split", "Variant", "Features", "Model") for h in header]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":") if r else (":" + "-" * (w + 1)) for w, r in zip(widths, right)) + "|"
    return [line(header), sep] + [line(r) for r in rows]


def _shared(rows: pd.DataFrame) -> str:
    labels = {"dataset": lambda v: v, "split": lambda v: f"split {v}", "variant": lambda v: f"variant {v}",
              "features": lambda v: f"features {v}", "model": lambda v: f"model {v}",
              "slice_s": lambda v: f"{_fmt_num(v)} s slices", "seeds": lambda v: f"{v} seed{'' if v == 1 else 's'}",
              "n_test_tracks": lambda v: f"{int(v)} test tracks" if np.isfinite(v) else "test size unknown"}
    return ", ".join(labels[k](rows[k].iloc[0]) for k in _SETUP if rows[k].astype(str).nunique() == 1)


def markdown_table(table: pd.DataFrame) -> str:
    """The ranked results as aligned GitHub Markdown, one table per comparison group.

    Parameters
    ----------
    table : pd.DataFrame
        Output of :func:`rank_table` (or of :func:`results_table`, then ranked here without
        paired differences).

    Returns
    -------
    text : str
        Per group: what all its rows share, then its rows best first (rank, the settings that
        vary, track accuracy with its 95% interval, the paired difference to the best row
        with its interval and Holm-corrected McNemar p-value, macro-F1, slice accuracy); then
        the other params that vary, per experiment, and a legend.
    """
    if "rank" not in table:
        table = rank_table(table)
    lines: list[str] = []
    others = []
    for _group, rows in table.groupby("group", sort=False):
        keep = [h for h, (col, _) in MARKDOWN_COLUMNS.items()
                if not (col in _SETUP and rows[col].astype(str).nunique() == 1)
                and not (col in _OPTIONAL and not np.isfinite(pd.to_numeric(rows[col], errors="coerce")).any())]
        cells = [[MARKDOWN_COLUMNS[h][1](r) for h in keep] for _, r in rows.iterrows()]
        lines += [*textwrap.wrap(f"**{_shared(rows)}**", WRAP), ""] + _aligned(keep, cells) + [""]
        others += [line for _, r in rows.iterrows() if r.get("other")
                   for line in textwrap.wrap(f"- {r['experiment']}: {r['other']}", WRAP, subsequent_indent="  ")]
    if others:
        lines += ["Other settings that vary:", "", *others, ""]
    lines += textwrap.wrap(
        "Accuracies in percent on the test split, of the model that ships (the ensemble of its training "
        "seeds; under kfold with all folds, each track predicted by the fold that held it out), ranked "
        "within each group of experiments evaluated on the same test tracks. Acc.: track accuracy "
        "(argmax of the mean slice probability per track) with its 95% interval (Wilson, the sample size "
        "adjusted for tracks of one artist being alike). Δ vs #1: accuracy minus the group's best, in "
        "percentage points, on paired track predictions, with a paired bootstrap 95% interval; p Holm: "
        "McNemar's exact test of that difference, Holm-corrected over every comparison in this report. "
        "F1: track macro-F1. ± sd seeds: std of the single seeds' track accuracies. Slice: slice "
        "accuracy. Split: the grouping actually made, with how many tracks were grouped by artist and "
        "how many (no known artist) by track.", WRAP)
    if "leaky" in table and table["leaky"].any():
        lines += [""] + textwrap.wrap(
            "**LEAKY** rows used a slice-level random split: slices of one track are in train and test, so "
            "their scores are inflated and must not be compared with the others.", WRAP)
    return "\n".join(lines) + "\n"
