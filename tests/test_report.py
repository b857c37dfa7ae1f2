"""The results report: parsing `dvc exp show --json`, the table, the plots, and (slow) a real sweep.

``EXP_SHOW`` has the exact structure of ``dvc exp show --json --all-commits`` as DVC 3.67
printed it for a tiny repository (4 genres x 6 tracks x 6 s): the revisions, timestamps,
states and metric values are that run's; only ``deps``, ``outs`` and params sections no
report reads were left out, and the split stage's ``metrics/split.json`` (written since) added.
"""
from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import BIN, ROOT, copy_repository, repo_env, run_in

from genrelab.experiments.dvc import MetricFiles, explain_dvc_error
from genrelab.experiments.expshow import Experiment, parse_exp_show
from genrelab.experiments.labels import split_label
from genrelab.experiments.plots import accuracy_vs_slice_png, ranking_png, track_accuracy_png
from genrelab.experiments.recipes import queue_states
from genrelab.experiments.report import write_report
from genrelab.experiments.tables import (
    COLUMNS,
    RANK_COLUMNS,
    distinct_configurations,
    markdown_table,
    rank_table,
    results_table,
)

FILES = MetricFiles.from_dvc_yaml(ROOT)   # the repository's own dvc.yaml names the files the fixtures hold

GENRES = ["classical", "disco", "metal", "reggae"]
PARAMS = {
    "dataset": {"name": "synthetic", "n_tracks_per_genre": 6, "duration_s": 6.0, "sample_rate": 22050,
                "tracks_per_artist": 2, "seed": 0, "genres": GENRES},
    "split": {"method": "auto", "fractions": {"train": 0.6, "valid": 0.2, "test": 0.2}, "n_folds": 5, "fold": 0,
              "group_by": "artist"},
    "variant": {"name": "normal", "separator": "none", "channels": [["mix"]]},
    "features": {"name": "mfcc", "n_mfcc": 20, "n_mels": 128, "n_fft": 2048, "hop_length": 512, "deltas": False,
                 "stats": ["mean", "std"]},
    "model": {"name": "svm", "C": 10.0, "kernel": "rbf", "gamma": "scale", "pca": None},
    "seed": 0,
    "slicing": {"length_s": 2.0, "overlap": 0.0},
    "train": {"seeds": [0], "device": "auto"},
}
RF = {"name": "rf", "n_estimators": 300, "max_depth": None, "min_samples_leaf": 1, "pca": None}
CLASSIC = {"name": "classic", "n_fft": 2048, "hop_length": 512}
DATASET = {"n_tracks": 24, "n_genres": 4, "n_artists": 12, "hours": 0.04}
SPLIT = {"n_tracks": 24, "n_train": 14, "n_valid": 4, "n_test": 6, "n_groups": 12, "n_artists": 12,
         "n_tracks_grouped_by_artist": 24, "n_tracks_grouped_by_track": 0, "n_groups_in_several_splits": 0,
         "official": 0, "leaky": 0, "kfold": 0}


def _level(acc, f1s, macro):
    return {"accuracy": acc, "macro_f1": macro, "f1": dict(zip(GENRES, f1s))}


SVM_EVAL = {"slice": _level(0.75, [0.2857142857142857, 0.9230769230769231, 1.0, 0.625], 0.7084478021978022),
            "track_vote": _level(0.75, [0.0, 1.0, 1.0, 0.6666666666666666], 0.6666666666666666),
            "track_mean": _level(0.75, [0.0, 1.0, 1.0, 0.6666666666666666], 0.6666666666666666),
            "track_accuracy_ci95": {"low": 0.5, "high": 1.0}, "n_slices": 24, "n_tracks": 8}
PERFECT = {"slice": _level(1.0, [1.0] * 4, 1.0), "track_vote": _level(1.0, [1.0] * 4, 1.0),
           "track_mean": _level(1.0, [1.0] * 4, 1.0), "track_accuracy_ci95": {"low": 1.0, "high": 1.0},
           "n_slices": 24, "n_tracks": 8}
SVM_TRAIN = {"n_train_slices": 24, "n_valid_slices": 24, "fit_seconds": 3.204866536999816,
             "train_seconds_per_seed": 3.20487084399997}


def _params(**sections):
    p = copy.deepcopy(PARAMS)
    for key, value in sections.items():
        if isinstance(value, dict) and key in p and "name" not in value:
            p[key].update(value)
        else:
            p[key] = value
    return p


