import numpy as np
import pandas as pd
import pytest

from genrelab.config import ConfigError
from genrelab.features import FeatureSet
from genrelab.models import MODELS, build_model, load_model

CLASSICAL = ["svm", "svm_grid", "rf", "gbdt", "logreg", "mlp"]


def _blobs(rng, n_tracks=24, slices=4, n_classes=3, dim=6):
    y_track = np.arange(n_tracks) % n_classes
    centres = rng.normal(0, 3, size=(n_classes, dim))
    X = np.concatenate([centres[c] + rng.normal(0, 1, size=(slices, dim)) for c in y_track]).astype(np.float32)
    meta = pd.DataFrame({"track_id": np.repeat([f"t{i}" for i in range(n_tracks)], slices),
                         "slice_idx": np.tile(np.arange(slices), n_tracks),
                         "label": np.repeat(y_track, slices)})
    return FeatureSet(X=X, S=None, meta=meta, info={"labels": [f"c{k}" for k in range(n_classes)]})


@pytest.mark.parametrize("name", CLASSICAL)
def test_classical_models_learn_and_round_trip(name, rng, tmp_path):
    train, test = _blobs(rng), _blobs(np.random.default_rng(99))
    test.X = train.X + rng.normal(0, 0.1, train.X.shape).astype(np.float32)  # same centres, new noise
    settings = {"name": name}
    if name == "svm_grid":
        settings.update(C=[1.0, 10.0], gamma=["scale"], cv_folds=2)
    if name == "rf":
        settings["n_estimators"] = 50
    if name == "gbdt":
        settings["max_iter"] = 30
    model = build_model(settings, n_classes=3, input_shape=(6,), seed=0).fit(train)
    proba = model.predict_proba(test)
    assert proba.shape == (len(test.X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert (proba.argmax(axis=1) == test.y).mean() > 0.8
    model.save(tmp_path / "m")
    again = load_model(name, tmp_path / "m")
    np.testing.assert_allclose(again.predict_proba(test), proba)


def test_grid_search_reports_its_choice(rng):
    # gamma=1000 memorises each training slice and fails on held-out tracks: the search must avoid it
    model = build_model({"name": "svm_grid", "C": [10.0], "gamma": [1000.0, "scale"], "cv_folds": 3},
                        n_classes=3, input_shape=(6,), seed=0).fit(_blobs(rng))
    assert model.report["best_gamma"] == -1.0  # "scale"
    assert 0 <= model.report["cv_best_accuracy"] <= 1


def test_probabilities_cover_classes_missing_from_training(rng):
    fs = _blobs(rng, n_classes=3)
    keep = fs.meta["label"].to_numpy() != 1
    train = FeatureSet(X=fs.X[keep], S=None, meta=fs.meta[keep].reset_index(drop=True), info=fs.info)
    proba = build_model({"name": "logreg"}, n_classes=3, input_shape=(6,), seed=0).fit(train).predict_proba(fs)
    assert proba.shape[1] == 3 and np.all(proba[:, 1] == 0)


@pytest.mark.parametrize("settings, match", [
    ({"name": "xgboost"}, "valid choices: .*svm.*rf"),
    ({"name": "svm", "C": -1.0}, "positive"),
    ({"name": "svm", "kernel": "cubic"}, "valid choices: rbf"),
    ({"name": "rf", "n_estimators": 0}, "at least 1"),
    ({"name": "svm", "pca": 1.5}, "variance fraction"),
    ({"name": "mlp", "hidden": []}, "non-empty"),
    ({"name": "svm", "c": 1.0}, "unknown key"),
])
def test_invalid_model_settings(settings, match):
    with pytest.raises(ConfigError, match=match):
        build_model(settings, n_classes=3, input_shape=(6,), seed=0)


def test_registry_lists_every_classical_model():
    assert set(CLASSICAL) <= set(MODELS)
    assert all(MODELS[n].input == "vector" for n in CLASSICAL)
