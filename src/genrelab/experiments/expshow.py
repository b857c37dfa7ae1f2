"""``dvc exp show`` as experiment records.

:func:`collect_experiments` runs ``dvc exp show --json`` and :func:`parse_exp_show` turns its
output into :class:`Experiment` records, skipping (and logging) failed, queued and unfinished
experiments; :func:`attach_details` adds the details files (tracked by git, no DVC metric) and
:func:`read_all_predictions` reads each experiment's track predictions. Which file is which comes
from ``dvc.yaml`` (:class:`~genrelab.experiments.dvc.MetricFiles`).

Notes
-----
Metrics under a leaky split are nested under a ``leaky`` key in the evaluate stage's metrics
file; :attr:`Experiment.leaky` says so.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from genrelab.experiments.dvc import PARAMS_FILE, MetricFiles, exp_show_json

__all__ = ["Experiment", "Skipped", "parse_exp_show", "collect_experiments", "attach_details",
           "read_all_predictions"]

log = logging.getLogger(__name__)


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
        The contents of its metrics files, by their :class:`~genrelab.experiments.dvc.MetricFiles`
        name (``eval``, ``train``, ``dataset``, ``split``; ``eval_details`` and ``split_details``
        where :func:`attach_details` read them).
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
        return "leaky" in (self.metrics.get("eval") or {})

    @property
    def evaluation(self) -> dict:
        """The evaluate stage's headline metrics with the ``leaky`` nesting removed."""
        m = self.metrics.get("eval") or {}
        return m.get("leaky", m)

    @property
    def details(self) -> dict:
        """The evaluate stage's details where :func:`attach_details` read them (else ``{}``), unnested."""
        m = self.metrics.get("eval_details") or {}
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


def _why_skip(entry: Mapping, state: str | None, files: MetricFiles) -> str | None:
    """The reason an exp-show revision cannot be reported, or None."""
    if entry.get("error"):
        err = entry["error"]
        msg = err.get("msg") if isinstance(err, Mapping) else str(err)
        return f"failed ({msg}); its metrics, if any, are its baseline's"
    if state not in (None, "success"):
        return f"state {state!r} (not finished)"
    data = entry.get("data") or {}
    metrics = _files_data(data.get("metrics"))
    if not metrics.get(files.eval):
        return f"no {files.eval} (pipeline not run to the end at this revision)"
    if not _files_data(data.get("params")).get(PARAMS_FILE):
        return f"no {PARAMS_FILE}"
    return None


def _record(entry: Mapping, *, name: str, baseline: str, kind: str, files: MetricFiles) -> Experiment:
    data = entry.get("data") or {}
    return Experiment(name=name, rev=str(entry.get("rev")), baseline=baseline, kind=kind,
                      timestamp=data.get("timestamp"),
                      params=_files_data(data.get("params")).get(PARAMS_FILE, {}),
                      metrics={files.by_path()[path]: m for path, m in _files_data(data.get("metrics")).items()
                               if path in files.by_path()})


def parse_exp_show(data: Sequence[Mapping], *, files: MetricFiles, commits: bool = True,
                   workspace: bool = False) -> tuple[list[Experiment], list[Skipped]]:
    """Turn ``dvc exp show --json`` output into experiment records.

    Parameters
    ----------
    data : list of dict
        What :func:`~genrelab.experiments.dvc.exp_show_json` returns.
    files : MetricFiles
        Which metrics file is which (``MetricFiles.from_dvc_yaml(repo)``).
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
                why = _why_skip(base, None, files)
                if why:
                    skipped.append(Skipped("workspace", rev, why))
                else:
                    found.append(_record(base, name="workspace", baseline="workspace", kind="workspace", files=files))
            continue
        if commits:
            why = _why_skip(base, None, files)
            name = base.get("name") or rev[:7]
            if why is None:
                found.append(_record(base, name=name, baseline=rev, kind="commit", files=files))
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
            why = _why_skip(tip, state, files)
            if why:
                skipped.append(Skipped(name, str(tip.get("rev")), why))
            else:
                found.append(_record(tip, name=name, baseline=rev, kind="experiment", files=files))
    return found, skipped


def collect_experiments(repo: str | os.PathLike = ".", *, all_commits: bool = False, commits: bool = True,
                        workspace: bool = False, recipe: str | None = None,
                        files: MetricFiles | None = None) -> list[Experiment]:
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
    files : MetricFiles, optional
        Which metrics file is which; read from ``<repo>/dvc.yaml`` by default.

    Returns
    -------
    experiments : list of Experiment
    """
    files = files or MetricFiles.from_dvc_yaml(repo)
    found, skipped = parse_exp_show(exp_show_json(repo, all_commits=all_commits), files=files, commits=commits,
                                    workspace=workspace)
    for s in skipped:
        log.info("skipped %s (%s): %s", s.name, s.rev[:7], s.reason)
    if recipe is not None:
        found = [e for e in found if e.params.get("recipe") == recipe]
    return found


DETAILS = ("eval_details", "split_details")
"""Details the report reads beside the headline metrics (:class:`~genrelab.experiments.dvc.MetricFiles`
names): evaluate's (per-seed statistics, per-genre scores) and the split's (the counts its label gives)."""


def attach_details(experiments: Sequence[Experiment], *, files: MetricFiles,
                   repo: str | os.PathLike = ".") -> list[Experiment]:
    """The experiments with the :data:`DETAILS` files of their revision added to their metrics.

    The details are tracked by git but are no DVC metric, so ``dvc exp show`` does not list
    them; they are read with ``git show`` (from disk for the workspace).
    """
    import dataclasses

    from genrelab.experiments.compare import CompareError, read_at_rev

    out = []
    for e in experiments:
        found = {}
        for key in DETAILS:
            try:
                found[key] = json.loads(read_at_rev(getattr(files, key), e.rev, repo=repo))
            except (CompareError, json.JSONDecodeError):
                continue        # an experiment from before the details files existed
        out.append(dataclasses.replace(e, metrics={**e.metrics, **found}) if found else e)
    return out


def read_all_predictions(table: pd.DataFrame, experiments: Sequence[Experiment], *, files: MetricFiles,
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
            out[rev] = read_predictions(e.rev, repo=repo, path=files.predictions)
        except (CompareError, ValueError) as exc:
            log.info("no paired comparison for %s: %s", e.name, exc)
    return out