def _data(rev, timestamp, params, ev=None, train=None):
    metrics = {}
    if ev is not None:
        metrics = {"metrics/dataset.json": {"data": DATASET}, "metrics/train.json": {"data": train or SVM_TRAIN},
                   "metrics/split.json": {"data": SPLIT}, "metrics/eval.json": {"data": ev}}
    return {"rev": rev, "timestamp": timestamp, "params": {"params.yaml": {"data": params}}, "metrics": metrics,
            "meta": {}}


def _exp(name, rev, timestamp, params, ev=None, train=None, *, state="success", error=None):
    tip = {"rev": rev, "name": name, "data": _data(rev, timestamp, params, ev, train), "error": error,
           "experiments": None}
    return {"revs": [tip], "name": name,
            "executor": {"state": state, "name": "dvc-task",
                         "local": {"root": None, "log": f"/repo/.dvc/tmp/exps/run/{rev}/{rev}.out", "pid": None,
                                   "returncode": 0 if state == "success" else None, "task_id": rev}}}


EXP_SHOW = [
    {"rev": "workspace", "name": None, "data": _data("workspace", None, _params(), SVM_EVAL), "error": None,
     "experiments": None},
    {"rev": "8050357da8d91cd146d4b4e5b6a6f332cfe6ebdf", "name": "main",
     "data": _data("8050357da8d91cd146d4b4e5b6a6f332cfe6ebdf", "2026-11-24T06:31:57", _params(), SVM_EVAL),
     "error": None,
     "experiments": [
         _exp("tuned-here", "f8b77f4798964ae83a93ed01d2ad92ec1c0381f9", "2026-11-24T06:35:21",
              _params(features=CLASSIC, model=RF, recipe="separation_baselines"), PERFECT,
              {"n_train_slices": 24, "n_valid_slices": 24, "fit_seconds": 1.6570861349996449,
               "train_seconds_per_seed": 1.6570886589997826}),
         _exp("pukka-cart", "21054b985769c3a4c7b1708295a1b85e9f5d7755", "2026-11-24T06:32:08",
              _params(recipe="separation_baselines"), SVM_EVAL),
         # queued, not started: DVC lists it with its params and no metrics
         _exp("still-queued", "9b3087b3ef13e38491c1009f8826c6d6168a1283", "2026-11-24T06:39:30",
              _params(model={"name": "logreg", "C": 1.0, "max_iter": 2000, "pca": None}), state="queued"),
     ]},
    {"rev": "16ca4f086aa2e44f508066566b8705a6ed37f781", "name": None,
     "data": _data("16ca4f086aa2e44f508066566b8705a6ed37f781", "2026-11-24T06:30:35", _params(), SVM_EVAL),
     "error": None,
     "experiments": [
         _exp("audit-696226bb-grouped", "f4c22cab573e340a3eda3a88de0e66e770b7b854", "2026-11-24T06:30:56",
              _params(split={"method": "grouped"}, model=RF),
              {**PERFECT, "slice": _level(0.8333333333333334, [0.8, 0.7692307692307693, 0.9230769230769231,
                                                                0.8333333333333334], 0.8314102564102565)},
              {"n_train_slices": 24, "n_valid_slices": 24, "fit_seconds": 0.7731864190000124,
               "train_seconds_per_seed": 0.7731888509999862}),
         _exp("audit-696226bb-leaky", "6ce33304bd43f2d35605734b95998600988d31be", "2026-11-24T06:30:51",
              _params(split={"method": "leaky"}, model=RF), {"leaky": {**PERFECT, "n_slices": 15, "n_tracks": 12}},
              {"n_train_slices": 41, "n_valid_slices": 16, "fit_seconds": 1.8064920159999929,
               "train_seconds_per_seed": 1.8064951809999457}),
     ]},
    {"rev": "f5b9babae512055f581985dad8793d3b03b178ac", "name": None,
     "data": _data("f5b9babae512055f581985dad8793d3b03b178ac", "2026-11-24T06:20:58", _params(), SVM_EVAL),
     "error": None,
     "experiments": [
         _exp("newsy-pams", "e8cf22df19c1d1649cee20bdbfba7007ed8c46ff", "2026-11-24T06:21:40",
              _params(features=CLASSIC, model=RF, train={"seeds": [0, 1]}, recipe="t1"),
              {**PERFECT, "over_seeds": {"n_seeds": 2, "track_accuracy_std": 0.0, "track_accuracy_best": 1.0,
                                         "slice_accuracy_std": 0.0, "slice_accuracy_best": 1.0}},
              {"n_train_slices": 24, "n_valid_slices": 24, "fit_seconds": 1.999377799000058,
               "train_seconds_per_seed": 1.236726608500021}),
         # failed: DVC still shows metrics, but they are the baseline's
         _exp("bad-one", "2975ac2534765ae6622ef20f1a73dea332bcd1f0", "2026-11-24T06:21:01",
              _params(slicing={"length_s": -1}), SVM_EVAL, state="failed",
              error={"msg": "Experiment run failed", "type": ""}),
     ]},
]


