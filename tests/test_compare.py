"""McNemar's test on paired track predictions, and reading predictions at git revisions."""
from __future__ import annotations

import shutil
import subprocess
from math import comb
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from genrelab.experiments.compare import (
    CompareError,
    TrackSetMismatch,
    compare_command,
    compare_predictions,
    holm,
    mcnemar_exact,
    paired_difference_ci,
    read_predictions,
    resolve_rev,
)

GENRES = ["classical", "disco", "metal", "reggae"]


def _exact(b: int, c: int) -> float:
    """Reference: two-sided exact binomial p-value, summed by hand."""
    n, k = b + c, min(b, c)
    return min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2 ** n)


@pytest.mark.parametrize("b, c, expected", [
    (0, 0, 1.0),                       # no discordant pair: no evidence
    (0, 5, 0.0625),                    # 2 / 2**5
    (5, 0, 0.0625),                    # symmetric
    (1, 9, 22 / 1024),                 # 2 * (1 + 10) / 2**10
    (3, 3, 1.0),
    (2, 8, 2 * (1 + 10 + 45) / 1024),  # 0.109375
    (0, 1, 1.0),
])
def test_mcnemar_exact_known_values(b, c, expected):
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_exact_matches_binomial_sum_and_is_symmetric():
    for b in range(0, 15):
        for c in range(0, 15):
            assert mcnemar_exact(b, c) == pytest.approx(_exact(b, c), rel=1e-9)
            assert mcnemar_exact(b, c) == mcnemar_exact(c, b)


@pytest.mark.parametrize("b, c", [(-1, 3), (2.5, 1), (True, 2), ("3", 1)])
def test_mcnemar_rejects_non_counts(b, c):
    with pytest.raises(ValueError, match="count"):
        mcnemar_exact(b, c)


def _predictions(correct: np.ndarray, *, ids: list[str] | None = None, shift: int = 1) -> pd.DataFrame:
    """Track predictions that are right exactly where ``correct`` is True."""
    n = len(correct)
    ids = ids or [f"{GENRES[i % 4]}.{i:05d}" for i in range(n)]
    actual = [GENRES[i % 4] for i in range(n)]
    wrong = [GENRES[(i + shift) % 4] for i in range(n)]
    predicted = [a if ok else w for a, ok, w in zip(actual, correct, wrong)]
    return pd.DataFrame({"track_id": ids, "actual": actual, "predicted": predicted,
                         "predicted_vote": predicted, "confidence": 0.5})


def test_compare_counts_discordant_tracks_and_p_value():
    # 20 tracks: both right on 10, only A right on 1, only B right on 7, both wrong on 2
    a = np.array([1] * 10 + [1] * 1 + [0] * 7 + [0] * 2, dtype=bool)
    b = np.array([1] * 10 + [0] * 1 + [1] * 7 + [0] * 2, dtype=bool)
    r = compare_predictions(_predictions(a), _predictions(b, shift=2))
    assert (r.n, r.correct_a, r.correct_b, r.only_a, r.only_b) == (20, 11, 17, 1, 7)
    assert r.difference == pytest.approx(0.30)
    assert r.p_value == pytest.approx(2 * (1 + 8) / 2 ** 8)   # 0.0703125


def test_the_difference_comes_with_a_paired_interval():
    a = np.array([1] * 10 + [1] * 1 + [0] * 7 + [0] * 2, dtype=bool)
    b = np.array([1] * 10 + [0] * 1 + [1] * 7 + [0] * 2, dtype=bool)
    r = compare_predictions(_predictions(a), _predictions(b, shift=2), n_boot=4000)
    assert r.diff_low < r.difference < r.diff_high
    assert 0.0 < r.diff_low < 0.15 and 0.45 < r.diff_high < 0.6       # +30 points, 8 discordant of 20


def test_paired_interval_is_narrower_than_unpaired_and_respects_groups():
    rng = np.random.default_rng(1)
    a = rng.random(200) < 0.7
    b = a.copy()
    b[np.flatnonzero(~a)[:10]] = True                    # B fixes 10 of A's errors, breaks none
    low, high = paired_difference_ci(a, b, n_boot=2000, seed=0)
    assert low > 0 and high < 0.1                          # a clear +5 points
    assert paired_difference_ci(a, b, n_boot=2000, seed=0) == (low, high)   # seeded
    groups = np.repeat(np.arange(20), 10)                  # 20 "artists" of 10 tracks: wider
    g_low, g_high = paired_difference_ci(a, b, n_boot=2000, seed=0, groups=groups)
    assert g_high - g_low >= high - low - 1e-9
    with pytest.raises(ValueError, match="equal-length"):
        paired_difference_ci(a, b[:-1])


def test_holm_step_down():
    assert holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.001]).tolist() == pytest.approx([0.5, 0.002])
    out = holm([np.nan, 0.02, 0.9])                        # NaN: no test, not counted
    assert np.isnan(out[0]) and out[1:].tolist() == pytest.approx([0.04, 0.9])
    assert holm([]).size == 0


def test_compare_aligns_tracks_by_id_not_by_row_order():
    a = _predictions(np.array([1, 1, 0, 0, 1, 0], dtype=bool))
    b = a.sample(frac=1.0, random_state=3).reset_index(drop=True)
    r = compare_predictions(a, b)
    assert (r.only_a, r.only_b, r.p_value) == (0, 0, 1.0)


