"""Experiments of a DVC repository: queue named sweeps, collect the results, report them.

Everything here talks to DVC through its command line (``dvc exp show --json``,
``dvc exp run --queue``, ``dvc queue start``, ``dvc queue status``), run as
``python -m dvc`` of this interpreter, so the DVC that ``genrelab`` was installed with is the
one used.

Three layers, each usable on its own:

* **Collecting.** :func:`exp_show_json` runs ``dvc exp show --json``; :func:`parse_exp_show`
  turns its output into :class:`Experiment` records, skipping (and logging) failed, queued and
  unfinished experiments.
* **Reporting.** :func:`results_table` builds one row per experiment from :data:`COLUMNS`
  (a registry of column extractors); :func:`distinct_configurations` keeps the newest run of
  each configuration; :func:`rank_table` ranks the rows within each group evaluated on the same
  test tracks and compares each with the best on paired predictions (difference, paired
  bootstrap interval, McNemar p-value Holm-corrected over the table); :func:`markdown_table`,
  :func:`ranking_png`, :func:`track_accuracy_png` and :func:`accuracy_vs_slice_png` render it;
  :func:`write_report` writes all of them atomically.
* **Sweeping.** A *recipe* is a Hydra experiment config ``conf/experiment/<name>.yaml``
  (``# @package _global_`` plus only what changes) whose sweep axes sit in Hydra's own
  ``hydra.sweeper.params`` node, which composition leaves out of ``params.yaml``.
  :func:`load_recipe` reads it and :func:`check_recipe` composes its grid;
  :func:`queue_experiments`, :func:`start_queue` and :func:`wait_for` queue the
  ``dvc exp run --queue -S +experiment=<name> -S 'axis=a,b'`` grid, start one worker and wait.

Notes
-----
Metrics under a leaky split are nested under a ``leaky`` key in ``metrics/eval.json``; every
row built from them has ``leaky=True`` and its split says so in capitals.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genrelab.config import ConfigError

__all__ = [
    "DvcError",
    "DVC_FIXES",
    "explain_dvc_error",
    "Experiment",
    "Skipped",
    "dvc",
    "exp_show_json",
    "parse_exp_show",
    "collect_experiments",
    "COLUMNS",
    "results_table",
    "distinct_configurations",
    "rank_table",
    "attach_details",
    "read_all_predictions",
    "markdown_table",
    "ranking_png",
    "track_accuracy_png",
    "accuracy_vs_slice_png",
    "write_report",
    "Recipe",
    "list_recipes",
    "load_recipe",
    "check_recipe",
    "queue_experiments",
    "start_queue",
    "queue_states",
    "wait_for",
    "report_command",
    "sweep_command",
]

log = logging.getLogger(__name__)

EVAL_FILE = "metrics/eval.json"
EVAL_DETAILS_FILE = "metrics/details/eval.json"     # every score of evaluate (not a DVC metric)
PREDICTIONS_FILE = "plots/predictions.csv"
TRAIN_FILE = "metrics/train.json"
DATASET_FILE = "metrics/dataset.json"
SPLIT_FILE = "metrics/split.json"
SPLIT_DETAILS_FILE = "metrics/details/split.json"   # what split was made (not a DVC metric)
PARAMS_FILE = "params.yaml"
RECIPE_DIR = "experiment"                   # config group of the recipes, under conf/
PENDING = ("Queued", "Running")              # states of `dvc queue status` that are not final


class DvcError(RuntimeError):
    """A DVC command failed; the message holds the command, what to do where that is known, and DVC's output."""


DVC_FIXES: dict[str, str] = {
    "Empty git repo": "this git repository has no commit yet, and DVC experiments start from one: commit first "
                      "(git add -A && git commit -m 'first commit'), then run it again",
    "not inside of a DVC repository": "this is not a DVC repository: run it from the repository root (the folder "
                                      "with dvc.yaml), or pass --repo",
    "not inside of a Git repository": "DVC experiments need a git repository: git init, then commit the files",
    "is not a git repository": "DVC experiments need a git repository: git init, then commit the files",
    "Could not override": "a -S key that conf/ does not have: check its spelling (genrelab params --out - lists "
                          "every key), or prefix it with + to add a new one",
    "Could not find": "no such config option in conf/: the message lists the available ones",
    "Unable to acquire lock": "another DVC command is running in this repository (a queue worker?); wait for it, "
                              "or see `dvc queue status`",
    "failed to reproduce": "a stage failed: its own error is above",
}
"""A known piece of DVC's (or Hydra's) error output -> what to do about it."""

