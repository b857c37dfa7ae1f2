import numpy as np
import pandas as pd
import pytest

from genrelab.config import ConfigError
from genrelab.features import FeatureSet
from genrelab.models import MODELS, build_model, load_model

CLASSICAL = ["svm", "svm_grid", "rf", "gbdt", "logreg", "mlp"]


def _blobs(rng, n_tracks=24, slices=4, n_classes=3, dim=6, centres=None):
    """Tracks of ``slices`` rows each around their class centre (drawn from ``rng`` unless given)."""
    y_track = np.arange(n_tracks) % n_classes
    centres = rng.normal(0, 3, size=(n_classes, dim)) if centres is None else centres
    X = np.concatenate([centres[c] + rng.normal(0, 1, size=(slices, dim)) for c in y_track]).astype(np.float32)
    meta = pd.DataFrame({"track_id": np.repeat([f"t{i}" for i in range(n_tracks)], slices),
                         "slice_idx": np.tile(np.arange(slices), n_tracks),
                         "label": np.repeat(y_track, slices)})
    return FeatureSet(X=X, S=None, meta=meta, info={"labels": [f"c{k}" for k in range(n_classes)]})


@pytest.mark.parametrize("name", CLASSICAL)
def test_classical_models_learn_and_round_trip(name, rng, tmp_path):
    centres = rng.normal(0, 3, size=(3, 6))
    train, test = _blobs(rng, centres=centres), _blobs(np.random.default_rng(99), centres=centres)
    # the test tracks are new draws around the same genre centres, not the training points again
    assert np.abs(test.X[:, None] - train.X[None]).sum(axis=-1).min() > 0.5
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
    # gamma=1000 memorises each training slice and fails on any held-out slice, grouped or not (the
    # grouping of the search is tested by test_grid_search_is_grouped_by_the_outer_split_unit)
    model = build_model({"name": "svm_grid", "C": [10.0], "gamma": [1000.0, "scale"], "cv_folds": 3},
                        n_classes=3, input_shape=(6,), seed=0).fit(_blobs(rng))
    assert model.report["best_gamma"] == -1.0  # "scale"
    assert model.report["best_C"] == 10.0 and model.report["cv_folds"] == 3
    assert 0.8 < model.report["cv_best_accuracy"] <= 1


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


def _artists(rng, n_classes=3, artists_per_class=6, tracks_per_artist=3, slices=4, dim=6):
    """Near-duplicate tracks per artist and near-duplicate slices per track.

    Class centres are close compared with the spread of artists: an RBF kernel narrow enough to
    tell one artist's tracks from another's memorises artists, which pays off only when a
    held-out track's artist is also in the training part of a fold.
    """
    centres = rng.normal(0, 1.0, size=(n_classes, dim))
    X, tracks, groups, labels = [], [], [], []
    for c in range(n_classes):
        for a in range(artists_per_class):
            artist = centres[c] + rng.normal(0, 1.5, size=dim)
            for t in range(tracks_per_artist):
                track = artist + rng.normal(0, 0.05, size=dim)
                X.append(track + rng.normal(0, 0.01, size=(slices, dim)))
                tracks += [f"c{c}a{a}t{t}"] * slices
                groups += [f"artist:c{c}a{a}"] * slices
                labels += [c] * slices
    meta = pd.DataFrame({"track_id": tracks, "slice_idx": 0, "label": labels, "group": groups})
    return FeatureSet(X=np.concatenate(X).astype(np.float32), S=None, meta=meta,
                      info={"labels": [f"c{k}" for k in range(n_classes)]})


def test_grid_search_is_grouped_by_the_outer_split_unit(rng):
    """Grouped by artist, the search rejects the artist-memorising gamma; by track it picks it."""
    fs = _artists(rng)
    settings = {"name": "svm_grid", "C": [10.0], "gamma": [10.0, "scale"], "cv_folds": 3}
    by_artist = build_model(settings, n_classes=3, input_shape=(6,), seed=0).fit(fs)
    by_track = FeatureSet(X=fs.X, S=None, meta=fs.meta.drop(columns="group"), info=fs.info)  # old behaviour
    by_track = build_model(settings, n_classes=3, input_shape=(6,), seed=0).fit(by_track)
    assert by_artist.report["best_gamma"] == -1.0          # "scale": generalises to unseen artists
    assert by_track.report["best_gamma"] == 10.0           # sibling tracks in training reward memorising
    assert by_track.report["cv_best_accuracy"] > by_artist.report["cv_best_accuracy"] + 0.2
    slices = FeatureSet(X=fs.X, S=None, meta=fs.meta.assign(group=[f"s{i}" for i in range(len(fs.meta))]),
                        info=fs.info)   # ungrouped: every slice its own group
    assert build_model(settings, n_classes=3, input_shape=(6,), seed=0).fit(slices).report["best_gamma"] == 10.0


@pytest.mark.parametrize("name", ["svm", "svm_grid"])
def test_svm_classes_are_those_of_a_plain_svc(name):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    rng = np.random.default_rng(3)
    y_track = np.arange(40) % 5                     # five overlapping genres: centres ~0.5 apart, unit noise
    centres = rng.normal(0, 0.5, size=(5, 6))
    train = FeatureSet(X=np.concatenate([centres[c] + rng.normal(0, 1, size=(4, 6)) for c in y_track]).astype(
        np.float32), S=None, meta=pd.DataFrame({"track_id": np.repeat([f"t{i}" for i in range(40)], 4),
                                                "label": np.repeat(y_track, 4)}), info={})
    test = FeatureSet(X=(train.X + rng.normal(0, 0.5, train.X.shape)).astype(np.float32), S=None,
                      meta=train.meta, info=train.info)
    settings = {"name": name, "C": [1.0] if name == "svm_grid" else 1.0,
                **({"gamma": ["scale"], "cv_folds": 3} if name == "svm_grid" else {})}
    model = build_model(settings, n_classes=5, input_shape=(6,), seed=0).fit(train)
    plain = make_pipeline(StandardScaler(), SVC(C=1.0, kernel="rbf", gamma="scale")).fit(train.X, train.y)
    np.testing.assert_array_equal(model.predict(test), plain.predict(test.X))
    # the argmax of the calibrated probabilities is another classifier, which disagrees here
    assert (model.predict_proba(test).argmax(axis=1) != model.predict(test)).mean() > 0.02


def test_early_stopping_scores_the_valid_split(rng):
    train, valid = _blobs(rng), _blobs(np.random.default_rng(5))
    mlp = build_model({"name": "mlp", "hidden": [16], "max_iter": 50, "n_iter_no_change": 3}, n_classes=3,
                      input_shape=(6,), seed=0).fit(train, valid)
    assert 1 <= mlp.report["early_stopping_best_epoch"] <= mlp.report["early_stopping_epochs"] <= 50
    valid_acc = (mlp.predict(valid) == valid.y).mean()
    assert mlp.report["early_stopping_valid_accuracy"] == pytest.approx(valid_acc)
    gbdt = build_model({"name": "gbdt", "max_iter": 30, "early_stopping": True}, n_classes=3, input_shape=(6,),
                       seed=0).fit(train, valid)
    assert 1 <= gbdt.report["early_stopping_epochs"] <= 30
    # without a valid split: a hold-out of whole groups of the train split
    alone = build_model({"name": "mlp", "hidden": [16], "max_iter": 200}, n_classes=3, input_shape=(6,),
                        seed=0).fit(train)
    assert alone.report["early_stopping_epochs"] >= 1 and (alone.predict(train) == train.y).mean() > 0.8
