"""Recipes and sweeps: named grids of DVC experiments, queued and waited for.

A *recipe* is a Hydra experiment config ``conf/experiment/<name>.yaml`` (``# @package _global_``
plus only what changes) whose sweep axes sit in Hydra's own ``hydra.sweeper.params`` node, which
composition leaves out of ``params.yaml``. :func:`load_recipe` reads it and :func:`check_recipe`
composes its grid; :func:`queue_experiments`, :func:`start_queue` and :func:`wait_for` queue the
``dvc exp run --queue -S +experiment=<name> -S 'axis=a,b'`` grid, start one worker and wait.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from genrelab.config import ConfigError
from genrelab.experiments.dvc import DvcError, dvc
from genrelab.experiments.labels import _get

__all__ = ["Recipe", "list_recipes", "load_recipe", "check_recipe", "queue_experiments", "start_queue",
           "queue_states", "wait_for"]

log = logging.getLogger(__name__)

RECIPE_DIR = "experiment"                   # config group of the recipes, under conf/
PENDING = ("Queued", "Running")              # states of `dvc queue status` that are not final


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


_WORKERS = re.compile(r"Worker status: (\d+) active, (\d+) idle")


def queue_states(*, repo: str | os.PathLike = ".") -> dict[str, str]:
    """Experiment name -> state (``Queued``, ``Running``, ``Success``, ``Failed``) from ``dvc queue status``."""
    return _queue_status(repo)[0]


def _queue_status(repo: str | os.PathLike) -> tuple[dict[str, str], int]:
    """``dvc queue status``: the states of the experiments, and how many queue workers there are."""
    states, workers = {}, 0
    for line in dvc(["queue", "status"], repo=repo).stdout.splitlines()[1:]:
        parts = line.split()
        found = _WORKERS.search(line)
        if found:
            workers = int(found.group(1)) + int(found.group(2))
        elif len(parts) >= 4:
            states[parts[1]] = parts[-1]
    return states, workers


RESTARTS = 3
"""Times :func:`wait_for` starts a queue worker again when DVC's has stopped with experiments
still queued (its filesystem broker can read a message half-written, log a ``JSONDecodeError``
and shut the worker down: seen in this project's test suite)."""


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

    Notes
    -----
    When no queue worker is left while some of ``names`` are still queued (DVC's worker can
    stop early, see :data:`RESTARTS`), one worker is started again, at most :data:`RESTARTS`
    times.
    """
    from genrelab.progress import progress_bar

    names = list(names)
    t0 = time.monotonic()
    bar = progress_bar(total=len(names), desc="experiments", unit="exp", disable=not progress)
    restarts, idle_polls = 0, 0
    try:
        while True:
            states, workers = _queue_status(repo)
            mine = {n: states.get(n, "Unknown") for n in names}   # Unknown: removed from the queue
            done = sum(s not in PENDING for s in mine.values())
            bar.update(done - bar.n)
            if done == len(names):
                return mine
            # queued work, nothing running and no worker, twice in a row: DVC's worker has stopped
            idle_polls = idle_polls + 1 if workers == 0 and "Running" not in mine.values() else 0
            if idle_polls >= 2 and restarts < RESTARTS:
                restarts += 1
                log.warning("the DVC queue has no worker left but %d experiment(s) still queued; starting one "
                            "again (%d of %d)", len(names) - done, restarts, RESTARTS)
                start_queue(repo=repo, jobs=1)
                idle_polls = 0
            if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                raise TimeoutError(f"experiments still unfinished after {timeout_s:.0f} s: "
                                   f"{ {n: s for n, s in mine.items() if s in PENDING} }")
            time.sleep(poll_s)
    finally:
        bar.close()
