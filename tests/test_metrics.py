"""Headline metrics: which numbers reach the files DVC lists, and the details beside them."""
from __future__ import annotations

import json

import numpy as np
import pytest

from genrelab.metrics import LAYOUTS, headline, write_metrics

FULL_EVAL = {
    "slice": {"accuracy": 0.7083333, "macro_f1": 0.6789, "f1": {"a": 0.5, "b": 0.8}},
    "track_vote": {"accuracy": 0.75, "macro_f1": 0.7, "f1": {"a": 0.5, "b": 1.0}},
    "track_mean": {"accuracy": 0.8333333333, "macro_f1": 0.8, "f1": {"a": 0.6, "b": 1.0},
                   "macro_f1_ci95": {"low": 0.61, "high": 0.95}},
    "track_accuracy_ci95": {"low": 0.6666666, "high": 1.0},
    "n_slices": np.int64(24), "n_tracks": 8,
}


def test_eval_headline_is_small_flat_and_rounded():
    head = headline(FULL_EVAL, "eval")
    assert head == {"acc": 0.833, "acc_lo": 0.667, "acc_hi": 1.0, "f1": 0.8, "f1_lo": 0.61, "f1_hi": 0.95,
                    "slice_acc": 0.708, "slice_f1": 0.679, "tracks": 8}
    assert isinstance(head["tracks"], int)


def test_numbers_missing_from_the_full_result_are_left_out_not_nan():
    full = {**FULL_EVAL, "track_mean": {"accuracy": float("nan"), "macro_f1": 0.8}}
    head = headline(full, "eval")
    assert "acc" not in head and "f1_lo" not in head and head["f1"] == 0.8


def test_first_present_path_wins_so_the_full_result_may_grow():
    full = {**FULL_EVAL, "track_mean": {**FULL_EVAL["track_mean"], "accuracy_ci95": {"low": 0.5, "high": 0.9}}}
    assert headline(full, "eval")["acc_lo"] == 0.5


def test_a_leaky_result_gives_a_leaky_headline():
    head = headline({"leaky": FULL_EVAL}, "eval")
    assert set(head) == {"leaky"} and head["leaky"]["acc"] == 0.833


def test_every_layout_shares_only_the_tracks_count():
    keys = [k for layout in LAYOUTS.values() for k in layout]
    shared = {k for k in keys if keys.count(k) > 1}
    assert shared == {"tracks"}        # one column for every stage's count, unique names otherwise


def test_write_metrics_writes_headline_and_details(tmp_path):
    head = write_metrics(tmp_path / "eval.json", tmp_path / "details" / "eval.json", FULL_EVAL, "eval")
    assert json.loads((tmp_path / "eval.json").read_text()) == head
    details = json.loads((tmp_path / "details" / "eval.json").read_text())
    assert details["track_mean"]["f1"] == {"a": 0.6, "b": 1.0} and details["n_slices"] == 24
    with pytest.raises(KeyError):
        write_metrics(tmp_path / "x.json", tmp_path / "y.json", {}, "no-such-layout")