@pytest.fixture
def experiments() -> list[Experiment]:
    found, _ = parse_exp_show(EXP_SHOW, files=FILES)
    return found


# -- parsing ---------------------------------------------------------------------------------------

def test_parse_keeps_finished_experiments_and_commits_with_metrics():
    found, skipped = parse_exp_show(EXP_SHOW, files=FILES)
    kinds = {e.name: e.kind for e in found}
    assert kinds == {"main": "commit", "tuned-here": "experiment", "pukka-cart": "experiment",
                     "16ca4f0": "commit", "audit-696226bb-grouped": "experiment",
                     "audit-696226bb-leaky": "experiment", "f5b9bab": "commit", "newsy-pams": "experiment"}
    reasons = {s.name: s.reason for s in skipped}
    assert set(reasons) == {"still-queued", "bad-one"}
    assert "queued" in reasons["still-queued"]
    assert "failed" in reasons["bad-one"] and "baseline" in reasons["bad-one"]
    leaky = next(e for e in found if e.name == "audit-696226bb-leaky")
    assert leaky.leaky and leaky.evaluation["n_tracks"] == 12
    assert leaky.baseline.startswith("16ca4f0")


def test_parse_options_for_commits_and_workspace():
    only_exps, _ = parse_exp_show(EXP_SHOW, commits=False, files=FILES)
    assert all(e.kind == "experiment" for e in only_exps) and len(only_exps) == 5
    with_ws, _ = parse_exp_show(EXP_SHOW, workspace=True, files=FILES)
    assert with_ws[0].kind == "workspace"


def test_parse_rejects_what_is_not_exp_show_output():
    with pytest.raises(ValueError, match="dvc exp show --json"):
        parse_exp_show({"rev": "workspace"}, files=FILES)


def test_entry_without_eval_metrics_is_skipped_with_reason():
    data = copy.deepcopy(EXP_SHOW[:2])
    data[1]["experiments"][0]["revs"][0]["data"]["metrics"] = {}
    _, skipped = parse_exp_show(data, files=FILES)
    assert any(s.name == "tuned-here" and "metrics/eval.json" in s.reason for s in skipped)


# -- the table -------------------------------------------------------------------------------------

def test_table_rows_carry_setup_metrics_and_uncertainty(experiments):
    table = results_table(experiments)
    expected = list(COLUMNS)
    expected.insert(expected.index("seeds") + 1, "other")   # params that vary without a column, after seeds
    assert list(table.columns) == [*expected, "config"]
    row = table.set_index("experiment").loc["pukka-cart"]
    assert row["dataset"] == "synthetic 4g x 6 x 6s"
    assert row["split"] == "grouped by artist (24 tracks)"   # `auto` as the split stage resolved it
    assert (row["variant"], row["features"], row["model"]) == ("normal", "mfcc(20)", "svm")
    assert row["slice_s"] == 2.0 and row["seeds"] == 1 and row["recipe"] == "separation_baselines"
    assert row["slice_accuracy"] == 0.75 and row["track_accuracy"] == 0.75
    assert row["macro_f1"] == pytest.approx(0.6666666666666666)
    assert (row["ci95_low"], row["ci95_high"]) == (0.5, 1.0)
    assert np.isnan(row["seeds_std"])
    assert row["n_test_tracks"] == 8 and row["rev"] == "21054b9" and row["n_genres"] == 4
    seeds = table.set_index("experiment").loc["newsy-pams"]
    assert seeds["seeds"] == 2 and seeds["seeds_std"] == 0.0


def test_every_row_states_its_split_and_leaky_rows_are_marked(experiments):
    table = results_table(experiments)
    assert table["split"].str.len().gt(0).all()
    leaky = table[table["leaky"]]
    assert list(leaky["experiment"]) == ["audit-696226bb-leaky"]
    assert leaky["split"].iloc[0].startswith("LEAKY")
    md = markdown_table(table)
    assert "split LEAKY: random slices" in md          # its group says so above its table
    assert "inflated" in md


