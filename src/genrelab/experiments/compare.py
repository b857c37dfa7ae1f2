"""Is one experiment really better than another, and by how much? Paired track predictions.

Two classifiers evaluated on the *same* test tracks are compared track by track: only the
discordant tracks (one right, the other wrong) carry information. Under the null hypothesis
that both err equally often, the number ``b`` of tracks only A gets right among the ``b + c``
discordant ones is Binomial(b + c, 1/2); the exact two-sided p-value is what
:func:`mcnemar_exact` returns (valid for any count, so no chi-square approximation is needed).
How much better is the accuracy difference with a paired bootstrap 95% interval
(:func:`paired_difference_ci`: the same resampled tracks for both); over a table of
comparisons the p-values are corrected with Holm's step-down method (:func:`holm`).

Each experiment's track predictions are the ``evaluate`` stage's ``--tracks`` file of its git
commit, at the path ``dvc.yaml`` gives (:class:`~genrelab.experiments.dvc.MetricFiles`;
``plots/predictions.csv``, tracked by git, ``cache: false``), read with ``git show <rev>:<path>``;
an experiment is named by its DVC name (``tawny-ruse``), any git revision, or ``workspace``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "CompareError",
    "TrackSetMismatch",
    "McNemarResult",
    "mcnemar_exact",
    "paired_difference_ci",
    "holm",
    "compare_predictions",
    "resolve_rev",
    "read_at_rev",
    "read_predictions",
    "format_result",
    "compare_command",
]

REQUIRED = ("track_id", "actual", "predicted", "predicted_vote")
LEVELS = {"mean": "predicted", "vote": "predicted_vote"}
"""Track-level prediction -> its column: argmax of the mean probability, or majority vote."""


class CompareError(ValueError):
    """Two experiments cannot be compared (unknown revision, unreadable predictions ...)."""


class TrackSetMismatch(CompareError):
    """The two experiments were not evaluated on the same test tracks with the same labels."""


@dataclass(frozen=True)
class McNemarResult:
    """Paired comparison of two classifiers on the same tracks.

    Attributes
    ----------
    n : int
        Tracks compared.
    correct_a, correct_b : int
        Tracks each gets right.
    only_a, only_b : int
        Discordant tracks: right by A only (``b``), right by B only (``c``).
    p_value : float
        Exact two-sided McNemar p-value.
    diff_low, diff_high : float
        Paired bootstrap 95% interval of :attr:`difference` (B minus A).
    """

    n: int
    correct_a: int
    correct_b: int
    only_a: int
    only_b: int
    p_value: float
    diff_low: float = float("nan")
    diff_high: float = float("nan")

    @property
    def accuracy_a(self) -> float:
        return self.correct_a / self.n

    @property
    def accuracy_b(self) -> float:
        return self.correct_b / self.n

    @property
    def difference(self) -> float:
        """Accuracy of B minus accuracy of A."""
        return self.accuracy_b - self.accuracy_a


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts.

    Parameters
    ----------
    only_a : int >= 0
        Items that A classifies right and B wrong (``b``).
    only_b : int >= 0
        Items that B classifies right and A wrong (``c``).

    Returns
    -------
    p : float in [0, 1]
        ``P(X <= min(b, c)) + P(X >= max(b, c))`` for ``X ~ Binomial(b + c, 1/2)``; 1.0 when
        there is no discordant item.

    Raises
    ------
    ValueError
        If a count is negative or not an integer.

    Examples
    --------
    >>> mcnemar_exact(0, 5)   # 2 / 2**5
    0.0625
    """
    from scipy.stats import binomtest

    for name, v in (("only_a", only_a), ("only_b", only_b)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name}: expected a count (integer >= 0), got {v!r}")
    n = int(only_a) + int(only_b)
    if n == 0:
        return 1.0
    return float(min(1.0, binomtest(int(only_a), n, 0.5, alternative="two-sided").pvalue))


