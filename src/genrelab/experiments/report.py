"""``genrelab report`` and ``genrelab sweep``: the commands over the experiments of a DVC repository.

``report`` collects the finished experiments (:mod:`~genrelab.experiments.expshow`), builds and
ranks the results table (:mod:`~genrelab.experiments.tables`) and writes it with its plots
(:mod:`~genrelab.experiments.plots`) through :func:`write_report`; ``sweep`` queues (and runs) a
recipe's grid (:mod:`~genrelab.experiments.recipes`). DVC is driven through its command line
(:mod:`~genrelab.experiments.dvc`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import pandas as pd

from genrelab.config import ConfigError
from genrelab.experiments.dvc import DvcError, MetricFiles
from genrelab.experiments.expshow import attach_details, collect_experiments, read_all_predictions
from genrelab.experiments.plots import accuracy_vs_slice_png, ranking_png, track_accuracy_png
from genrelab.experiments.recipes import (
    check_recipe,
    list_recipes,
    load_recipe,
    queue_experiments,
    start_queue,
    wait_for,
)
from genrelab.experiments.tables import distinct_configurations, markdown_table, rank_table, results_table

__all__ = ["REPORT_FILES", "write_report", "report_command", "sweep_command"]

log = logging.getLogger(__name__)


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
        files = MetricFiles.from_dvc_yaml(args.repo)
        exps = attach_details(collect_experiments(args.repo, all_commits=args.all_commits,
                                                  commits=not args.no_commits, workspace=args.workspace,
                                                  recipe=args.recipe, files=files), files=files, repo=args.repo)
        table, older = distinct_configurations(results_table(exps))
        if len(older):
            log.info("%d older run(s) of a configuration already in the table left out: %s", len(older),
                     ", ".join(older["experiment"]))
        table = rank_table(table, read_all_predictions(table, exps, files=files, repo=args.repo))
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