def test_split_labels_come_from_the_split_that_was_made():
    gtzan = {"dataset": {"name": "gtzan", "split": "fault_filtered"}, "split": {"method": "auto"}}
    # without the split stage's record, `auto` is not resolved here (genrelab.splits decides, from the index)
    assert split_label(gtzan) == "auto: official or grouped (not recorded)"
    made = {"n_tracks_grouped_by_artist": 919, "n_tracks_grouped_by_track": 81, "official": 0}
    grouped = {**gtzan, "split": {"method": "grouped", "group_by": "artist"}}
    assert split_label(grouped, counts=made) == "grouped by artist (919 tracks), by track (81)"
    assert split_label(gtzan, counts={**made, "official": 1}) == "official: GTZAN fault-filtered"
    assert split_label(gtzan, counts=made) == "grouped by artist (919 tracks), by track (81)"  # auto resolved
    stratified = {"dataset": {"name": "gtzan", "split": "stratified"}, "split": {"method": "official"}}
    assert split_label(stratified, counts={"official": 1, "n_groups_in_several_splits": 101}) == \
        "official: GTZAN stratified (101 artists in several splits)"
    table = {"dataset": {"name": "table", "kind": "gtzan_kaggle", "split": "fault_filtered"},
             "split": {"method": "auto"}}
    assert split_label(table, counts={**made, "official": 1}) == "official: GTZAN fault-filtered"
    assert split_label({"dataset": {"name": "fma_small"}, "split": {"method": "official"}}).startswith("official")
    kfold = {"dataset": {"name": "synthetic"}, "split": {"method": "kfold", "fold": 1, "n_folds": 5,
                                                         "group_by": "artist"}}
    by_artist = {"n_tracks_grouped_by_artist": 300, "n_tracks_grouped_by_track": 0}
    assert split_label(kfold, counts=by_artist) == "kfold 1/5, grouped by artist (300 tracks)"
    kfold["split"]["fold"] = "all"
    assert split_label(kfold, counts=by_artist) == "kfold all 5 folds pooled, grouped by artist (300 tracks)"
    assert split_label(grouped, counts={"n_tracks_grouped_by_artist": 0, "n_tracks_grouped_by_track": 930}) == \
        "grouped by track (930 tracks; no artist ids)"
    # without the split stage's counts (older experiments) the label does not claim artists
    assert split_label(grouped) == "grouped by artist where known (not recorded)"
    # metrics nested under `leaky` win over whatever the params say
    assert split_label({"dataset": {"name": "synthetic"}, "split": {"method": "grouped"}}, leaky=True).startswith(
        "LEAKY")


def test_params_without_a_column_that_vary_are_listed(experiments):
    table = results_table(experiments).set_index("experiment")
    assert table.loc["pukka-cart", "other"] == ""
    bumped = copy.deepcopy(EXP_SHOW)
    bumped[1]["experiments"][1]["revs"][0]["data"]["params"]["params.yaml"]["data"]["model"]["C"] = 1.0
    exps, _ = parse_exp_show(bumped, files=FILES)
    other = results_table(exps).set_index("experiment")["other"]
    assert other["pukka-cart"] == "model.C=1.0"
    assert other["main"] == "model.C=10.0"
    assert other["tuned-here"] == ""                      # rf has no C: not compared with the SVMs


def _rows(md: str) -> list[list[str]]:
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in md.splitlines()
            if ln.startswith("| ") and "Experiment" not in ln]


def test_one_row_per_distinct_configuration_the_newest(experiments):
    table, older = distinct_configurations(results_table(experiments))
    # main, 16ca4f0 and f5b9bab ran the configuration pukka-cart ran last
    assert sorted(older["experiment"]) == ["16ca4f0", "f5b9bab", "main"]
    assert "pukka-cart" in set(table["experiment"]) and table["config"].is_unique