def paired_difference_ci(right_a: np.ndarray, right_b: np.ndarray, *, n_boot: int = 2000, seed: int = 0,
                         level: float = 0.95, groups: np.ndarray | None = None) -> tuple[float, float]:
    """Percentile bootstrap interval of ``accuracy(B) - accuracy(A)`` on paired predictions.

    Each resample draws tracks (or whole ``groups``, e.g. artists) with replacement and scores
    both classifiers on the *same* draw, so the interval reflects the paired design: it is
    much narrower than the two accuracies' own intervals when A and B agree on most tracks.

    Parameters
    ----------
    right_a, right_b : np.ndarray [shape=(n,)], bool
        Whether A and B classify each track correctly (same track order).
    n_boot : int > 0
        Resamples.
    seed : int
        Seed of the resampling.
    level : float in (0, 1)
        Coverage.
    groups : np.ndarray [shape=(n,)], optional
        Resampling unit of each track (tracks of one artist are not independent); each
        track is its own unit by default.

    Returns
    -------
    low, high : float
        Bounds of the difference, as fractions (``0.05`` = 5 points).

    Raises
    ------
    ValueError
        If the arrays differ in length or are empty.
    """
    a = np.asarray(right_a, dtype=float)
    b = np.asarray(right_b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"right_a and right_b must be equal-length, non-empty 1-d arrays, got {a.shape} and {b.shape}")
    if n_boot < 1 or not 0 < level < 1:
        raise ValueError(f"need n_boot >= 1 and 0 < level < 1, got {n_boot} and {level}")
    rng = np.random.default_rng(seed)
    d = b - a
    if groups is None:
        draws = rng.integers(0, len(d), size=(n_boot, len(d)))
        diffs = d[draws].mean(axis=1)
    else:
        codes, inverse = np.unique(np.asarray(groups).astype(str), return_inverse=True)
        sums = np.bincount(inverse, weights=d, minlength=len(codes))
        counts = np.bincount(inverse, minlength=len(codes)).astype(float)
        draws = rng.integers(0, len(codes), size=(n_boot, len(codes)))
        diffs = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(diffs, alpha)), float(np.quantile(diffs, 1 - alpha))