def test_compare_vote_level_reads_the_vote_column():
    a = _predictions(np.ones(4, dtype=bool))
    b = a.copy()
    b["predicted_vote"] = ["disco", "metal", "reggae", "classical"]   # all wrong by vote
    assert compare_predictions(a, b, level="mean").only_a == 0
    assert compare_predictions(a, b, level="vote").only_a == 4


def test_compare_refuses_different_track_sets():
    a = _predictions(np.ones(6, dtype=bool))
    b = _predictions(np.ones(6, dtype=bool), ids=[f"x.{i}" for i in range(3)] + list(a["track_id"][3:]))
    with pytest.raises(TrackSetMismatch, match="different test tracks .*3 in common"):
        compare_predictions(a, b, names=("exp-a", "exp-b"))


def test_compare_refuses_a_subset_of_tracks():
    a = _predictions(np.ones(6, dtype=bool))
    with pytest.raises(TrackSetMismatch, match="6 vs 4"):
        compare_predictions(a, a.iloc[:4])


def test_compare_refuses_disagreeing_true_labels():
    a = _predictions(np.ones(4, dtype=bool))
    b = a.copy()
    b.loc[0, "actual"] = "metal"
    with pytest.raises(TrackSetMismatch, match="true genre"):
        compare_predictions(a, b)


def test_compare_rejects_bad_tables():
    a = _predictions(np.ones(4, dtype=bool))
    with pytest.raises(CompareError, match="lack column"):
        compare_predictions(a.drop(columns="predicted"), a)
    with pytest.raises(CompareError, match="appear twice"):
        compare_predictions(pd.concat([a, a.iloc[:1]]), a)
    with pytest.raises(CompareError, match="level"):
        compare_predictions(a, a, level="median")


# -- reading predictions at revisions ------------------------------------------------------------

def _git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t.invalid", "PATH": "/usr/bin:/bin:/usr/local/bin"}
    return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def repo(tmp_path) -> Path:
    """A git repository with two commits of predictions; the second is also an 'experiment' ref."""
    _git(tmp_path, "init", "-q", "-b", "main")
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")  # where the stages write their files
    path = tmp_path / "plots/predictions.csv"
    path.parent.mkdir()
    path.write_text(_predictions(np.array([1, 1, 1, 0, 0, 1, 1, 1], dtype=bool)).to_csv(index=False))
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-q", "-m", "a")
    first = _git(tmp_path, "rev-parse", "HEAD")
    path.write_text(_predictions(np.array([0, 0, 1, 1, 1, 1, 1, 1], dtype=bool)).to_csv(index=False))
    _git(tmp_path, "commit", "-q", "-am", "b")
    second = _git(tmp_path, "rev-parse", "HEAD")
    _git(tmp_path, "update-ref", f"refs/exps/{first[:2]}/{first[2:]}/tawny-ruse", second)
    _git(tmp_path, "reset", "-q", "--hard", first)
    return tmp_path


def test_resolve_rev_accepts_git_revisions_experiment_names_and_workspace(repo):
    head = _git(repo, "rev-parse", "HEAD")
    assert resolve_rev("HEAD", repo=repo) == head
    assert resolve_rev(head[:7], repo=repo) == head
    assert resolve_rev("tawny-ruse", repo=repo) != head
    assert resolve_rev("workspace", repo=repo) == "workspace"
    with pytest.raises(CompareError, match="neither a git revision nor an experiment name"):
        resolve_rev("no-such-exp", repo=repo)


def test_read_predictions_at_a_revision(repo):
    exp = resolve_rev("tawny-ruse", repo=repo)
    at_exp = read_predictions(exp, repo=repo, path="plots/predictions.csv")
    at_head = read_predictions("HEAD", repo=repo, path="plots/predictions.csv")
    assert list(at_exp["track_id"]) == list(at_head["track_id"])
    assert (at_exp["predicted"] == at_exp["actual"]).sum() == 6
    with pytest.raises(CompareError, match="not in commit"):
        read_predictions("HEAD", repo=repo, path="plots/nothing.csv")


def test_compare_command_prints_difference_and_p_value(repo, capsys):
    assert compare_command(["HEAD", "tawny-ruse", "--repo", str(repo)]) == 0
    out = capsys.readouterr().out
    assert "8 common test tracks" in out
    assert "difference B - A: +0.0 points" in out and "paired bootstrap 95% CI [" in out
    assert "A right & B wrong = 2, A wrong & B right = 2" in out
    assert "p = 1" in out


def test_compare_reads_the_predictions_where_dvc_yaml_says_they_are(repo, capsys):
    dvc_yaml = repo / "dvc.yaml"
    dvc_yaml.write_text(dvc_yaml.read_text().replace("--tracks plots/predictions.csv", "--tracks plots/moved.csv"))
    assert compare_command(["HEAD", "tawny-ruse", "--repo", str(repo)]) == 2
    assert "plots/moved.csv" in capsys.readouterr().err  # not in those commits: the path came from dvc.yaml
    dvc_yaml.unlink()
    assert compare_command(["HEAD", "tawny-ruse", "--repo", str(repo)]) == 2
    assert "dvc.yaml: cannot read its stages" in capsys.readouterr().err


def test_compare_command_refuses_mismatched_tracks_with_exit_2(repo, capsys):
    path = repo / "plots/predictions.csv"
    path.write_text(_predictions(np.ones(5, dtype=bool)).to_csv(index=False))
    assert compare_command(["HEAD", "workspace", "--repo", str(repo)]) == 2
    assert "different test tracks" in capsys.readouterr().err