_RESOLVER_ERROR = re.compile(r"\w+ raised while resolving interpolation: (.+?)(?:\n|$)")


def explain_dvc_error(output: str) -> str | None:
    """The fix for a failed DVC command's output, where it is known.

    A setting that fails the check made while ``conf/`` is composed
    (``${genrelab_check:}``) is reported by DVC as an unexpected error; its own message,
    which names the key, is returned instead.
    """
    found = _RESOLVER_ERROR.search(output)
    if found:
        return f"{found.group(1).strip()} (conf/ did not compose, so nothing was run or queued)"
    for needle, fix in DVC_FIXES.items():
        if needle in output:
            return fix
    return None


# --------------------------------------------------------------------------------------------
# DVC plumbing
# --------------------------------------------------------------------------------------------

def dvc(args: Sequence[str], *, repo: str | os.PathLike = ".", check: bool = True,
        timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m dvc ARGS`` in ``repo`` and capture its output.

    Parameters
    ----------
    args : sequence of str
        DVC arguments, e.g. ``["exp", "show", "--json"]``.
    repo : path
        The repository root (the working directory of the command).
    check : bool
        Raise :class:`DvcError` when DVC exits non-zero.
    timeout : float, optional
        Seconds before the command is killed.

    Returns
    -------
    proc : subprocess.CompletedProcess
        With ``stdout`` and ``stderr`` as text.
    """
    cmd = [sys.executable, "-m", "dvc", *map(str, args)]
    env = dict(os.environ)
    env.setdefault("DVC_NO_ANALYTICS", "1")
    # stage scripts run as `python ...`: keep this interpreter's folder first on PATH
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # output goes through files, not pipes: `dvc queue start` leaves a worker behind that inherits
    # them, and reading a pipe to its end would wait for that worker to exit
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        done = subprocess.run(cmd, cwd=repo, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                              timeout=timeout)
        out.seek(0)
        err.seek(0)
        proc = subprocess.CompletedProcess(cmd, done.returncode, out.read(), err.read())
    if check and proc.returncode != 0:
        said = f"{proc.stdout.strip()}\n{proc.stderr.strip()}".strip()
        fix = explain_dvc_error(said)
        raise DvcError(f"`dvc {' '.join(map(str, args))}` failed (exit {proc.returncode}) in {repo}"
                       + (f": {fix}\nDVC said:\n{said}" if fix else f":\n{said}"))
    return proc


def exp_show_json(repo: str | os.PathLike = ".", *, all_commits: bool = False) -> list[dict]:
    """The output of ``dvc exp show --json`` (experiments of HEAD, or of every commit).

    Parameters
    ----------
    repo : path
        Repository root.
    all_commits : bool
        Pass ``--all-commits``: experiments of every commit, not only of HEAD.

    Returns
    -------
    data : list of dict
        One entry per baseline (``workspace`` first), each with its ``experiments``.
    """
    args = ["exp", "show", "--json"] + (["--all-commits"] if all_commits else [])
    out = dvc(args, repo=repo).stdout
    try:
        data = json.loads(out)
    except json.JSONDecodeError as exc:
        raise DvcError(f"`dvc exp show --json` printed something that is not JSON: {out[:300]!r}") from exc
    if not isinstance(data, list):
        raise DvcError(f"`dvc exp show --json`: expected a list of baselines, got {type(data).__name__}")
    return data


@dataclass(frozen=True)
class Experiment:
    """One finished experiment (or baseline commit) as ``dvc exp show`` describes it.

    Attributes
    ----------
    name : str
        Experiment name (``'tawny-ruse'``), branch name, or short commit id.
    rev : str
        Full git commit id (``'workspace'`` for the workspace).
    baseline : str
        Commit the experiment was run from (its own id for a commit).
    kind : {'experiment', 'commit', 'workspace'}
    timestamp : str or None
        ISO time of the commit.
    params : dict
        The contents of ``params.yaml``.
    metrics : dict
        Metrics file path -> its contents (``metrics/eval.json``, ``metrics/train.json`` ...).
    """

    name: str
    rev: str
    baseline: str
    kind: str
    timestamp: str | None
    params: dict = field(repr=False)
    metrics: dict = field(repr=False)

    @property
    def leaky(self) -> bool:
        """Whether its metrics were computed under a leaky split (nested under ``leaky``)."""
        return "leaky" in (self.metrics.get(EVAL_FILE) or {})

    @property
    def evaluation(self) -> dict:
        """``metrics/eval.json`` (the headline) with the ``leaky`` nesting removed."""
        m = self.metrics.get(EVAL_FILE) or {}
        return m.get("leaky", m)

    @property
    def details(self) -> dict:
        """``metrics/details/eval.json`` where :func:`attach_details` read it (else ``{}``), unnested."""
        m = self.metrics.get(EVAL_DETAILS_FILE) or {}
        return m.get("leaky", m)


@dataclass(frozen=True)
class Skipped:
    """An entry of ``dvc exp show`` that is not reported, and why."""

    name: str
    rev: str
    reason: str


def _files_data(node: Mapping | None) -> dict:
    """``{"params.yaml": {"data": {...}}}`` -> ``{"params.yaml": {...}}``, dropping files in error."""
    out = {}
    for path, entry in (node or {}).items():
        if isinstance(entry, Mapping) and isinstance(entry.get("data"), Mapping):
            out[path] = dict(entry["data"])
    return out


def _why_skip(entry: Mapping, state: str | None) -> str | None:
    """The reason an exp-show revision cannot be reported, or None."""
    if entry.get("error"):
        err = entry["error"]
        msg = err.get("msg") if isinstance(err, Mapping) else str(err)
        return f"failed ({msg}); its metrics, if any, are its baseline's"
    if state not in (None, "success"):
        return f"state {state!r} (not finished)"
    data = entry.get("data") or {}
    metrics = _files_data(data.get("metrics"))
    if not metrics.get(EVAL_FILE):
        return f"no {EVAL_FILE} (pipeline not run to the end at this revision)"
    if not _files_data(data.get("params")).get(PARAMS_FILE):
        return f"no {PARAMS_FILE}"
    return None


def _record(entry: Mapping, *, name: str, baseline: str, kind: str) -> Experiment:
    data = entry.get("data") or {}
    return Experiment(name=name, rev=str(entry.get("rev")), baseline=baseline, kind=kind,
                      timestamp=data.get("timestamp"),
                      params=_files_data(data.get("params")).get(PARAMS_FILE, {}),
                      metrics=_files_data(data.get("metrics")))


def parse_exp_show(data: Sequence[Mapping], *, commits: bool = True,
                   workspace: bool = False) -> tuple[list[Experiment], list[Skipped]]:
    """Turn ``dvc exp show --json`` output into experiment records.

    Parameters
    ----------
    data : list of dict
        What :func:`exp_show_json` returns.
    commits : bool
        Report baseline commits that hold metrics, as well as experiments.
    workspace : bool
        Report the workspace too (its results are not in any commit, so :mod:`genrelab.experiments.compare`
        cannot reread them later).

    Returns
    -------
    experiments : list of Experiment
        Finished experiments with metrics, in the order DVC lists them.
    skipped : list of Skipped
        Everything else, with the reason (failed, queued, running, no metrics).
    """
    if not isinstance(data, Sequence) or isinstance(data, (str, bytes)):
        raise ValueError(f"expected the list that `dvc exp show --json` prints, got {type(data).__name__}")
    found: list[Experiment] = []
    skipped: list[Skipped] = []
    for base in data:
        rev = str(base.get("rev"))
        if rev == "workspace":
            if workspace:
                why = _why_skip(base, None)
                if why:
                    skipped.append(Skipped("workspace", rev, why))
                else:
                    found.append(_record(base, name="workspace", baseline="workspace", kind="workspace"))
            continue
        if commits:
            why = _why_skip(base, None)
            name = base.get("name") or rev[:7]
            if why is None:
                found.append(_record(base, name=name, baseline=rev, kind="commit"))
            else:
                log.debug("commit %s not reported: %s", name, why)
        for exp in base.get("experiments") or []:
            revs = exp.get("revs") or []
            executor = exp.get("executor") or {}
            state = executor.get("state") if isinstance(executor, Mapping) else None
            name = exp.get("name") or (revs[0].get("name") if revs else None) or "?"
            if not revs:
                skipped.append(Skipped(name, "", f"state {state!r}, no revision yet"))
                continue
            tip = revs[0]   # the experiment's own commit (later ones are checkpoints of old DVC)
            why = _why_skip(tip, state)
            if why:
                skipped.append(Skipped(name, str(tip.get("rev")), why))
            else:
                found.append(_record(tip, name=name, baseline=rev, kind="experiment"))
    return found, skipped


def collect_experiments(repo: str | os.PathLike = ".", *, all_commits: bool = False, commits: bool = True,
                        workspace: bool = False, recipe: str | None = None) -> list[Experiment]:
    """Finished experiments of a repository, through ``dvc exp show --json``.

    Parameters
    ----------
    repo : path
        Repository root.
    all_commits : bool
        Experiments of every commit, not only of HEAD.
    commits, workspace : bool
        See :func:`parse_exp_show`.
    recipe : str, optional
        Keep only experiments composed with this recipe (their ``recipe`` param).

    Returns
    -------
    experiments : list of Experiment
    """
    found, skipped = parse_exp_show(exp_show_json(repo, all_commits=all_commits), commits=commits,
                                    workspace=workspace)
    for s in skipped:
        log.info("skipped %s (%s): %s", s.name, s.rev[:7], s.reason)
    if recipe is not None:
        found = [e for e in found if e.params.get("recipe") == recipe]
    return found


# --------------------------------------------------------------------------------------------
# The results table
# --------------------------------------------------------------------------------------------

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


OFFICIAL_SPLITS: dict[str, Callable[[Mapping], str | None]] = {
    "gtzan": _gtzan_official,
    "fma_small": lambda d: "official: FMA artist-filtered",
    "fma_medium": lambda d: "official: FMA artist-filtered",
    "table": lambda d: (_gtzan_official(d) if d.get("kind") == "gtzan_kaggle" else
                        "official: FMA artist-filtered" if d.get("kind") == "fma" else None),
}
"""Dataset name -> label of its official split (None where the settings select none)."""


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
    label = OFFICIAL_SPLITS.get(str(d.get("name")), lambda _: None)(d) or "official split of the dataset"
    straddle = int((counts or {}).get("n_groups_in_several_splits", 0))
    return f"{label} ({straddle} artists in several splits)" if straddle else label


def _kfold_label(s: Mapping, d: Mapping, counts: Mapping | None) -> str:
    fold = f"all {s.get('n_folds')} folds pooled" if s.get("fold") == "all" else f"{s.get('fold')}/{s.get('n_folds')}"
    return f"kfold {fold}, {_grouped_label(s, counts)}"


def _auto_label(s: Mapping, d: Mapping, counts: Mapping | None) -> str:
    if counts and "official" in counts:   # what the split stage resolved `auto` to
        return _official_label(s, d, counts) if counts["official"] else _grouped_label(s, counts)
    return OFFICIAL_SPLITS.get(str(d.get("name")), lambda _: None)(d) or _grouped_label(s, counts)


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
    return _first(e.metrics.get(DATASET_FILE), "n_genres")


COLUMNS: dict[str, Callable[[Experiment], Any]] = {
    "experiment": lambda e: e.name,
    "rev": lambda e: e.rev[:7],
    "kind": lambda e: e.kind,
    "recipe": lambda e: str(e.params.get("recipe") or ""),
    "dataset": lambda e: dataset_label(e.params),
    "split": lambda e: split_label(e.params, leaky=e.leaky,
                                   counts=e.metrics.get(SPLIT_DETAILS_FILE) or e.metrics.get(SPLIT_FILE)),
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
                res = compare_predictions(best_pred, pred, names=(out.loc[best, "experiment"], out.loc[r, "experiment"]),
                                          n_boot=n_boot, seed=seed)
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
    for group, rows in table.groupby("group", sort=False):
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


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------

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


REPORT_FILES = {
    "markdown": "results.md",
    "csv": "results.csv",
    "ranking": "ranking.png",
    "bars": "track_accuracy.png",
    "slices": "accuracy_vs_slice.png",
}


def write_report(table: pd.DataFrame, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write the ranked table (Markdown, CSV) and the plots into ``out_dir``, each atomically.

    A plot that would be degenerate is not drawn, and an older copy of it in ``out_dir`` is
    removed: ``accuracy_vs_slice.png`` needs at least two slice lengths.

    Parameters
    ----------
    table : pd.DataFrame
        Output of :func:`rank_table` (or of :func:`results_table`, ranked here).
    out_dir : path
        Created if missing.

    Returns
    -------
    paths : dict
        ``markdown``, ``csv``, ``ranking``, ``bars`` and, where drawn, ``slices`` -> written file.
    """
    from genrelab.io import write_text

    if len(table) == 0:
        raise ValueError("no finished experiments to report (run some with `dvc exp run` or `genrelab sweep`)")
    if "rank" not in table:
        table = rank_table(table)
    out = Path(out_dir)
    paths = {k: out / v for k, v in REPORT_FILES.items()}
    write_text(paths["markdown"], "# Results\n\n" + markdown_table(table))
    write_text(paths["csv"], table.drop(columns=["config"], errors="ignore").to_csv(index=False))
    ranking_png(table, paths["ranking"])
    track_accuracy_png(table, paths["bars"])
    if table["slice_s"].nunique() >= 2:
        accuracy_vs_slice_png(table, paths["slices"])
    else:
        log.info("accuracy_vs_slice.png not drawn: every experiment used one slice length")
        paths.pop("slices").unlink(missing_ok=True)
    return paths


DETAILS_FILES = (EVAL_DETAILS_FILE, SPLIT_DETAILS_FILE)
"""Details the report reads beside the headline metrics: evaluate's (per-seed statistics,
per-genre scores) and the split's (the counts its label gives)."""


def attach_details(experiments: Sequence[Experiment], *, repo: str | os.PathLike = ".") -> list[Experiment]:
    """The experiments with the :data:`DETAILS_FILES` of their revision added to their metrics.

    The details are tracked by git but are no DVC metric, so ``dvc exp show`` does not list
    them; they are read with ``git show`` (from disk for the workspace).
    """
    import dataclasses

    from genrelab.experiments.compare import CompareError, read_at_rev

    out = []
    for e in experiments:
        found = {}
        for path in DETAILS_FILES:
            try:
                found[path] = json.loads(read_at_rev(path, e.rev, repo=repo))
            except (CompareError, json.JSONDecodeError):
                continue        # an experiment from before the details files existed
        out.append(dataclasses.replace(e, metrics={**e.metrics, **found}) if found else e)
    return out


def read_all_predictions(table: pd.DataFrame, experiments: Sequence[Experiment], *,
                         repo: str | os.PathLike = ".") -> dict[str, pd.DataFrame]:
    """``rev`` (as in the table) -> track predictions of each experiment of the table that has them."""
    from genrelab.experiments.compare import CompareError, read_predictions

    by_rev = {e.rev[:7]: e for e in experiments}
    out = {}
    for rev in table["rev"]:
        e = by_rev.get(rev)
        if e is None:
            continue
        try:
            out[rev] = read_predictions(e.rev, repo=repo, path=PREDICTIONS_FILE)
        except (CompareError, ValueError) as exc:
            log.info("no paired comparison for %s: %s", e.name, exc)
    return out


# --------------------------------------------------------------------------------------------
# Recipes and sweeps
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recipe:
    """A named experiment config and the grid it is swept over.

    Attributes
    ----------
    name : str
        File stem under ``conf/experiment/``; selected with ``+experiment=<name>``.
    sweep : dict
        Override key -> comma-separated values (``{"model": "svm,rf"}``), from the recipe's
        ``hydra.sweeper.params``.
    description : str
        The comment block at the top of the file.
    """

    name: str
    sweep: dict[str, str]
    description: str = ""

    def overrides(self, extra: Sequence[str] = ()) -> list[str]:
        """``-S`` values of the sweep: the recipe, its axes, then ``extra`` (which replace axes)."""
        merged = dict(self.sweep)
        rest = []
        for ov in extra:
            key, sep, value = ov.partition("=")
            if not sep:
                raise ConfigError(f"override {ov!r}: expected key=value")
            if key.lstrip("+~") == "experiment":
                raise ConfigError(f"override {ov!r}: the recipe is chosen by name, not by an override")
            if key in merged:
                merged[key] = value
            else:
                rest.append(ov)
        return [f"+experiment={self.name}", *(f"{k}={v}" for k, v in merged.items()), *rest]

    def combinations(self, extra: Sequence[str] = ()) -> list[list[str]]:
        """Every experiment of the grid as a list of plain overrides (what DVC expands)."""
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parsed = OverridesParser.create().parse_overrides(self.overrides(extra))
        axes = []
        for ov in parsed:
            if ov.is_sweep_override():
                axes.append([f"{ov.get_key_element()}={v}" for v in ov.sweep_string_iterator()])
            else:
                axes.append([ov.input_line])
        return [list(c) for c in itertools.product(*axes)]

    def dvc_command(self, extra: Sequence[str] = ()) -> list[str]:
        """The ``dvc exp run --queue -S ...`` call that queues the grid."""
        cmd = ["dvc", "exp", "run", "--queue"]
        for ov in self.overrides(extra):
            cmd += ["-S", ov]
        return cmd


def list_recipes(config_dir: str | os.PathLike = "conf") -> list[str]:
    """Names of the recipes under ``<config_dir>/experiment/``."""
    return sorted(p.stem for p in (Path(config_dir) / RECIPE_DIR).glob("*.yaml"))


def _description(path: Path) -> str:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        if "@package" not in line:
            lines.append(line.lstrip("#").strip())
    return "\n".join(lines).strip()


def load_recipe(name: str, *, config_dir: str | os.PathLike = "conf") -> Recipe:
    """Read the recipe ``conf/experiment/<name>.yaml`` (its sweep and its description).

    Parameters
    ----------
    name : str
        Recipe name (file stem).
    config_dir : path
        The Hydra config folder.

    Returns
    -------
    recipe : Recipe

    Raises
    ------
    ConfigError
        If there is no such recipe (the message lists them), or its ``hydra.sweeper.params``
        is not a mapping. Whether it composes is :func:`check_recipe`'s job.
    """
    import yaml

    config_dir = Path(config_dir)
    path = config_dir / RECIPE_DIR / f"{name}.yaml"
    available = list_recipes(config_dir)
    if name not in available:
        raise ConfigError(f"recipe {name!r}: no {path}; valid choices: {', '.join(available) or '(none)'}")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    sweep = _get(data, "hydra.sweeper.params", {}) or {}
    if not isinstance(sweep, Mapping):
        raise ConfigError(f"{path}: hydra.sweeper.params must map override keys to comma-separated values, "
                          f"got {sweep!r}")
    return Recipe(name=name, sweep={str(k): str(v) for k, v in sweep.items()}, description=_description(path))


def check_recipe(recipe: Recipe, extra: Sequence[str] = (), *, config_dir: str | os.PathLike = "conf",
                 limit: int | None = None) -> int:
    """Compose and validate every experiment of a recipe's grid before anything is queued.

    Parameters
    ----------
    recipe : Recipe
    extra : sequence of str
        Extra overrides (see :meth:`Recipe.overrides`).
    config_dir : path
        The Hydra config folder.
    limit : int, optional
        Check only the first ``limit`` grid points.

    Returns
    -------
    n : int
        Grid points checked.

    Raises
    ------
    ConfigError
        Naming the first grid point that does not compose or holds an invalid value, and why.
    """
    from genrelab.config import compose_each

    combos = recipe.combinations(extra)[:limit]
    done = 0
    try:
        for _ in compose_each(combos, config_dir=config_dir):
            done += 1
    except ConfigError as exc:
        raise ConfigError(f"recipe {recipe.name!r}: {' '.join(combos[done])}: {exc}") from exc
    return done


_QUEUED = re.compile(r"Queued experiment '([^']+)'")


def queue_experiments(overrides: Sequence[str], *, repo: str | os.PathLike = ".", name: str | None = None) -> list[str]:
    """``dvc exp run --queue -S ...``: queue one experiment, or a grid (comma-separated values).

    Parameters
    ----------
    overrides : sequence of str
        Hydra overrides, each passed as one ``-S``.
    repo : path
    name : str, optional
        Experiment name (only for a single experiment).

    Returns
    -------
    names : list of str
        Names of the queued experiments.
    """
    args = ["exp", "run", "--queue"] + (["--name", name] if name else [])
    for ov in overrides:
        args += ["-S", ov]
    proc = dvc(args, repo=repo)
    names = _QUEUED.findall(proc.stdout + proc.stderr)
    if not names:
        raise DvcError(f"`dvc exp run --queue` queued nothing:\n{proc.stdout}\n{proc.stderr}")
    return names


def start_queue(*, repo: str | os.PathLike = ".", jobs: int = 1) -> None:
    """``dvc queue start -j JOBS`` (one worker is the reliable choice; see docs/sweeps.md)."""
    if jobs < 1:
        raise ConfigError(f"jobs: must be at least 1, got {jobs}")
    if jobs > 1:
        log.warning("dvc queue start -j %d: more than one worker is reported flaky (docs/sweeps.md)", jobs)
    dvc(["queue", "start", "-j", str(jobs)], repo=repo)


def queue_states(*, repo: str | os.PathLike = ".") -> dict[str, str]:
    """Experiment name -> state (``Queued``, ``Running``, ``Success``, ``Failed``) from ``dvc queue status``."""
    states = {}
    for line in dvc(["queue", "status"], repo=repo).stdout.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 4 and not line.startswith("Worker"):
            states[parts[1]] = parts[-1]
    return states


def wait_for(names: Iterable[str], *, repo: str | os.PathLike = ".", poll_s: float = 5.0,
             timeout_s: float | None = None, progress: bool = True) -> dict[str, str]:
    """Wait until no named queued experiment is queued or running any more.

    Parameters
    ----------
    names : iterable of str
    repo : path
    poll_s : float
        Seconds between two ``dvc queue status`` calls.
    timeout_s : float, optional
        Give up (``TimeoutError``) after this many seconds.
    progress : bool
        Show progress (a bar on a terminal, log lines otherwise) of finished experiments.

    Returns
    -------
    states : dict
        Name -> final state (``Success``, ``Failed``, or ``Unknown`` for one no longer queued).
    """
    from genrelab.progress import progress_bar

    names = list(names)
    t0 = time.monotonic()
    bar = progress_bar(total=len(names), desc="experiments", unit="exp", disable=not progress)
    try:
        while True:
            states = queue_states(repo=repo)
            mine = {n: states.get(n, "Unknown") for n in names}   # Unknown: removed from the queue
            done = sum(s not in PENDING for s in mine.values())
            bar.update(done - bar.n)
            if done == len(names):
                return mine
            if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                raise TimeoutError(f"experiments still unfinished after {timeout_s:.0f} s: "
                                   f"{ {n: s for n, s in mine.items() if s in PENDING} }")
            time.sleep(poll_s)
    finally:
        bar.close()


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------

def report_command(argv: list[str]) -> int:
    """``genrelab report``: which experiment is best, and by how much: a ranked table (Markdown, CSV) and plots."""
    from genrelab.cli import describe

    p = argparse.ArgumentParser(prog="genrelab report", description=describe(report_command))
    p.add_argument("--out-dir", default="reports", help="folder of results.md, results.csv and the PNGs")
    p.add_argument("--all-commits", action="store_true", help="experiments of every commit, not only HEAD's")
    p.add_argument("--recipe", help="only experiments composed with this recipe")
    p.add_argument("--no-commits", action="store_true", help="experiments only, not baseline commits")
    p.add_argument("--workspace", action="store_true", help="include the workspace's (uncommitted) results")
    p.add_argument("--repo", default=".", help="repository root")
    args = p.parse_args(argv)
    logging.basicConfig(level=os.environ.get("GENRELAB_LOG", "INFO"), format="%(levelname)s: %(message)s")
    try:
        exps = attach_details(collect_experiments(args.repo, all_commits=args.all_commits,
                                                  commits=not args.no_commits, workspace=args.workspace,
                                                  recipe=args.recipe), repo=args.repo)
        table, older = distinct_configurations(results_table(exps))
        if len(older):
            log.info("%d older run(s) of a configuration already in the table left out: %s", len(older),
                     ", ".join(older["experiment"]))
        table = rank_table(table, read_all_predictions(table, exps, repo=args.repo))
        paths = write_report(table, Path(args.repo) / args.out_dir)
    except (DvcError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(markdown_table(table))
    for path in paths.values():
        print(f"wrote {path}")
    return 0


def sweep_command(argv: list[str]) -> int:
    """``genrelab sweep RECIPE``: queue a recipe's grid of DVC experiments (and run it with --run)."""
    from genrelab.cli import describe

    p = argparse.ArgumentParser(prog="genrelab sweep", description=describe(sweep_command))
    p.add_argument("recipe", nargs="?", help="recipe name (conf/experiment/<name>.yaml); omit to list them")
    p.add_argument("-S", "--set-param", dest="overrides", action="append", default=[], metavar="OVERRIDE",
                   help="extra Hydra override; replaces a recipe axis of the same key (e.g. -S dataset=gtzan)")
    p.add_argument("--run", action="store_true", help="start the queue and wait for the experiments")
    p.add_argument("-j", "--jobs", type=int, default=1, help="queue workers with --run (1 is the reliable choice)")
    p.add_argument("--dry-run", action="store_true", help="print the experiments and the dvc command only")
    p.add_argument("--timeout", type=float, default=None, help="seconds to wait with --run")
    p.add_argument("--conf", default="conf", help="Hydra config folder")
    p.add_argument("--repo", default=".", help="repository root")
    args = p.parse_args(argv)
    logging.basicConfig(level=os.environ.get("GENRELAB_LOG", "INFO"), format="%(levelname)s: %(message)s")
    conf = Path(args.repo) / args.conf
    try:
        if not args.recipe:
            for name in list_recipes(conf):
                try:
                    r = load_recipe(name, config_dir=conf)
                    check_recipe(r, config_dir=conf, limit=1)
                except ConfigError as exc:
                    print(f"{name:<24}   ? experiments  {str(exc).splitlines()[0]}")
                    continue
                first = r.description.splitlines()[0] if r.description else ""
                print(f"{name:<24}{len(r.combinations()):>4} experiments  {first}")
            return 0
        recipe = load_recipe(args.recipe, config_dir=conf)
        combos = recipe.combinations(args.overrides)
        check_recipe(recipe, args.overrides, config_dir=conf)
        print(f"recipe {recipe.name}: {len(combos)} experiments")
        print("  " + " ".join(_quote(a) for a in recipe.dvc_command(args.overrides)))
        if args.dry_run:
            for c in combos:
                print("   ", " ".join(c))
            return 0
        names = queue_experiments(recipe.overrides(args.overrides), repo=args.repo)
        print(f"queued {len(names)}: {', '.join(names)}")
        if not args.run:
            print("start them with: dvc queue start -j 1   (then: dvc queue status; genrelab report)")
            return 0
        start_queue(repo=args.repo, jobs=args.jobs)
        states = wait_for(names, repo=args.repo, timeout_s=args.timeout)
    except (ConfigError, DvcError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = [n for n, s in states.items() if s != "Success"]
    print(f"{len(names) - len(failed)} succeeded, {len(failed)} failed"
          + (f" (see `dvc queue logs <name>`): {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)
