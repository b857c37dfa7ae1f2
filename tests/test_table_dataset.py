"""A Kaggle-style GTZAN features table flows through prepare -> split -> features -> train -> evaluate."""
import numpy as np
import pandas as pd
import pytest

from genrelab.config import ConfigError
from genrelab.datasets import prepare_dataset
from genrelab.evaluate import evaluate_bundle
from genrelab.features import KAGGLE_COLUMNS, SliceSettings, TableFeatures, extract_dataset, load_feature_split
from genrelab.models import load_bundle, train_bundle
from genrelab.splits import SplitSettings, make_split
from genrelab.store import Store
from genrelab.variants import VariantSettings


def _kaggle_3s(path, rng, genres=("blues", "classical", "metal"), n_tracks=100):
    rows = []
    for genre_i, genre in enumerate(genres):
        for n in range(n_tracks):
            tid = f"{genre}.{n:05d}"
            for seg in range(3):
                feats = rng.normal(genre_i * 2.0, 1.0, size=len(KAGGLE_COLUMNS))
                rows.append([f"{tid}.{seg}.wav", 66149, *feats, genre])
    pd.DataFrame(rows, columns=["filename", "length", *KAGGLE_COLUMNS, "label"]).to_csv(path, index=False)


def test_kaggle_table_runs_through_train_and_evaluate(tmp_path):
    csv = tmp_path / "features_3_sec.csv"
    _kaggle_3s(csv, np.random.default_rng(0))
    index = prepare_dataset({"name": "table", "kind": "gtzan_kaggle", "source": str(csv),
                             "split": "fault_filtered", "tracks_csv": "", "subset": ""}, tmp_path / "ds")
    # every row is kept: the faulty tracks in no official split, as the audio ingest keeps them
    assert set(index["official_split"]) == {"train", "valid", "test", ""} and len(index) == 300
    assert (index["artist"] != "").sum() > 250   # Sturm's artists
    table = make_split(index, SplitSettings(method="auto"), seed=0)
    assert (table["method"] == "official").all() and len(table) == (index["official_split"] != "").sum()
    summary = extract_dataset(index, extractor=TableFeatures(), variant=VariantSettings(),
                              slicing=SliceSettings(), sample_rate=22050, dataset_dir=tmp_path / "ds",
                              out_dir=tmp_path / "feat", store=Store(tmp_path / "store"), progress=False)
    assert summary["n_slices"] == 3 * len(index) and summary["n_tracks"] == len(index)
    assert np.load(tmp_path / "feat" / "X.npy").shape == (3 * len(index), 57)  # every track, whatever the split
    test = load_feature_split(tmp_path / "feat", "test", split_table=table)
    assert set(test.meta["slice_idx"]) == {0, 1, 2}
    assert set(test.track_id) == set(index.loc[index["official_split"] == "test", "track_id"])
    params = {"model": {"name": "logreg"}, "train": {"seeds": [0]}}
    train_bundle(params, tmp_path / "feat", tmp_path / "model", split_table=table)
    metrics, _, _ = evaluate_bundle(load_bundle(tmp_path / "model", trust=True), tmp_path / "feat",
                                    split_table=table)
    assert metrics["track_mean"]["accuracy"] > 0.9  # the classes are far apart
    assert metrics["n_groups"] < metrics["n_tracks"]   # artists: the interval's observations


