"""DVC through its command line, and the files of a run as ``dvc.yaml`` names them.

Commands run as ``python -m dvc`` of this interpreter, so the DVC that ``genrelab`` was
installed with is the one used: :func:`dvc` runs one (a failure raises :class:`DvcError`,
with the fix where :data:`DVC_FIXES` knows it), :func:`exp_show_json` is
``dvc exp show --json``. :class:`MetricFiles` reads, from the stage commands of
``dvc.yaml``, where the metrics, details and predictions files that reports read are.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DvcError", "DVC_FIXES", "explain_dvc_error", "dvc", "exp_show_json", "PARAMS_FILE", "MetricFiles"]


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


PARAMS_FILE = "params.yaml"   # DVC's parameters file (what `genrelab params` writes)

# report file -> (stage of dvc.yaml, option of its cmd that names the file)
_FILE_SOURCES: dict[str, tuple[str, str]] = {
    "eval": ("evaluate", "--metrics"),
    "eval_details": ("evaluate", "--details"),
    "predictions": ("evaluate", "--tracks"),
    "train": ("train", "--metrics"),
    "dataset": ("prepare", "--metrics"),
    "split": ("split", "--metrics"),
    "split_details": ("split", "--details"),
}


@dataclass(frozen=True)
class MetricFiles:
    """The files of a pipeline run that reports read, where ``dvc.yaml``'s stage commands write them
    (the paths are defined there only). Each is a path relative to the repository root.

    Attributes
    ----------
    eval, eval_details, predictions : str
        The ``evaluate`` stage's ``--metrics`` (headline), ``--details`` and ``--tracks`` files.
    train : str
        The ``train`` stage's ``--metrics``.
    dataset : str
        The ``prepare`` stage's ``--metrics``.
    split, split_details : str
        The ``split`` stage's ``--metrics`` and ``--details`` (the split actually made).
    """

    eval: str
    eval_details: str
    predictions: str
    train: str
    dataset: str
    split: str
    split_details: str

    @classmethod
    def from_dvc_yaml(cls, repo: str | os.PathLike = ".") -> MetricFiles:
        """Read the paths from the stage commands of ``<repo>/dvc.yaml``.

        Raises
        ------
        DvcError
            If ``dvc.yaml`` is missing or a stage command does not name one of the files.
        """
        import yaml

        path = Path(repo) / "dvc.yaml"
        try:
            stages = yaml.safe_load(path.read_text())["stages"]
        except (OSError, TypeError, KeyError, yaml.YAMLError) as exc:
            raise DvcError(f"{path}: cannot read its stages ({exc}); run from the repository root or pass "
                           "--repo") from exc
        found = {}
        for key, (stage, option) in _FILE_SOURCES.items():
            cmd = (stages.get(stage) or {}).get("cmd", "")
            args = shlex.split(" ".join(cmd) if isinstance(cmd, list) else str(cmd))
            if option not in args[:-1]:
                raise DvcError(f"{path}: the cmd of stage {stage!r} has no `{option} PATH`, which is where "
                               f"reports read the {key} file")
            found[key] = args[args.index(option) + 1]
        return cls(**found)

    def by_path(self) -> dict[str, str]:
        """File path -> its attribute name (the key of :attr:`Experiment.metrics`)."""
        return {getattr(self, key): key for key in _FILE_SOURCES}
