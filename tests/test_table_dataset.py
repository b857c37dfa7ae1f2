"""A Kaggle-style GTZAN features table flows through prepare -> split -> features -> train -> evaluate."""
import numpy as np
import pandas as pd
import pytest

from genrelab.config import ConfigError
from genrelab.datasets import prepare_dataset
from genrelab.features import KAGGLE_COLUMNS, SliceSettings, TableFeatures, extract_dataset, load_feature_split
from genrelab.splits import SplitSettings, make_split
from genrelab.evaluate import evaluate_bundle
from genrelab.models import load_bundle, train_bundle
from genrelab.variants import VariantSettings


def _kaggle_3s(path, rng):
    from genrelab.datasets.gtzan import load_gtzan_split

    split = load_gtzan_split("fault_filtered")
    rows = []
    for genre_i, genre in enumerate(["blues", "classical", "metal"]):
        for n in range(100):
            tid = f"{genre}.{n:05d}"
            if tid not in split:
                continue
            for seg in range(3):
                feats = rng.normal(genre_i * 2.0, 1.0, size=len(KAGGLE_COLUMNS))
                rows.append([f"{tid}.{seg}.wav", 66149, *feats, genre])
    pd.DataFrame(rows, columns=["filename", "length", *KAGGLE_COLUMNS, "label"]).to_csv(path, index=False)


def test_kaggle_table_runs_through_train_and_evaluate(tmp_path):
    csv = tmp_path / "features_3_sec.csv"
    _kaggle_3s(csv, np.random.default_rng(0))
    index = prepare_dataset({"name": "table", "kind": "gtzan_kaggle", "source": str(csv),
                             "split": "fault_filtered", "tracks_csv": "", "subset": ""}, tmp_path / "ds")
    assert set(index["official_split"]) == {"train", "valid", "test"}
    table = make_split(index, SplitSettings(method="auto"), seed=0)
    assert (table["method"] == "official").all()
    summary = extract_dataset(index, table, extractor=TableFeatures(), variant=VariantSettings(),
                              slicing=SliceSettings(), sample_rate=22050, dataset_dir=tmp_path / "ds",
                              separated_dir=tmp_path / "sep", out_dir=tmp_path / "feat", progress=False)
    assert summary["n_features"] == 57
    test = load_feature_split(tmp_path / "feat", "test")
    assert set(test.meta["slice_idx"]) == {0, 1, 2}
    assert set(test.track_id) <= set(index.loc[index["official_split"] == "test", "track_id"])
    params = {"model": {"name": "logreg"}, "train": {"seeds": [0]}}
    train_bundle(params, tmp_path / "feat", tmp_path / "model")
    metrics, _, _ = evaluate_bundle(load_bundle(tmp_path / "model", trust=True), tmp_path / "feat", n_boot=50)
    assert metrics["track_mean"]["accuracy"] > 0.9  # the classes are far apart


def test_table_dataset_needs_a_source(tmp_path):
    with pytest.raises(ConfigError, match="dataset.source"):
        prepare_dataset({"name": "table", "kind": "gtzan_kaggle", "source": ""}, tmp_path / "ds")