def test_kfold_over_all_folds_on_a_table_dataset(tmp_path):
    """split=kfold, split.fold=all: every track predicted once, by the fold models that held it out."""
    csv = tmp_path / "features_3_sec.csv"
    _kaggle_3s(csv, np.random.default_rng(1), genres=("blues", "metal"), n_tracks=40)
    index = prepare_dataset({"name": "table", "kind": "gtzan_kaggle", "source": str(csv),
                             "split": "fault_filtered", "tracks_csv": "", "subset": ""}, tmp_path / "ds")
    settings = SplitSettings(method="kfold", fold="all", n_folds=4)
    table = make_split(index, settings, seed=0)
    assert len(table) == len(index) == 80   # k-fold sees the faulty tracks too, as on the audio path
    extract_dataset(index, extractor=TableFeatures(), variant=VariantSettings(), slicing=SliceSettings(),
                    sample_rate=22050, dataset_dir=tmp_path / "ds", out_dir=tmp_path / "feat",
                    store=Store(tmp_path / "store"), progress=False)
    params = {"model": {"name": "logreg"}, "train": {"seeds": [0, 1]},
              "split": {"method": "kfold", "fold": "all", "n_folds": 4}}
    train_bundle(params, tmp_path / "feat", tmp_path / "model", split_table=table)
    bundle = load_bundle(tmp_path / "model", trust=True)
    assert bundle.folds == [0, 1, 2, 3] and len(bundle.models) == 8
    metrics, _, tracks = evaluate_bundle(bundle, tmp_path / "feat", split_table=table)
    assert metrics["n_tracks"] == 80 and sorted(tracks["track_id"]) == sorted(table["track_id"])
    fold_of = dict(zip(table["track_id"], table["fold"]))
    assert all(fold_of[t] == f for t, f in zip(tracks["track_id"], tracks["fold"]))
    assert set(metrics["per_fold"]) == {"fold_0", "fold_1", "fold_2", "fold_3"}
    assert sum(m["n_tracks"] for m in metrics["per_fold"].values()) == 80
    for m in metrics["per_fold"].values():
        assert m["track_mean_accuracy_ci95"]["low"] < m["track_mean_accuracy_ci95"]["high"]
    assert metrics["over_folds"]["n_folds"] == 4 and metrics["per_seed"]["n_seeds"] == 2
    assert metrics["track_mean"]["accuracy"] > 0.9


def test_table_dataset_needs_a_source(tmp_path):
    with pytest.raises(ConfigError, match="dataset.source"):
        prepare_dataset({"name": "table", "kind": "gtzan_kaggle", "source": ""}, tmp_path / "ds")


def test_metrics_are_those_of_the_seed_ensemble_that_predict_uses(tmp_path):
    from genrelab.evaluate import aggregate_tracks
    from genrelab.features import load_split_sets

    csv = tmp_path / "features_3_sec.csv"
    _kaggle_3s(csv, np.random.default_rng(2), n_tracks=30)
    index = prepare_dataset({"name": "table", "kind": "gtzan_kaggle", "source": str(csv),
                             "split": "stratified", "tracks_csv": "", "subset": ""}, tmp_path / "ds")
    table = make_split(index, SplitSettings(method="grouped"), seed=0)
    extract_dataset(index, extractor=TableFeatures(), variant=VariantSettings(), slicing=SliceSettings(),
                    sample_rate=22050, dataset_dir=tmp_path / "ds", out_dir=tmp_path / "feat",
                    store=Store(tmp_path / "store"), progress=False)
    params = {"model": {"name": "rf", "n_estimators": 3, "max_depth": 2}, "train": {"seeds": [0, 1, 2]}}
    train_bundle(params, tmp_path / "feat", tmp_path / "model", split_table=table)
    bundle = load_bundle(tmp_path / "model", trust=True)
    metrics, _, _ = evaluate_bundle(bundle, tmp_path / "feat", split_table=table)
    test = load_split_sets(tmp_path / "feat", table)["test"]
    shipped = aggregate_tracks(bundle.predict_proba(test), test.track_id)   # what `genrelab predict` does
    truth = dict(zip(test.track_id, test.y))
    acc = np.mean([truth[t] == p for t, p in zip(shipped["track_id"], shipped["pred_mean"])])
    assert metrics["track_mean"]["accuracy"] == pytest.approx(acc)
    assert metrics["per_seed"]["n_seeds"] == 3 and "over_seeds" not in metrics
    assert not any("best" in k for k in metrics["per_seed"])
    singles = []
    for seed in (0, 1, 2):
        one = aggregate_tracks(bundle.predict_proba(test, seed=seed), test.track_id)
        singles.append(np.mean([truth[t] == p for t, p in zip(one["track_id"], one["pred_mean"])]))
    assert metrics["per_seed"]["track_mean_accuracy_mean"] == pytest.approx(np.mean(singles))
    assert metrics["per_seed"]["track_mean_accuracy_std"] == pytest.approx(np.std(singles, ddof=1))