def test_markdown_is_ranked_with_shared_settings_stated_once(experiments):
    table = rank_table(distinct_configurations(results_table(experiments))[0])
    md = markdown_table(table)
    assert "**synthetic 4g x 6 x 6s, split grouped by artist (24 tracks), variant normal, 2 s slices, 8 test" in md
    rows = _rows(md)
    assert [r[0] for r in rows] == ["1", "1", "1", "4", "1"]       # ties share a rank; the leaky group apart
    pukka = next(r for r in rows if r[1] == "pukka-cart")
    assert pukka[2:] == ["mfcc(20)", "svm", "1", "75.0 [50.0, 100.0]", "66.7", "–", "75.0"]
    assert "± 0.0" in next(r for r in rows if r[1] == "newsy-pams")
    assert max(len(line) for line in md.splitlines()) <= 120


def _correct_predictions(right: list[bool], genres=GENRES) -> pd.DataFrame:
    actual = [genres[i % len(genres)] for i in range(len(right))]
    wrong = [genres[(i + 1) % len(genres)] for i in range(len(right))]
    pred = [a if ok else w for a, ok, w in zip(actual, right, wrong)]
    return pd.DataFrame({"track_id": [f"t{i:03d}" for i in range(len(right))], "actual": actual,
                         "predicted": pred, "predicted_vote": pred})


def _sweep_table(accs: dict[str, float], n: int = 60) -> pd.DataFrame:
    rows = []
    for i, (name, acc) in enumerate(accs.items()):
        model, variant = name.split("/")
        rows.append({**{k: "" for k in COLUMNS}, "experiment": f"exp-{i}", "rev": f"{i:07d}", "kind": "experiment",
                     "dataset": "synthetic 10g x 30 x 30s", "split": "grouped by artist", "leaky": False,
                     "variant": variant, "features": "mfcc(20)", "model": model, "slice_s": 3.0, "seeds": 1,
                     "other": "", "slice_accuracy": acc - 0.05, "track_accuracy": acc, "macro_f1": acc - 0.02,
                     "ci95_low": acc - 0.1, "ci95_high": min(1.0, acc + 0.1), "f1_low": np.nan, "f1_high": np.nan,
                     "seeds_std": np.nan, "n_test_tracks": n, "n_genres": 10, "timestamp": f"2026-01-01T00:0{i}:00",
                     "config": name})
    return pd.DataFrame(rows)


def test_rank_table_gives_paired_differences_to_the_best_with_holm_p_values():
    accs = {"svm/normal": 0.90, "rf/normal": 0.80, "svm/hpss_percussive": 0.60, "rf/hpss_percussive": 0.88}
    table = _sweep_table(accs)
    rng = np.random.default_rng(0)
    preds = {}
    for i, acc in enumerate(accs.values()):
        right = np.zeros(60, dtype=bool)
        right[rng.permutation(60)[:round(acc * 60)]] = True
        preds[f"{i:07d}"] = _correct_predictions(list(right))
    ranked = rank_table(table, preds, n_boot=500)
    assert set(RANK_COLUMNS) <= set(ranked.columns)
    assert list(ranked["model"] + "/" + ranked["variant"]) == [
        "svm/normal", "rf/hpss_percussive", "rf/normal", "svm/hpss_percussive"]
    assert list(ranked["rank"]) == [1, 2, 3, 4]
    best, second, worst = ranked.iloc[0], ranked.iloc[1], ranked.iloc[3]
    assert best["diff"] == 0.0 and np.isnan(best["p_value"])
    assert worst["diff"] == pytest.approx(-0.30) and worst["diff_low"] < -0.30 < worst["diff_high"] < 0
    assert worst["p_holm"] < 0.05 and second["p_holm"] > 0.05
    p = ranked["p_value"].to_numpy()[1:]
    assert (ranked["p_holm"].to_numpy()[1:] >= p - 1e-12).all()     # Holm never lowers a p-value
    md = markdown_table(ranked)
    worst_row = next(r for r in _rows(md) if r[1] == worst["experiment"])
    assert worst_row[2:4] == ["hpss_percussive", "svm"]
    assert worst_row[5].startswith("-30.0 [") and worst_row[6] != "–"
    assert max(len(line) for line in md.splitlines()) <= 120
    ranking_png(ranked, Path(pytest.importorskip("tempfile").mkdtemp()) / "ranking.png")


def test_rows_without_predictions_or_other_tracks_are_ranked_but_not_paired():
    table = _sweep_table({"svm/normal": 0.9, "rf/normal": 0.8, "logreg/normal": 0.7})
    preds = {"0000000": _correct_predictions([True] * 54 + [False] * 6),
             "0000002": _correct_predictions([True] * 42 + [False] * 18)[:50]}   # other test tracks
    ranked = rank_table(table, preds, n_boot=200)
    assert list(ranked["rank"]) == [1, 2, 3]
    assert ranked["diff_low"].isna().all() and ranked["p_holm"].isna().all()
    md = markdown_table(ranked)
    assert "| Δ vs #1" not in md and "| p Holm" not in md      # no column of nothing but dashes


