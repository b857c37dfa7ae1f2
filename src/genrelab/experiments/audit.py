"""Leakage audit: how much does a slice-level random split inflate one setup's score?

The same features/model configuration is run as DVC experiments under

* ``split=leaky``: slices assigned to train/valid/test at random, so slices of one track
  land on both sides (the split many published GTZAN results used);
* ``split=grouped``: whole artists (tracks) per split, genres stratified;
* the dataset's official split where :data:`~genrelab.experiments.labels.OFFICIAL_SPLITS` names one (GTZAN's
  fault-filtered split of Kereliuk, Sturm & Larsen; FMA's artist-filtered split; also for their
  feature tables);

and the gap (leaky minus honest accuracy, in points) is reported as a table. Where the features
have one row per track (a 30-s feature table, pooled embeddings), no slice can leak: the
"leaky" split is then a random split of tracks that ignores artists, and the report says so.
Experiments are
named ``audit-<digest>-<split>`` from the overrides, so running the same audit again reuses the
finished experiments of the current commit (``--force`` runs them again).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from genrelab.config import ConfigError, compose
from genrelab.experiments.dvc import DvcError, MetricFiles, dvc
from genrelab.experiments.expshow import Experiment, attach_details, collect_experiments
from genrelab.experiments.labels import OFFICIAL_SPLITS, dataset_key
from genrelab.experiments.recipes import queue_experiments, start_queue, wait_for
from genrelab.experiments.tables import results_table

__all__ = ["AUDIT_SPLITS", "audit_plan", "audit_names", "run_audit", "audit_table",
           "audit_markdown", "audit_command", "one_row_per_track"]

log = logging.getLogger(__name__)

AUDIT_SPLITS: dict[str, list[str]] = {
    "leaky": ["split=leaky"],
    "grouped": ["split=grouped"],
}
"""Split every audit runs -> its overrides. ``leaky`` is the one measured against the others."""

LEAKY = "leaky"


def audit_plan(overrides: Sequence[str] = (), *, config_dir: str | os.PathLike = "conf") -> dict[str, list[str]]:
    """The experiments of an audit: split name -> full list of overrides.

    Parameters
    ----------
    overrides : sequence of str
        The configuration under audit (``features=mel``, ``model=rf`` ...); it must not choose
        the split.
    config_dir : path
        Hydra config folder (to learn which dataset the overrides select).

    Returns
    -------
    plan : dict
        ``leaky``, ``grouped`` and, for a dataset with an official split, its name.

    Raises
    ------
    ConfigError
        If an override sets the split, or the configuration does not compose.
    """
    for ov in overrides:
        key = ov.partition("=")[0].lstrip("+~")
        if key in ("split", "split.method"):
            raise ConfigError(f"override {ov!r}: the audit chooses the split itself "
                              f"({', '.join(AUDIT_SPLITS)} and the dataset's official one)")
    try:
        params = compose(list(overrides), config_dir=config_dir)
    except Exception as exc:  # hydra raises several unrelated types
        raise ConfigError(f"overrides {list(overrides)} do not compose: {exc}") from exc
    plan = {name: [*overrides, *ovs] for name, ovs in AUDIT_SPLITS.items()}
    official = OFFICIAL_SPLITS.get(dataset_key(params.get("dataset", {})))
    if official is not None:
        plan[official.name] = [*(o for o in overrides if not o.startswith("dataset.split=")), *official.overrides]
    return plan


def audit_names(overrides: Sequence[str], plan: dict[str, list[str]]) -> dict[str, str]:
    """Deterministic experiment names: ``audit-<8 hex digits of the overrides>-<split>``."""
    digest = hashlib.sha1("\n".join(sorted(overrides)).encode()).hexdigest()[:8]
    return {split: f"audit-{digest}-{split.replace('_', '-')}" for split in plan}


def run_audit(overrides: Sequence[str] = (), *, repo: str | os.PathLike = ".", config_dir: str | os.PathLike = "conf",
              force: bool = False, jobs: int = 1, timeout_s: float | None = None) -> dict[str, Experiment]:
    """Run (or reuse) the audit's experiments on the current commit and collect them.

    Parameters
    ----------
    overrides : sequence of str
        The configuration under audit.
    repo : path
        Repository root.
    config_dir : path
        Hydra config folder, relative to ``repo`` unless absolute.
    force : bool
        Run again even where a finished experiment of the same name exists.
    jobs : int
        Queue workers (1 is the reliable choice).
    timeout_s : float, optional
        Give up waiting after this many seconds.

    Returns
    -------
    experiments : dict
        Split name -> finished experiment.

    Raises
    ------
    DvcError
        If an experiment of the audit failed (the message says how to read its log).
    """
    plan = audit_plan(overrides, config_dir=Path(repo) / config_dir)
    names = audit_names(overrides, plan)
    have = {e.name: e for e in collect_experiments(repo, commits=False)}
    stale = [n for n in names.values() if n in have and force]
    if stale:
        dvc(["exp", "remove", *stale], repo=repo)
    todo = [s for s in plan if force or names[s] not in have]
    for s in plan:
        if s not in todo:
            log.info("reusing experiment %s (%s split); --force runs it again", names[s], s)
    if todo:
        for s in todo:
            queue_experiments(plan[s], repo=repo, name=names[s])
        start_queue(repo=repo, jobs=jobs)
        states = wait_for([names[s] for s in todo], repo=repo, timeout_s=timeout_s)
        failed = [n for n, st in states.items() if st != "Success"]
        if failed:
            raise DvcError(f"audit experiment(s) failed: {failed}; read `dvc queue logs <name>`")
        have = {e.name: e for e in collect_experiments(repo, commits=False)}
    missing = [names[s] for s in plan if names[s] not in have]
    if missing:
        raise DvcError(f"audit experiment(s) {missing} finished but `dvc exp show` does not list them with metrics")
    files = MetricFiles.from_dvc_yaml(repo)
    found = attach_details([have[names[s]] for s in plan], files=files, repo=repo)   # the split's counts, for its label
    return dict(zip(plan, found))


def audit_table(experiments: dict[str, Experiment]) -> pd.DataFrame:
    """One row per split, with the gap of the leaky split's accuracy over each.

    Parameters
    ----------
    experiments : dict
        Split name -> experiment (from :func:`run_audit`); must hold ``leaky``.

    Returns
    -------
    table : pd.DataFrame
        ``split``, ``split_label``, ``experiment``, ``rev``, ``slice_accuracy``,
        ``track_accuracy``, ``ci95_low``, ``ci95_high`` (the track accuracy's interval),
        ``macro_f1``, ``n_test_tracks``, ``n_test_slices``, and ``slice_gap`` / ``track_gap``:
        leaky minus this split's accuracy (fractions; 0 for the leaky row).
    """
    if LEAKY not in experiments:
        raise ValueError(f"an audit needs the {LEAKY!r} experiment; got {sorted(experiments)}")
    splits = list(experiments)
    base = results_table([experiments[s] for s in splits])
    base = base.set_index("experiment").loc[[experiments[s].name for s in splits]].reset_index()
    table = pd.DataFrame({
        "split": splits, "split_label": base["split"], "experiment": base["experiment"], "rev": base["rev"],
        "features": base["features"], "variant": base["variant"], "model": base["model"],
        "slice_accuracy": base["slice_accuracy"], "track_accuracy": base["track_accuracy"],
        "ci95_low": base["ci95_low"], "ci95_high": base["ci95_high"], "macro_f1": base["macro_f1"],
        "n_test_tracks": base["n_test_tracks"], "n_test_slices": base["n_test_slices"],
    })
    leaky = table.loc[table["split"] == LEAKY].iloc[0]
    table["slice_gap"] = leaky["slice_accuracy"] - table["slice_accuracy"]
    table["track_gap"] = leaky["track_accuracy"] - table["track_accuracy"]
    return table


def _pct(x: float) -> str:
    return "–" if not np.isfinite(x) else f"{100 * x:.1f}"


def _pts(x: float) -> str:
    return "–" if not np.isfinite(x) else f"{100 * x:+.1f}"


def one_row_per_track(table: pd.DataFrame) -> bool:
    """Whether the leaky experiment had one feature row per track (then no slice can leak)."""
    leaky = table.loc[table["split"] == LEAKY]
    return bool(len(leaky)) and bool((leaky["n_test_slices"] == leaky["n_test_tracks"]).all())


def audit_markdown(table: pd.DataFrame, overrides: Sequence[str] = ()) -> str:
    """The audit as Markdown: the setup, one row per split, and the gaps in points."""
    first = table.iloc[0]
    setup = f"features {first['features']}, variant {first['variant']}, model {first['model']}"
    lines = [f"# Leakage audit: {setup}", "",
             f"Overrides: `{' '.join(overrides) or '(defaults)'}`", "",
             "| Split | Experiment | Slice acc. | Track acc. | Track acc. 95% CI | Macro-F1 | Test tracks "
             "| Leaky gap, slice (pts) | Leaky gap, track (pts) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        split = f"**{r['split_label']}**" if r["split"] == LEAKY else r["split_label"]
        ci = "–" if not np.isfinite(r["ci95_low"]) else f"[{_pct(r['ci95_low'])}, {_pct(r['ci95_high'])}]"
        gap_s, gap_t = ("(reference)", "(reference)") if r["split"] == LEAKY else (_pts(r["slice_gap"]),
                                                                                   _pts(r["track_gap"]))
        lines.append(f"| {split} | {r['experiment']} ({r['rev']}) | {_pct(r['slice_accuracy'])} | "
                     f"{_pct(r['track_accuracy'])} | {ci} | {_pct(r['macro_f1'])} | {int(r['n_test_tracks'])} "
                     f"| {gap_s} | {gap_t} |")
    lines += ["", ("Accuracies in percent on each split's test set (track accuracy: mean probability; its 95% "
                   "CI: Wilson, cluster-adjusted for tracks of one artist). Gap: leaky accuracy minus this "
                   "split's, in percentage points.")]
    if one_row_per_track(table):
        lines += ["", ("**These features have one row per track, so no slice can leak**: the 'leaky' split is a "
                       "random split of whole tracks that ignores artists. Its gap over the grouped and official "
                       "splits measures how much tracks of one artist on both sides help (artist leakage) plus "
                       "the noise between two different test sets, not slice leakage.")]
    else:
        lines += ["", ("Under the leaky split the test slices' tracks also have slices in the training set, so "
                       "its test 'tracks' are not held out at all.")]
    return "\n".join(lines) + "\n"


def audit_command(argv: list[str]) -> int:
    """``genrelab audit-leakage``: one configuration under leaky and honest splits, and the gap."""
    from genrelab.cli import describe
    from genrelab.io import write_text

    p = argparse.ArgumentParser(prog="genrelab audit-leakage", description=describe(audit_command))
    p.add_argument("-S", "--set-param", dest="overrides", action="append", default=[], metavar="OVERRIDE",
                   help="the configuration under audit, e.g. -S features=mel -S model=rf (not the split)")
    p.add_argument("--out-dir", default="reports", help="folder of leakage_audit.md and leakage_audit.csv")
    p.add_argument("--force", action="store_true", help="run the experiments again even if they exist")
    p.add_argument("--dry-run", action="store_true", help="print the experiments only")
    p.add_argument("-j", "--jobs", type=int, default=1, help="queue workers (1 is the reliable choice)")
    p.add_argument("--timeout", type=float, default=None, help="seconds to wait for the experiments")
    p.add_argument("--conf", default="conf", help="Hydra config folder")
    p.add_argument("--repo", default=".", help="repository root")
    args = p.parse_args(argv)
    logging.basicConfig(level=os.environ.get("GENRELAB_LOG", "INFO"), format="%(levelname)s: %(message)s")
    try:
        if args.dry_run:
            plan = audit_plan(args.overrides, config_dir=Path(args.repo) / args.conf)
            names = audit_names(args.overrides, plan)
            for s, ovs in plan.items():
                print(f"{names[s]}: dvc exp run --queue -n {names[s]} " + " ".join(f"-S {o}" for o in ovs))
            return 0
        exps = run_audit(args.overrides, repo=args.repo, config_dir=args.conf, force=args.force, jobs=args.jobs,
                         timeout_s=args.timeout)
        table = audit_table(exps)
    except (ConfigError, DvcError, TimeoutError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = audit_markdown(table, args.overrides)
    out = Path(args.repo) / args.out_dir
    write_text(out / "leakage_audit.md", text)
    write_text(out / "leakage_audit.csv", table.to_csv(index=False))
    print(text)
    print(f"wrote {out / 'leakage_audit.md'}\nwrote {out / 'leakage_audit.csv'}")
    return 0
