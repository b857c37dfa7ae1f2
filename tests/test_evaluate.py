import numpy as np
import pytest

from genrelab.evaluate import aggregate_tracks, bootstrap_accuracy_ci, confusion_png, evaluate


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
    m, slices, table = evaluate(proba, y, tracks, labels, n_boot=200)
    assert m["slice"]["accuracy"] == pytest.approx(3 / 6)
    assert m["track_mean"]["accuracy"] == pytest.approx(2 / 3)  # t1 -> x (0.55), t2 -> y, t3 -> x (wrong)
    assert m["n_tracks"] == 3 and m["n_slices"] == 6
    assert 0 <= m["track_accuracy_ci95"]["low"] <= m["track_mean"]["accuracy"] <= m["track_accuracy_ci95"]["high"]
    assert list(table.columns[:3]) == ["track_id", "actual", "predicted"]
    assert len(slices) == 6
    leaky, _, _ = evaluate(proba, y, tracks, labels, leaky=True, n_boot=50)
    assert set(leaky) == {"leaky"}


def test_bootstrap_interval_narrows_with_more_data():
    small = bootstrap_accuracy_ci(np.array([1, 0] * 10, bool), n_boot=500)
    large = bootstrap_accuracy_ci(np.array([1, 0] * 500, bool), n_boot=500)
    assert small[0] < 0.5 < small[1]
    assert (large[1] - large[0]) < (small[1] - small[0])
    with pytest.raises(ValueError):
        bootstrap_accuracy_ci(np.array([], bool))


def test_confusion_png_is_an_image(tmp_path):
    path = tmp_path / "cm.png"
    confusion_png(["a", "b", "b"], ["a", "a", "b"], ["a", "b"], path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
