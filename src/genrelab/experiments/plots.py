"""Plots of the ranked results table (PNG, written atomically; matplotlib's Agg backend)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from genrelab.experiments.labels import _fmt_num
from genrelab.experiments.tables import _SETUP, _diff_cell, _p_cell, _pct, rank_table

__all__ = ["ranking_png", "track_accuracy_png", "accuracy_vs_slice_png"]

log = logging.getLogger(__name__)


_PLOT_KEYS = ("dataset", "split", "features", "variant", "model", "slice_s", "seeds")


def _varying(table: pd.DataFrame, keys: Iterable[str]) -> list[str]:
    return [k for k in keys if table[k].astype(str).nunique() > 1]


def _dedupe(table: pd.DataFrame) -> pd.DataFrame:
    """One row per plotted configuration (the newest), so that no two rows share a bar or point.

    Rows that differ only in params without a column of their own (``other``) collide here;
    the table lists them all.
    """
    keep = table.sort_values("timestamp", kind="stable").drop_duplicates(list(_PLOT_KEYS), keep="last")
    if len(keep) < len(table):
        log.info("plots: %d row(s) repeat a plotted configuration; the newest of each is drawn "
                 "(the table lists all)", len(table) - len(keep))
    return keep.sort_index()


_LABEL_FORMATS: dict[str, Callable[[Any], str]] = {
    "slice_s": lambda v: f"{_fmt_num(v)} s slices",
    "seeds": lambda v: f"{v} seed{'s' if v != 1 else ''}",
}


def _label(row: pd.Series, keys: Sequence[str], *, sep: str) -> str:
    return sep.join(_LABEL_FORMATS.get(k, str)(row[k]) for k in keys)


def _errors(sub: pd.DataFrame) -> tuple[np.ndarray, str]:
    """Asymmetric error bars (2, n): the 95% CI where known, else the std over seeds."""
    acc = sub["track_accuracy"].to_numpy(float)
    low, high = sub["ci95_low"].to_numpy(float), sub["ci95_high"].to_numpy(float)
    std = sub["seeds_std"].to_numpy(float)
    has_ci = np.isfinite(low) & np.isfinite(high)
    lo = np.where(has_ci, acc - low, np.where(np.isfinite(std), std, 0.0))
    hi = np.where(has_ci, high - acc, np.where(np.isfinite(std), std, 0.0))
    kind = "95% CI" if has_ci.all() else "95% CI, else ± std over seeds"
    return np.clip(np.vstack([lo, hi]), 0, None), kind


def _chance(table: pd.DataFrame) -> float | None:
    n = table["n_genres"].dropna().unique()
    return 1.0 / n[0] if len(n) == 1 and n[0] > 0 else None


_CONTEXT_FORMATS: dict[str, Callable[[Any], str]] = {
    **_LABEL_FORMATS,
    "features": lambda v: f"features {v}",
    "variant": lambda v: f"variant {v}",
}


def _context(table: pd.DataFrame, keys: Sequence[str]) -> str:
    """What all plotted rows share (shown under the title), e.g. ``synthetic ..., grouped by artist``."""
    parts = [_CONTEXT_FORMATS.get(k, str)(table[k].iloc[0]) for k in keys if table[k].astype(str).nunique() == 1]
    return ", ".join(parts)


def _save(fig, path: str | os.PathLike) -> None:
    from genrelab.io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def ranking_png(table: pd.DataFrame, path: str | os.PathLike, *,
                title: str = "Which is best, and by how much?") -> None:
    """The ranked table as a picture: accuracies with their intervals, and each row's paired
    difference to the best of its group with its interval and Holm-corrected p-value.

    One panel pair per comparison group (experiments evaluated on the same test tracks): on
    the left, track accuracy (value at the end of each bar, 95% interval as a whisker, chance
    as a dotted line); on the right, accuracy minus the group's best in percentage points
    (paired bootstrap 95% interval) and McNemar's p-value, Holm-corrected over the report.

    Parameters
    ----------
    table : pd.DataFrame
        Output of :func:`rank_table` (at least one row).
    path : path
        PNG written atomically.
    title : str
    """
    if len(table) == 0:
        raise ValueError("no experiments to plot")
    if "rank" not in table:
        table = rank_table(table)
    plt = _pyplot()
    groups = list(dict.fromkeys(table["group"]))
    sizes = [int((table["group"] == g).sum()) for g in groups]
    label_keys = {g: _varying(table[table["group"] == g], ["features", "variant", "model", "slice_s", "seeds"])
                  or ["model"] for g in groups}
    fig_h = 1.3 + sum(0.42 * n + 0.75 for n in sizes)
    fig, axes = plt.subplots(len(groups), 2, figsize=(11.0, fig_h), dpi=120, squeeze=False, layout="constrained",
                             gridspec_kw={"height_ratios": [n + 1.2 for n in sizes], "width_ratios": [3, 2]})
    for gi, group in enumerate(groups):
        rows = table[table["group"] == group]
        ax, dx = axes[gi]
        y = np.arange(len(rows))[::-1].astype(float)      # best at the top
        acc = rows["track_accuracy"].to_numpy(float)
        err, kind = _errors(rows)
        leaky = rows["leaky"].to_numpy(bool)
        colors = ["#c44e52" if lk else ("#4c72b0" if r == 1 else "#8fa9d0")
                  for lk, r in zip(leaky, rows["rank"])]
        bars = ax.barh(y, np.nan_to_num(acc), height=0.65, color=colors, edgecolor="black", linewidth=0.5)
        for bar, lk in zip(bars, leaky):
            if lk:
                bar.set_hatch("///")
        ax.errorbar(np.nan_to_num(acc), y, xerr=err, fmt="none", ecolor="black", elinewidth=1, capsize=3)
        for yi, a, hi in zip(y, acc, err[1]):
            if np.isfinite(a):
                ax.text(a + hi + 0.012, yi, f"{100 * a:.1f}%", va="center", ha="left", fontsize=9)
        chance = _chance(rows)
        if chance is not None:
            ax.axvline(chance, color="gray", linestyle=":", linewidth=1)
            ax.text(chance, y.max() + 0.55, f"chance {100 * chance:.0f}%", color="gray", fontsize=8, ha="center")
        ax.set_yticks(y, [f"#{int(r['rank'])}  {_label(r, label_keys[group], sep=' · ')}"
                          for _, r in rows.iterrows()], fontsize=9)
        ax.set_xlim(0, 1.13)
        ax.set_ylim(-0.7, len(rows) - 0.1)
        ax.xaxis.set_major_formatter(lambda v, _: f"{100 * v:.0f}%")
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
        ax.set_title(f"{group}" + (f"; shared: {_context(rows, _SETUP[2:7])}" if _context(rows, _SETUP[2:7])
                                   else ""), fontsize=9, loc="left")
        ax.set_xlabel(f"track accuracy ({kind})", fontsize=9)
        # right: paired difference to the best of the group
        d = rows["diff"].to_numpy(float)
        lo, hi = rows["diff_low"].to_numpy(float), rows["diff_high"].to_numpy(float)
        has = np.isfinite(lo) & np.isfinite(hi)
        dx.axvline(0, color="black", linewidth=0.8)
        if has.any():
            dx.errorbar(100 * d[has], y[has], xerr=[100 * (d[has] - lo[has]), 100 * (hi[has] - d[has])],
                        fmt="o", color="#4c72b0", ecolor="#4c72b0", capsize=3, markersize=5)
        span = max(5.0, float(np.nanmax(np.abs(100 * np.concatenate([lo[has], hi[has]])))) if has.any() else 5.0)
        dx.set_xlim(-1.15 * span, 0.45 * span + 6)
        for yi, (_, r) in zip(y, rows.iterrows()):
            text = _diff_cell(r) if r["rank"] == 1 and _diff_cell(r) == "best" else (
                "no paired data" if not np.isfinite(r["diff_low"]) else f"p={_p_cell(r)}")
            dx.text(0.45 * span + 5.5, yi, text, va="center", ha="right", fontsize=8,
                    color="black" if text == "best" or text.startswith("p") else "gray")
        dx.set_ylim(ax.get_ylim())
        dx.set_yticks([])
        dx.grid(axis="x", alpha=0.3)
        dx.set_axisbelow(True)
        dx.set_xlabel("Δ vs #1, points (paired 95% CI); p: McNemar, Holm", fontsize=9)
    fig.suptitle(title, fontsize=11, x=0.01, ha="left")
    _save(fig, path)
    plt.close(fig)


def track_accuracy_png(table: pd.DataFrame, path: str | os.PathLike, *,
                       title: str = "Track accuracy by features x variant x model") -> None:
    """Grouped bar chart of track accuracy: groups = features x variant, bars = models.

    Every setting that varies between rows (features, variant, dataset, split, slice length,
    seeds) is part of the group labels; settings all rows share are named under the title.
    Error bars are the 95% CI (else the std over seeds); leaky bars are hatched; a
    dashed line marks chance.

    Parameters
    ----------
    table : pd.DataFrame
        Output of :func:`results_table` (at least one row).
    path : path
        PNG written atomically.
    title : str
    """
    if len(table) == 0:
        raise ValueError("no experiments to plot")
    plt = _pyplot()
    from matplotlib.patches import Patch

    data = _dedupe(table)
    group_keys = _varying(data, ["features", "variant", "dataset", "split", "slice_s", "seeds"]) or ["features"]
    label_of = [_label(r, group_keys, sep="\n") for _, r in data.iterrows()]
    groups = list(dict.fromkeys(label_of))
    models = sorted(data["model"].unique())
    n_g, n_m = len(groups), len(models)
    width = 0.8 / n_m
    rotate = n_g > 10 or max(len(line) for g in groups for line in g.split("\n")) > 22
    shown = [g.replace("\n", " · ") for g in groups] if rotate else groups
    fig_w = min(max(6.5, 2.5 + n_g * max(0.3 * n_m + 0.3, 0.55 if rotate else 1.2)), 30.0)
    fig, ax = plt.subplots(figsize=(fig_w, 4.8), dpi=120)
    colors = plt.get_cmap("tab10")
    _, kind = _errors(data)
    handles = []
    for j, model in enumerate(models):
        mask = (data["model"] == model).to_numpy()
        sub = data[mask]
        xs = np.array([groups.index(g) for g, m in zip(label_of, mask) if m], dtype=float)
        xs += (j - (n_m - 1) / 2) * width
        err, _ = _errors(sub)
        bars = ax.bar(xs, sub["track_accuracy"], width=width * 0.9, color=colors(j % 10), label=model,
                      edgecolor="black", linewidth=0.5)
        ax.bar_label(bars, labels=[_pct(v) for v in sub["track_accuracy"]], label_type="center",
                     rotation=90 if width * 0.9 * fig_w / max(n_g, 1) < 0.35 else 0, fontsize=8, color="white",
                     fontweight="bold")
        for bar, leaky in zip(bars, sub["leaky"]):
            if leaky:
                bar.set_hatch("///")
        ax.errorbar(xs, sub["track_accuracy"], yerr=err, fmt="none", ecolor="black", elinewidth=1, capsize=3)
        handles.append(bars)
    chance = _chance(data)
    if chance is not None:
        handles.append(ax.axhline(chance, color="gray", linestyle="--", linewidth=1,
                                  label=f"chance ({100 * chance:.0f}%)"))
    if data["leaky"].any():
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="///", label="LEAKY split"))
    ax.set_xticks(range(n_g), shown, rotation=35 if rotate else 0, ha="right" if rotate else "center",
                  rotation_mode="anchor" if rotate else "default", fontsize=9)
    ax.set_xlim(-0.6, n_g - 0.4)
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(lambda v, _: f"{100 * v:.0f}%")
    ax.set_ylabel("track accuracy (test)")
    ax.set_xlabel(" / ".join(group_keys).replace("slice_s", "slice length"))
    context = _context(data, [k for k in ("features", "variant", "dataset", "split", "slice_s", "seeds")
                              if k not in group_keys])
    ax.set_title(f"{title}\n{context + '; ' if context else ''}error bars: {kind}", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(handles=handles, title="model", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    _save(fig, path)
    plt.close(fig)


def accuracy_vs_slice_png(table: pd.DataFrame, path: str | os.PathLike, *,
                          title: str = "Accuracy vs slice length") -> None:
    """Track (solid) and slice (dashed) accuracy against slice length, one colour per model.

    Where features, variant, dataset, split or seeds vary between rows they join the series'
    label. Track accuracy has error bars (95% CI, else std over seeds); series are
    nudged sideways a little so that their error bars do not hide each other.

    Parameters
    ----------
    table : pd.DataFrame
        Output of :func:`results_table` (at least one row).
    path : path
        PNG written atomically.
    title : str
    """
    if len(table) == 0:
        raise ValueError("no experiments to plot")
    plt = _pyplot()
    from matplotlib.lines import Line2D

    data = _dedupe(table)
    series_keys = ["model"] + _varying(data, ["features", "variant", "dataset", "split", "seeds"])
    label_of = np.array([_label(r, series_keys, sep=", ") for _, r in data.iterrows()], dtype=object)
    labels = list(dict.fromkeys(label_of))
    lengths = np.sort(data["slice_s"].unique())
    span = float(lengths.max() - lengths.min()) if len(lengths) > 1 else 1.0
    step = span * min(0.015, 0.1 / max(len(labels) - 1, 1))     # sideways nudge between series
    fig, ax = plt.subplots(figsize=(7.0, 4.6), dpi=120)
    colors = plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")
    _, kind = _errors(data)
    handles = []
    for i, lab in enumerate(labels):
        sub = data[label_of == lab].sort_values("slice_s")
        x = sub["slice_s"].to_numpy(float) + (i - (len(labels) - 1) / 2) * step
        err, _ = _errors(sub)
        c = colors(i % colors.N)
        leaky = " (LEAKY)" if sub["leaky"].all() and "split" not in series_keys else ""
        handles.append(ax.errorbar(x, sub["track_accuracy"], yerr=err, color=c, marker="o", linestyle="-",
                                   capsize=3, label=lab + leaky))
        ax.plot(x, sub["slice_accuracy"], color=c, marker="s", markersize=4, linestyle="--", alpha=0.7)
    chance = _chance(data)
    if chance is not None:
        handles.append(ax.axhline(chance, color="gray", linestyle=":", linewidth=1,
                                  label=f"chance ({100 * chance:.0f}%)"))
    handles += [Line2D([], [], color="none", label=""),
                Line2D([], [], color="black", marker="o", linestyle="-", label="track accuracy (mean prob.)"),
                Line2D([], [], color="black", marker="s", linestyle="--", alpha=0.7, label="slice accuracy")]
    ax.set_xticks(lengths, [_fmt_num(v) for v in lengths])
    pad = (0.1 * span if len(lengths) > 1 else 0.5) + step * (len(labels) - 1) / 2
    ax.set_xlim(lengths.min() - pad, lengths.max() + pad)
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(lambda v, _: f"{100 * v:.0f}%")
    ax.set_xlabel("slice length (s)")
    ax.set_ylabel("accuracy (test)")
    one = " (one slice length only)" if len(lengths) == 1 else ""
    context = _context(data, ["features", "variant", "dataset", "split", "seeds"])
    ax.set_title(f"{title}{one}\n{context + '; ' if context else ''}error bars: {kind} of track accuracy",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(handles=handles, title=" / ".join(series_keys), loc="upper left", bbox_to_anchor=(1.01, 1.0),
              frameon=False, fontsize=9)
    _save(fig, path)
    plt.close(fig)