def test_known_dvc_errors_are_explained():
    assert "commit first" in explain_dvc_error("ERROR: unexpected error - Empty git repo\n\nHaving any troubles?")
    said = ("ERROR: unexpected error - ConfigError raised while resolving interpolation: model.C: expected a number, "
            "got 'abc'\n    full_key: conf_digest")
    assert explain_dvc_error(said).startswith("model.C: expected a number, got 'abc' (conf/ did not compose")
    assert "prefix it with +" in explain_dvc_error("Could not override 'model.foo'.")
    assert explain_dvc_error("ERROR: something new") is None


def test_empty_report_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no finished experiments"):
        write_report(results_table([]), tmp_path)


# -- the plots -------------------------------------------------------------------------------------

def test_write_report_writes_table_csv_and_pngs(experiments, tmp_path):
    table = results_table(experiments)
    out = tmp_path / "reports"
    out.mkdir()
    (out / "accuracy_vs_slice.png").write_bytes(b"stale")
    paths = write_report(table, out)
    assert paths["markdown"].read_text().startswith("# Results")
    back = pd.read_csv(paths["csv"])
    assert len(back) == len(table) and "track_accuracy" in back and "rank" in back
    for key in ("ranking", "bars"):
        assert paths[key].read_bytes()[:4] == b"\x89PNG"
    # one slice length: the plot against slice length would be one point per series
    assert "slices" not in paths and not (out / "accuracy_vs_slice.png").exists()
    assert not list(out.glob(".*tmp*")), "no temporary files left behind"


def test_plots_accept_several_slice_lengths_and_seed_std(tmp_path):
    rows = []
    for model in ("cnn", "rnn"):
        for length in (1.0, 3.0, 5.0, 10.0):
            acc = 0.5 + 0.04 * length if model == "cnn" else 0.6
            rows.append({**{k: "" for k in COLUMNS}, "experiment": f"{model}-{length}", "dataset": "synthetic",
                         "split": "grouped by artist", "leaky": False, "variant": "normal", "features": "mel(96)",
                         "model": model, "slice_s": length, "seeds": 3, "other": "", "slice_accuracy": acc - 0.1,
                         "track_accuracy": acc, "ci95_low": np.nan, "ci95_high": np.nan, "seeds_std": 0.03,
                         "n_genres": 10, "timestamp": "2026-01-01T00:00:00"})
    table = pd.DataFrame(rows)
    track_accuracy_png(table, tmp_path / "bars.png")
    accuracy_vs_slice_png(table, tmp_path / "slices.png")
    assert (tmp_path / "bars.png").stat().st_size > 10_000
    assert (tmp_path / "slices.png").stat().st_size > 10_000
    with pytest.raises(ValueError, match="no experiments"):
        track_accuracy_png(table.iloc[:0], tmp_path / "empty.png")


# -- slow: a real sweep in a temporary repository ------------------------------------------------------

TINY = {"n_tracks_per_genre": 6, "duration_s": 6.0, "tracks_per_artist": 2, "genres": GENRES}


