"""Tests of the Gaussian-HMM baseline."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from genrelab.deep.hmm import GaussianHMMClassifier, _forward_log_likelihood, _log_emissions
from genrelab.deep.registry import load_deep_model, make_deep_model


def two_class_sequences(n: int, *, seed: int, n_mfcc: int = 5, n_frames: int = 30):
    """MFCC-like slices [shape=(n, n_mfcc, n_frames)]: class 1 frames have mean +1.5, class 0 mean 0."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    S = rng.normal(size=(n, n_mfcc, n_frames)) + 1.5 * y[:, None, None]
    S[:, 0] = S[:, 0] * 50 - 200  # a coefficient on a much larger scale, like MFCC 0
    return S.astype(np.float32), y.astype(np.int64)


def test_separates_two_classes_with_different_means():
    S, y = two_class_sequences(60, seed=0)
    S_test, y_test = two_class_sequences(40, seed=1)
    clf = GaussianHMMClassifier(n_components=2, n_iter=10, seed=0).fit(S, y, progress=False)
    assert (clf.predict(S_test) == y_test).mean() == 1.0
    proba = clf.predict_proba(S_test)
    assert proba.shape == (40, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(proba.argmax(axis=1), clf.predict(S_test))


@pytest.mark.parametrize("covariance_type", ["diag", "full", "tied"])
def test_forward_matches_hmmlearn_score(covariance_type):
    S, y = two_class_sequences(20, seed=0, n_mfcc=3, n_frames=25)
    clf = GaussianHMMClassifier(n_components=3, covariance_type=covariance_type, n_iter=5, seed=0)
    clf.fit(S, y, progress=False)
    ll = clf.log_likelihood(S[:4])
    for i in range(4):
        X = (S[i].T.astype(np.float64) - clf.mean_) / clf.scale_
        for c, model in enumerate(clf.models_):
            assert ll[i, c] == pytest.approx(model.score(X), rel=1e-8, abs=1e-6)


def test_forward_handles_zero_transitions():
    """A left-to-right chain (zeros in the transition matrix) gives a finite likelihood."""
    log_e = np.log(np.full((2, 6, 2), 0.5))
    ll = _forward_log_likelihood(log_e, np.array([1.0, 0.0]), np.array([[0.5, 0.5], [0.0, 1.0]]))
    np.testing.assert_allclose(ll, 6 * np.log(0.5))
    e = _log_emissions(np.zeros((1, 1, 2)), np.zeros((1, 2)), np.eye(2)[None], "diag")
    assert e[0, 0, 0] == pytest.approx(-np.log(2 * np.pi))


def test_is_deterministic_for_a_seed():
    S, y = two_class_sequences(30, seed=0)
    a = GaussianHMMClassifier(n_components=3, n_iter=5, seed=4).fit(S, y, progress=False)
    b = GaussianHMMClassifier(n_components=3, n_iter=5, seed=4).fit(S, y, progress=False)
    np.testing.assert_array_equal(a.log_likelihood(S), b.log_likelihood(S))


def test_save_load_round_trip_without_pickle(tmp_path):
    S, y = two_class_sequences(30, seed=0)
    np.save(tmp_path / "S.npy", S)
    S_mm = np.load(tmp_path / "S.npy", mmap_mode="r")
    clf = GaussianHMMClassifier(n_components=2, n_iter=5, seed=0, likelihood="per_frame", batch_size=7)
    clf.fit(S_mm, y, progress=False)
    clf.save(tmp_path / "hmm")
    assert sorted(p.name for p in (tmp_path / "hmm").iterdir()) == ["config.json", "params.npz"]
    with np.load(tmp_path / "hmm" / "params.npz", allow_pickle=False) as z:
        assert z["means_0"].shape == (2, 5)
    assert json.loads((tmp_path / "hmm" / "config.json").read_text())["likelihood"] == "per_frame"
    loaded = load_deep_model(tmp_path / "hmm")
    assert isinstance(loaded, GaussianHMMClassifier)
    np.testing.assert_array_equal(loaded.predict_proba(S_mm), clf.predict_proba(S_mm))


def test_class_without_slices_gets_probability_zero(caplog):
    S, y = two_class_sequences(30, seed=0)
    clf = make_deep_model("hmm", {"n_components": 2, "n_iter": 5}, n_classes=3, input_shape=(5, 30), seed=0)
    clf.fit(S, y, progress=False)
    assert "class 2 has no training slices" in caplog.text
    proba = clf.predict_proba(S)
    assert proba.shape == (30, 3)
    assert (proba[:, 2] == 0).all()


def test_per_frame_likelihood_is_softer_with_the_same_decisions():
    S, y = two_class_sequences(30, seed=0)
    total = GaussianHMMClassifier(n_components=2, n_iter=5).fit(S, y, progress=False)
    per_frame = GaussianHMMClassifier(n_components=2, n_iter=5, likelihood="per_frame").fit(S, y, progress=False)
    p_total, p_frame = total.predict_proba(S), per_frame.predict_proba(S)
    np.testing.assert_array_equal(p_total.argmax(axis=1), p_frame.argmax(axis=1))
    assert p_frame.max(axis=1).mean() < p_total.max(axis=1).mean()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_components": 0}, "n_components"),
        ({"n_iter": -1}, "n_iter"),
        ({"covariance_type": "banded"}, "covariance_type"),
        ({"covariance_type": "spherical"}, "covariance_type"),
        ({"likelihood": "max"}, "likelihood"),
        ({"min_covar": 0}, "min_covar"),
        ({"n_classes": 1}, "n_classes"),
    ],
)
def test_invalid_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianHMMClassifier(**kwargs)


def test_invalid_input_raises():
    S, y = two_class_sequences(10, seed=0)
    clf = GaussianHMMClassifier(n_components=2, n_iter=2)
    with pytest.raises(NotFittedError):
        clf.predict_proba(S)
    with pytest.raises(ValueError, match="S must have shape"):
        clf.fit(S[:, 0], y)
    with pytest.raises(ValueError, match="y must be"):
        clf.fit(S, y[:-1])
    with pytest.raises(ValueError, match="labels must be in"):
        GaussianHMMClassifier(n_classes=2).fit(S, y + 1)
    clf.fit(S, y, progress=False)
    with pytest.raises(ValueError, match="coefficients"):
        clf.predict_proba(S[:, :3])
