import numpy as np
import pytest

from genrelab.evaluate import (
    accuracy_interval,
    aggregate_tracks,
    classification_metrics,
    confusion_png,
    evaluate,
)


def test_vote_and_mean_probability_can_disagree():
    # track a: two weak votes for class 0, one confident slice for class 1
    proba = np.array([[0.51, 0.49], [0.51, 0.49], [0.0, 1.0]])
    t = aggregate_tracks(proba, np.array(["a", "a", "a"]))
    assert t.loc[0, "pred_vote"] == 0
    assert t.loc[0, "pred_mean"] == 1
    assert t.loc[0, "n_slices"] == 3
    assert t.loc[0, "p_1"] == pytest.approx((0.49 + 0.49 + 1.0) / 3)


def test_tracks_keep_order_of_first_appearance():
    proba = np.eye(3)[[0, 1, 2, 2]]
    t = aggregate_tracks(proba, np.array(["z", "b", "m", "m"]))
    assert list(t["track_id"]) == ["z", "b", "m"]
    assert list(t["pred_mean"]) == [0, 1, 2]


def test_aggregate_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="n_slices"):
        aggregate_tracks(np.zeros((3, 2)), np.array(["a", "b"]))


def test_evaluate_metrics_and_leaky_label():
    labels = ["x", "y"]
    y = np.array([0, 0, 1, 1, 1, 1])
    tracks = np.array(["t1", "t1", "t2", "t2", "t3", "t3"])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.1, 0.9], [0.3, 0.7], [0.6, 0.4], [0.7, 0.3]])
    m, slices, table = evaluate(proba, y, tracks, labels)
    assert m["slice"]["accuracy"] == pytest.approx(3 / 6)
    assert m["track_mean"]["accuracy"] == pytest.approx(2 / 3)  # t1 -> x (0.55), t2 -> y, t3 -> x (wrong)
    assert m["n_tracks"] == 3 and m["n_slices"] == 6 and m["n_groups"] == 3
    for level in ("slice", "track_vote", "track_mean"):   # every accuracy has its own interval
        ci = m[level]["accuracy_ci95"]
        assert 0 <= ci["low"] < m[level]["accuracy"] < ci["high"] <= 1
    assert list(table.columns[:3]) == ["track_id", "actual", "predicted"]
    assert len(slices) == 6
    leaky, _, _ = evaluate(proba, y, tracks, labels, leaky=True)
    assert set(leaky) == {"leaky"}


def test_slice_predictions_given_by_the_model_drive_slice_accuracy_and_the_vote():
    # the model's own classes (an SVC's) disagree with the argmax of its calibrated probabilities
    labels = ["x", "y"]
    y = np.array([0, 0, 0])
    proba = np.array([[0.4, 0.6], [0.45, 0.55], [0.4, 0.6]])
    m, slices, table = evaluate(proba, y, np.array(["t", "t", "t"]), labels, pred=np.array([0, 0, 1]))
    assert m["slice"]["accuracy"] == pytest.approx(2 / 3)
    assert m["track_vote"]["accuracy"] == 1.0 and m["track_mean"]["accuracy"] == 0.0
    assert list(slices["predicted"]) == ["x", "x", "y"]
    assert table.loc[0, "predicted_vote"] == "x" and table.loc[0, "predicted"] == "y"


def test_macro_f1_counts_only_genres_present_in_the_test_set():
    labels = [f"g{k}" for k in range(10)]
    y = np.array([0, 1, 2, 3])
    m = classification_metrics(y, y, labels)
    assert m["accuracy"] == 1.0 and m["macro_f1"] == 1.0   # not 0.4 (4 of 10 genres present)
    assert set(m["f1"]) == {"g0", "g1", "g2", "g3"}
    wrong = classification_metrics(y, np.array([0, 1, 2, 9]), labels)  # a prediction of an absent genre
    assert wrong["macro_f1"] == pytest.approx(np.mean([1, 1, 1, 0]))


def test_interval_never_collapses_at_zero_or_one_hundred_percent():
    for correct in (np.ones(4, bool), np.zeros(4, bool)):
        low, high = accuracy_interval(correct)
        assert 0 <= low < high <= 1
    low, high = accuracy_interval(np.ones(4, bool))
    assert high == 1.0 and low == pytest.approx(4 / (4 + 1.959964 ** 2), abs=1e-4)  # Wilson at 4/4


def test_interval_narrows_with_more_data_and_matches_wilson():
    small = accuracy_interval(np.array([1, 0] * 10, bool))
    large = accuracy_interval(np.array([1, 0] * 500, bool))
    assert small[0] < 0.5 < small[1]
    assert (large[1] - large[0]) < (small[1] - small[0])
    # Wilson for 10/20 (independent observations)
    assert small[0] == pytest.approx(0.2993, abs=1e-3) and small[1] == pytest.approx(0.7007, abs=1e-3)
    with pytest.raises(ValueError):
        accuracy_interval(np.array([], bool))


def test_tracks_of_one_artist_count_as_fewer_observations():
    # 10 artists x 10 tracks, every artist all right or all wrong: about 10 independent observations
    correct = np.repeat(np.array([1, 0] * 5, bool), 10)
    groups = np.repeat(np.arange(10), 10)
    free = accuracy_interval(correct)
    clustered = accuracy_interval(correct, groups)
    by_group = accuracy_interval(np.array([1, 0] * 5, bool))
    assert (clustered[1] - clustered[0]) > 2 * (free[1] - free[0])
    assert clustered == pytest.approx(by_group, abs=0.03)
    # tracks whose rightness does not depend on the artist: close to the plain interval
    mixed = np.tile(np.array([1, 0] * 5, bool), 10)
    assert accuracy_interval(mixed, groups) == pytest.approx(accuracy_interval(mixed), abs=1e-6)
    # all right: the groups, not the tracks, are the observations
    assert accuracy_interval(np.ones(100, bool), groups)[0] == pytest.approx(accuracy_interval(np.ones(10, bool))[0])


def test_confusion_png_is_an_image(tmp_path):
    path = tmp_path / "cm.png"
    confusion_png(["a", "b", "b"], ["a", "a", "b"], ["a", "b"], path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_per_genre_plot_data_and_confusion_title():
    import pandas as pd

    from genrelab.evaluate import confusion_title, per_genre_table

    labels = ["a", "b"]
    level = {"accuracy": 0.75, "macro_f1": 0.7, "f1": {"a": 0.8, "b": 0.6666666}}
    metrics = {"slice": level, "track_vote": level, "track_mean": level, "n_tracks": 4}
    tracks = pd.DataFrame({"actual": ["a", "a", "a", "b"]})
    table = per_genre_table(metrics, tracks)
    assert list(table.columns) == ["genre", "f1", "f1_vote", "f1_slice", "n_tracks"]
    assert table["genre"].tolist() == labels and table["n_tracks"].tolist() == [3, 1]
    assert table["f1"].tolist() == [0.8, 0.6667]
    meta = {"model": "svm", "params": {"features": {"name": "mfcc"}, "variant": {"name": "hpss_harmonic"}}}
    title = confusion_title(meta, metrics)
    assert title == "svm · mfcc · hpss_harmonic\ntrack accuracy 75.0% of 4 test tracks"
    assert confusion_title(meta, {"leaky": metrics}).endswith("LEAKY split")
