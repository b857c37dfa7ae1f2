import numpy as np
import pandas as pd
import pytest

from genrelab.config import ConfigError, from_mapping
from genrelab.splits import SPLITS, SplitSettings, assign_slices, make_split


def _index(n_genres=4, artists_per_genre=6, tracks_per_artist=3, official=False):
    rows = []
    for g in range(n_genres):
        for a in range(artists_per_genre):
            for t in range(tracks_per_artist):
                i = len(rows)
                rows.append({"track_id": f"g{g}.{i:05d}", "genre": f"g{g}", "artist": f"g{g}_a{a}",
                             "official_split": (SPLITS[i % 3] if official else "")})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("method", ["grouped", "kfold", "auto"])
def test_no_artist_in_two_splits_and_every_genre_everywhere(method):
    index = _index()
    table = make_split(index, SplitSettings(method=method), seed=3)
    per_artist = table.groupby("artist")["split"].nunique()
    assert (per_artist == 1).all()
    for split in SPLITS:
        assert set(table.loc[table["split"] == split, "genre"]) == set(index["genre"])


def test_grouped_fractions_are_close_to_targets():
    index = _index(n_genres=3, artists_per_genre=10, tracks_per_artist=2)
    table = make_split(index, SplitSettings(method="grouped"), seed=0)
    frac = table["split"].value_counts(normalize=True)
    assert abs(frac["train"] - 0.6) < 0.1 and abs(frac["test"] - 0.2) < 0.1


def test_split_is_deterministic_and_seed_dependent():
    index = _index()
    a = make_split(index, SplitSettings(method="grouped"), seed=1)
    b = make_split(index, SplitSettings(method="grouped"), seed=1)
    c = make_split(index, SplitSettings(method="grouped"), seed=2)
    assert a.equals(b)
    assert not a["split"].equals(c["split"])


def test_kfold_test_folds_partition_the_tracks():
    index = _index()
    seen = []
    for fold in range(5):
        t = make_split(index, SplitSettings(method="kfold", fold=fold), seed=0)
        seen.extend(t.loc[t["split"] == "test", "track_id"])
    assert sorted(seen) == sorted(index["track_id"])


def test_official_split_used_when_present_and_auto_prefers_it():
    index = _index(official=True)
    index.loc[0, "official_split"] = ""  # e.g. a faulty GTZAN track in no list
    table = make_split(index, SplitSettings(method="auto"), seed=0)
    assert (table["method"] == "official").all()
    assert index.loc[0, "track_id"] not in set(table["track_id"])
    assert dict(zip(table["track_id"], table["split"])) == dict(
        zip(index["track_id"][1:], index["official_split"][1:]))


def test_official_without_split_is_a_clear_error():
    with pytest.raises(ConfigError, match="no official split"):
        make_split(_index(), SplitSettings(method="official"), seed=0)


def test_grouped_slices_never_straddle_splits():
    index = _index()
    table = make_split(index, SplitSettings(method="grouped"), seed=0)
    tracks = np.repeat(table["track_id"].to_numpy(), 10)
    split = assign_slices(tracks, table, seed=0)
    per_track = pd.Series(split).groupby(tracks).nunique()
    assert (per_track == 1).all()


def test_leaky_slices_do_straddle_splits():
    index = _index()
    table = make_split(index, SplitSettings(method="leaky"), seed=0)
    assert set(table["split"]) == {"pool"}
    tracks = np.repeat(table["track_id"].to_numpy(), 10)
    split = assign_slices(tracks, table, fractions={"train": 0.6, "valid": 0.2, "test": 0.2}, seed=0)
    assert set(split) == set(SPLITS)
    assert (pd.Series(split).groupby(tracks).nunique() > 1).mean() > 0.5


@pytest.mark.parametrize("bad, match", [
    ({"method": "random"}, "valid choices: auto, official, grouped, kfold, leaky"),
    ({"fractions": {"train": 0.5, "valid": 0.2, "test": 0.2}}, "sum to 1"),
    ({"fractions": {"train": 0.8, "test": 0.2}}, "exactly the keys"),
    ({"n_folds": 2}, "at least 3"),
    ({"fold": 7}, r"\[0, 5\)"),
    ({"group_by": "album"}, "artist, track"),
    ({"nfolds": 5}, "unknown key"),
])
def test_invalid_split_settings(bad, match):
    with pytest.raises(ConfigError, match=match):
        from_mapping(SplitSettings, bad, section="split")


def test_empty_index_rejected():
    with pytest.raises(ConfigError, match="empty"):
        make_split(_index().iloc[:0], SplitSettings(), seed=0)