def _run(cmd: list[str], cwd: Path, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    return run_in(cmd, cwd, check=check, timeout=600, **env)


@pytest.fixture(scope="module")
def swept_repo(tmp_path_factory):
    """A tiny copy of the repository (git-tracked and untracked, non-ignored files) and a 4-run sweep."""
    repo = copy_repository(tmp_path_factory.mktemp("sweep"), dataset=TINY)
    # 2 models x 2 slice lengths of one recipe, queued, run by one worker, waited for
    out = _run([str(BIN / "genrelab"), "sweep", "separation_baselines", "-S", "features=mfcc", "-S", "variant=normal",
                "-S", "slicing.length_s=2,3", "--run", "-j", "1", "--timeout", "500"], repo).stdout
    assert "4 succeeded, 0 failed" in out, out
    yield repo
    _run([str(BIN / "dvc"), "queue", "stop"], repo, check=False)   # no idle worker outlives the test


@pytest.mark.slow
def test_sweep_then_report_writes_table_and_plots(swept_repo):
    proc = _run([str(BIN / "genrelab"), "report", "--recipe", "separation_baselines"], swept_repo)
    out = swept_repo / "reports"
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 4
    assert set(table["model"]) == {"svm", "rf"} and set(table["slice_s"]) == {2.0, 3.0}
    assert (table["split"] == "grouped by artist (24 tracks)").all() and not table["leaky"].any()
    assert table["track_accuracy"].between(0, 1).all() and table["ci95_low"].le(table["track_accuracy"]).all()
    md = (out / "results.md").read_text()
    assert md.count("separation_baselines") == 0 and sum("svm" in r for r in _rows(md)) == 2
    assert max(len(line) for line in md.splitlines()) <= 120
    assert table["p_holm"].notna().sum() == 3 and (table["rank"] == 1).sum() >= 1    # 3 paired with the best
    for png in ("ranking.png", "track_accuracy.png", "accuracy_vs_slice.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert "Experiment" in proc.stdout and "Δ vs #1" in proc.stdout
    assert all(s == "Success" for s in queue_states(repo=swept_repo).values())


@pytest.mark.slow
def test_compare_two_experiments_of_the_sweep(swept_repo):
    shown = json.loads(_run([str(BIN / "dvc"), "exp", "show", "--json"], swept_repo).stdout)
    names = [e["name"] for e in shown[1]["experiments"]]
    proc = _run([str(BIN / "genrelab"), "compare", names[0], names[1]], swept_repo)
    assert "McNemar exact (binomial) p = " in proc.stdout and "difference B - A" in proc.stdout


def _readme_glance_line() -> str:
    """The `dvc exp show ...` command the README gives for a sweep at a glance (one logical line)."""
    text = (ROOT / "README.md").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("dvc exp show --only-changed")]
    assert lines, "README.md lost its `dvc exp show --only-changed ...` line"
    return " ".join(lines[0].split("#")[0].split())


@pytest.mark.slow
def test_the_readmes_glance_line_shows_the_sweep_within_120_columns(swept_repo):
    """The sweep's experiments are listed with their metrics, `dvc metrics diff` reads them, and
    the README's one line for a sweep at a glance fits 120 columns with nothing collapsed."""
    shown = json.loads(_run([str(BIN / "dvc"), "exp", "show", "--json"], swept_repo).stdout)
    exps = [e for rev in shown for e in (rev.get("experiments") or [])]
    done = [e for e in exps if e["revs"][0]["data"].get("metrics")]
    assert len(done) == 4, json.dumps(shown)[:2000]
    diff = _run([str(BIN / "dvc"), "metrics", "diff", "--json", "HEAD", done[0]["revs"][0]["rev"]], swept_repo).stdout
    assert "metrics/eval.json" in diff
    glance = subprocess.run(["bash", "-c", f"{BIN}/{_readme_glance_line()} --no-pager"], cwd=swept_repo,
                            capture_output=True, text=True, env=repo_env(COLUMNS="200"), timeout=300)
    lines = [line.rstrip() for line in glance.stdout.splitlines() if line.strip()]
    assert lines and max(len(line) for line in lines) <= 120, glance.stdout + glance.stderr
    assert "…" not in glance.stdout and "model.name" in glance.stdout and "slicing.length_s" in glance.stdout
    assert "acc_lo" in glance.stdout, glance.stdout


# -- the leakage audit -----------------------------------------------------------------------------

CONF = ROOT / "conf"


def test_audit_plan_runs_leaky_grouped_and_the_official_split_where_one_exists():
    from genrelab.experiments.audit import audit_plan

    plan = audit_plan(["model=rf"], config_dir=CONF)
    assert plan == {"leaky": ["model=rf", "split=leaky"], "grouped": ["model=rf", "split=grouped"]}
    gtzan = audit_plan(["dataset=gtzan", "dataset.split=stratified"], config_dir=CONF)
    assert gtzan["fault_filtered"] == ["dataset=gtzan", "split=official", "dataset.split=fault_filtered"]
    assert set(gtzan) == {"leaky", "grouped", "fault_filtered"}


def test_audit_plan_adds_the_official_split_of_feature_tables(tmp_path):
    from genrelab.experiments.audit import audit_plan

    csv = tmp_path / "features_30_sec.csv"
    csv.write_text("filename,label\n")
    plan = audit_plan(["dataset=gtzan_kaggle_table", f"dataset.source={csv}"], config_dir=CONF)
    assert set(plan) == {"leaky", "grouped", "fault_filtered"}
    assert plan["fault_filtered"][-2:] == ["split=official", "dataset.split=fault_filtered"]


def test_audit_says_when_one_row_per_track_cannot_leak(experiments):
    from genrelab.experiments.audit import (
        audit_markdown,
        audit_table,
        one_row_per_track,
    )

    by = {e.name: e for e in experiments}
    table = audit_table({"leaky": by["audit-696226bb-leaky"], "grouped": by["audit-696226bb-grouped"]})
    assert not one_row_per_track(table)
    assert "no slice can leak" not in audit_markdown(table)
    per_track = table.assign(n_test_slices=table["n_test_tracks"])
    assert one_row_per_track(per_track)
    md = audit_markdown(per_track)
    assert "one row per track, so no slice can leak" in md and "artist leakage" in md


def test_audit_refuses_to_be_told_the_split():
    from genrelab.config import ConfigError
    from genrelab.experiments.audit import audit_plan

    with pytest.raises(ConfigError, match="chooses the split itself"):
        audit_plan(["split=kfold"], config_dir=CONF)
    with pytest.raises(ConfigError, match="do not compose"):
        audit_plan(["model=nonexistent"], config_dir=CONF)


def test_audit_names_are_deterministic_and_order_free():
    from genrelab.experiments.audit import audit_names

    plan = {"leaky": [], "grouped": [], "fault_filtered": []}
    a = audit_names(["model=rf", "features=mel"], plan)
    assert a == audit_names(["features=mel", "model=rf"], plan)
    assert a != audit_names(["model=svm", "features=mel"], plan)
    assert a["fault_filtered"].startswith("audit-") and a["fault_filtered"].endswith("-fault-filtered")


def test_audit_table_gives_the_gap_in_points(experiments):
    from genrelab.experiments.audit import audit_markdown, audit_table

    by = {e.name: e for e in experiments}
    table = audit_table({"leaky": by["audit-696226bb-leaky"], "grouped": by["audit-696226bb-grouped"]})
    assert list(table["split"]) == ["leaky", "grouped"]
    grouped = table.set_index("split").loc["grouped"]
    assert grouped["slice_gap"] == pytest.approx(1.0 - 0.8333333333333334)
    assert grouped["track_gap"] == 0.0
    md = audit_markdown(table, ["model=rf"])
    assert "features mfcc(20), variant normal, model rf" in md
    assert "| **LEAKY: random slices** |" in md and "+16.7" in md
    with pytest.raises(ValueError, match="leaky"):
        audit_table({"grouped": by["audit-696226bb-grouped"]})


@pytest.mark.slow
def test_audit_leakage_runs_both_splits_and_reuses_them(swept_repo):
    proc = _run([str(BIN / "genrelab"), "audit-leakage", "-S", "model=rf", "--timeout", "400"], swept_repo)
    assert "Leaky gap" in proc.stdout
    table = pd.read_csv(swept_repo / "reports/leakage_audit.csv")
    assert list(table["split"]) == ["leaky", "grouped"]
    assert table["split_label"].iloc[0].startswith("LEAKY")
    assert (table["n_test_tracks"] > 0).all() and table["slice_gap"].iloc[0] == 0.0
    again = _run([str(BIN / "genrelab"), "audit-leakage", "-S", "model=rf"], swept_repo, GENRELAB_LOG="INFO")
    assert "reusing experiment" in again.stderr


def test_waiting_starts_a_worker_again_when_dvcs_stopped_with_experiments_queued(monkeypatch):
    """DVC's queue worker can stop with an experiment still queued (its broker read a
    half-written message); waiting starts one again instead of timing out."""
    from genrelab.experiments import recipes

    calls = []
    status = {"a": "Success", "b": "Queued"}

    def fake_dvc(args, repo="."):
        calls.append(args[:2])
        if args[:2] == ["queue", "start"]:
            status["b"] = "Success"  # the new worker runs it
            return subprocess.CompletedProcess(args, 0, "", "")
        rows = "".join(f"{i}  {n}  09:48 AM   {s}\n" for i, (n, s) in enumerate(status.items()))
        out = f"Task     Name        Created    Status\n{rows}\nWorker status: 0 active, 0 idle\n"
        return subprocess.CompletedProcess(args, 0, out, "")

    monkeypatch.setattr(recipes, "dvc", fake_dvc)
    assert recipes.wait_for(["a", "b"], poll_s=0, timeout_s=30, progress=False) == {"a": "Success", "b": "Success"}
    assert calls.count(["queue", "start"]) == 1