def holm(p_values: np.ndarray | list[float]) -> np.ndarray:
    """Holm's step-down correction of a family of p-values (controls the family-wise error).

    Parameters
    ----------
    p_values : array-like [shape=(m,)]
        Raw p-values; NaN entries (no test) are left as NaN and not counted in ``m``.

    Returns
    -------
    adjusted : np.ndarray [shape=(m,)]
        ``min(1, max_{j <= i} (m - j + 1) p_(j))`` in the original order.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    scaled = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = scaled
    return out


def _check_table(df: pd.DataFrame, name: str, column: str) -> pd.DataFrame:
    missing = [c for c in ("track_id", "actual", column) if c not in df]
    if missing:
        raise CompareError(f"{name}: predictions lack column(s) {missing}; have {list(df.columns)}")
    dup = df["track_id"][df["track_id"].duplicated()].unique()
    if len(dup):
        raise CompareError(f"{name}: {len(dup)} track id(s) appear twice, e.g. {list(dup[:3])}")
    return df.set_index(df["track_id"].astype(str))


def compare_predictions(a: pd.DataFrame, b: pd.DataFrame, *, level: str = "mean", names: tuple[str, str] = ("A", "B"),
                        n_boot: int = 2000, seed: int = 0) -> McNemarResult:
    """McNemar's test of two sets of track-level predictions over the same test tracks.

    Parameters
    ----------
    a, b : pd.DataFrame
        Track predictions (``plots/predictions.csv``): ``track_id``, ``actual``, ``predicted``
        (mean probability) and ``predicted_vote`` (majority vote).
    level : {'mean', 'vote'}
        Which track-level prediction to compare.
    names : tuple of str
        Names of A and B in error messages.
    n_boot, seed : int
        Resamples and seed of the paired bootstrap interval of the difference.

    Returns
    -------
    result : McNemarResult

    Raises
    ------
    TrackSetMismatch
        If the two were evaluated on different tracks, or disagree on a track's true genre.
    CompareError
        If a table lacks a column, repeats a track, or is empty.
    """
    if level not in LEVELS:
        raise CompareError(f"level: unknown choice {level!r}; valid choices: {', '.join(LEVELS)}")
    col = LEVELS[level]
    ta, tb = _check_table(a, names[0], col), _check_table(b, names[1], col)
    sa, sb = set(ta.index), set(tb.index)
    if sa != sb:
        only_a, only_b = sorted(sa - sb), sorted(sb - sa)
        raise TrackSetMismatch(
            f"{names[0]} and {names[1]} were evaluated on different test tracks ({len(sa)} vs {len(sb)}; "
            f"{len(sa & sb)} in common; only in {names[0]}: {len(only_a)} {only_a[:3]}, only in {names[1]}: "
            f"{len(only_b)} {only_b[:3]}). McNemar's test needs paired predictions of the same tracks: "
            "compare experiments with the same dataset and split (a leaky split's test tracks differ too).")
    if not sa:
        raise CompareError(f"{names[0]} and {names[1]}: no test tracks to compare")
    tb = tb.loc[ta.index]
    differ = ta["actual"].astype(str).to_numpy() != tb["actual"].astype(str).to_numpy()
    if differ.any():
        ex = list(ta.index[differ][:3])
        raise TrackSetMismatch(f"{names[0]} and {names[1]} disagree on the true genre of {int(differ.sum())} "
                               f"track(s), e.g. {ex}: not the same dataset")
    ra = ta[col].astype(str).to_numpy() == ta["actual"].astype(str).to_numpy()
    rb = tb[col].astype(str).to_numpy() == tb["actual"].astype(str).to_numpy()
    only_a, only_b = int((ra & ~rb).sum()), int((~ra & rb).sum())
    low, high = paired_difference_ci(ra, rb, n_boot=n_boot, seed=seed)
    return McNemarResult(n=len(ra), correct_a=int(ra.sum()), correct_b=int(rb.sum()), only_a=only_a,
                         only_b=only_b, p_value=mcnemar_exact(only_a, only_b), diff_low=low, diff_high=high)


def _git(args: list[str], repo: str | os.PathLike) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)


def resolve_rev(ref: str, *, repo: str | os.PathLike = ".") -> str:
    """Commit id of a git revision or of a DVC experiment name; ``'workspace'`` stays as is.

    Parameters
    ----------
    ref : str
        ``workspace``, a git revision (``HEAD``, a branch, a commit id), or an experiment
        name as ``dvc exp show`` lists it (stored under ``refs/exps/``).
    repo : path

    Returns
    -------
    rev : str
        A full commit id, or ``'workspace'``.

    Raises
    ------
    CompareError
        If nothing matches, or an experiment name is ambiguous (the message lists the matches).
    """
    if ref == "workspace":
        return ref
    proc = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], repo)
    if proc.returncode == 0:
        return proc.stdout.strip()
    refs = _git(["for-each-ref", "--format=%(objectname) %(refname)", "refs/exps/"], repo)
    if refs.returncode != 0:
        raise CompareError(f"{repo}: not a git repository ({refs.stderr.strip()})")
    matches = [line.split(" ", 1) for line in refs.stdout.splitlines()
               if line.rsplit("/", 1)[-1] == ref and "/celery/" not in line]
    if len(matches) == 1:
        return matches[0][0]
    if len(matches) > 1:
        raise CompareError(f"experiment name {ref!r} is ambiguous: {[m[1] for m in matches]}; "
                           "pass one of their commit ids instead")
    raise CompareError(f"{ref!r} is neither a git revision nor an experiment name of {Path(repo).resolve()} "
                       "(see `dvc exp show`)")


def read_at_rev(path: str, rev: str, *, repo: str | os.PathLike = ".") -> str:
    """Text of a git-tracked file at a commit (``git show rev:path``), or in the workspace."""
    if rev == "workspace":
        full = Path(repo) / path
        if not full.is_file():
            raise CompareError(f"{full}: no such file in the workspace")
        return full.read_text(encoding="utf-8")
    proc = _git(["show", f"{rev}:{path}"], repo)
    if proc.returncode != 0:
        raise CompareError(f"{path} is not in commit {rev[:7]} ({proc.stderr.strip()}); was its pipeline run "
                           "to the end, and is the file tracked by git (`cache: false`)?")
    return proc.stdout


def read_predictions(rev: str, *, path: str, repo: str | os.PathLike = ".") -> pd.DataFrame:
    """Track-level predictions of the experiment at ``rev``: its file ``path`` (the evaluate stage's
    ``--tracks``, see :func:`read_at_rev`)."""
    return pd.read_csv(io.StringIO(read_at_rev(path, rev, repo=repo)), dtype={"track_id": str})


def _eval_info(rev: str, repo: str | os.PathLike, eval_path: str) -> tuple[bool, int]:
    """(leaky, number of seeds) of the experiment at ``rev``, as far as its files tell."""
    import yaml

    leaky, seeds = False, 1
    try:
        leaky = "leaky" in json.loads(read_at_rev(eval_path, rev, repo=repo))
    except (CompareError, json.JSONDecodeError):
        pass
    try:
        params = yaml.safe_load(read_at_rev("params.yaml", rev, repo=repo)) or {}
        seeds = len(params.get("train", {}).get("seeds") or [0])
    except (CompareError, yaml.YAMLError, AttributeError):
        pass
    return leaky, seeds


def format_result(result: McNemarResult, names: tuple[str, str], *, level: str = "mean") -> str:
    """The comparison as a few aligned lines of text."""
    w = max(len(n) for n in names)
    diff_tracks = result.correct_b - result.correct_a
    verdict = ("significant at the 5% level" if result.p_value < 0.05 else
               "not significant at the 5% level")
    return "\n".join([
        f"track-level predictions ({'mean probability' if level == 'mean' else 'majority vote'}), "
        f"{result.n} common test tracks",
        f"  A {names[0]:<{w}}  accuracy {100 * result.accuracy_a:5.1f}%  ({result.correct_a}/{result.n})",
        f"  B {names[1]:<{w}}  accuracy {100 * result.accuracy_b:5.1f}%  ({result.correct_b}/{result.n})",
        f"  difference B - A: {100 * result.difference:+.1f} points ({diff_tracks:+d} tracks), paired bootstrap "
        f"95% CI [{100 * result.diff_low:+.1f}, {100 * result.diff_high:+.1f}]",
        f"  discordant tracks: A right & B wrong = {result.only_a}, A wrong & B right = {result.only_b}",
        f"  McNemar exact (binomial) p = {result.p_value:.4g}  ({verdict})",
    ])


def compare_command(argv: list[str]) -> int:
    """``genrelab compare A B``: accuracy difference of two experiments, its paired 95% interval, McNemar's p-value."""
    from genrelab.cli import describe

    p = argparse.ArgumentParser(prog="genrelab compare", description=describe(compare_command))
    p.add_argument("a", help="experiment name, git revision, or 'workspace'")
    p.add_argument("b", help="experiment name, git revision, or 'workspace'")
    p.add_argument("--level", choices=sorted(LEVELS), default="mean",
                   help="track prediction: mean probability (default) or majority vote")
    p.add_argument("--path", default=None,
                   help="track predictions file inside each revision (default: the evaluate stage's --tracks in "
                        "dvc.yaml)")
    p.add_argument("--repo", default=".", help="repository root")
    args = p.parse_args(argv)
    from genrelab.experiments.dvc import DvcError, MetricFiles

    try:
        files = MetricFiles.from_dvc_yaml(args.repo)
        path = args.path or files.predictions
        revs = [resolve_rev(r, repo=args.repo) for r in (args.a, args.b)]
        tables = [read_predictions(r, repo=args.repo, path=path) for r in revs]
        names = tuple(f"{n} ({r[:7]})" if r != "workspace" else n for n, r in zip((args.a, args.b), revs))
        result = compare_predictions(*tables, level=args.level, names=names)  # type: ignore[arg-type]
    except (CompareError, DvcError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_result(result, names, level=args.level))  # type: ignore[arg-type]
    for n, r in zip(names, revs):
        leaky, seeds = _eval_info(r, args.repo, files.eval)
        if leaky:
            print(f"  note: {n} used a LEAKY split; its accuracy is inflated")
        if seeds > 1:
            print(f"  note: {n} trained {seeds} seeds; {path} holds the first seed's predictions, "
                  f"so its accuracy here can differ from {files.eval} (the mean over seeds)")
    return 0
