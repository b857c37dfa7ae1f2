import numpy as np
import pandas as pd
import pytest

from genrelab.config import ConfigError, from_mapping
from genrelab.splits import (
    SPLIT_COLUMNS,
    SPLITS,
    SplitLeakError,
    SplitSettings,
    artist_key,
    assign_slices,
    check_groups,
    fold_roles,
    make_split,
    split_folds,
    split_summary,
    track_groups,
)


def _index(n_genres=4, artists_per_genre=6, tracks_per_artist=3, official=False):
    rows = []
    for g in range(n_genres):
        for a in range(artists_per_genre):
            for _t in range(tracks_per_artist):
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
    ({"fold": "last", "method": "kfold"}, "or 'all'"),
    ({"fold": "all", "method": "grouped"}, "needs split=kfold"),
    ({"group_by": "album"}, "artist, track"),
    ({"nfolds": 5}, "unknown key"),
])
def test_invalid_split_settings(bad, match):
    with pytest.raises(ConfigError, match=match):
        from_mapping(SplitSettings, bad, section="split")


def test_empty_index_rejected():
    with pytest.raises(ConfigError, match="empty"):
        make_split(_index().iloc[:0], SplitSettings(), seed=0)


def test_grouping_is_per_track_unknown_artists_alone():
    index = _index(n_genres=2, artists_per_genre=3, tracks_per_artist=2)
    index.loc[[0, 1, 5], "artist"] = ["", "  ", ""]
    g = track_groups(index, "artist")
    assert list(g.loc[[0, 1, 5], "group_unit"]) == ["track"] * 3
    assert g.loc[0, "group"] == f"track:{index.loc[0, 'track_id']}" and g.loc[0, "group"] != g.loc[1, "group"]
    assert (g.drop(index=[0, 1, 5])["group_unit"] == "artist").all()
    assert g.loc[2, "group"] == g.loc[3, "group"] == "artist:g0_a1"
    assert (track_groups(index, "track")["group_unit"] == "track").all()


def test_split_table_says_the_unit_and_summary_counts_it():
    index = _index()
    index.loc[index.index[:5], "artist"] = ""
    table = make_split(index, SplitSettings(method="grouped"), seed=0)
    assert tuple(table.columns) == SPLIT_COLUMNS
    summary = split_summary(table, SplitSettings(method="grouped"))
    assert summary["n_tracks_grouped_by_track"] == 5
    assert summary["n_tracks_grouped_by_artist"] == len(index) - 5
    assert summary["n_artists"] == index["artist"].loc[index["artist"] != ""].nunique()
    assert summary["n_train"] + summary["n_valid"] + summary["n_test"] == len(index)
    assert summary["official"] == 0 and summary["leaky"] == 0
    assert all(isinstance(v, int) for v in summary.values())


def test_artist_names_that_differ_only_in_spelling_are_one_group():
    assert artist_key("Earth, Wind & Fire") == artist_key("Earth Wind and Fire") == "earth wind and fire"
    assert artist_key("Rage Against The Machine") == artist_key("Rage Against the Machine ")
    assert artist_key("  ") == ""


def test_a_group_in_two_splits_fails_for_made_splits_and_is_counted_for_official_ones():
    table = make_split(_index(), SplitSettings(method="grouped"), seed=0)
    g = table.loc[0, "group"]
    other = next(s for s in SPLITS if s != table.loc[0, "split"])
    broken = table.copy()
    broken.loc[(broken["group"] == g).idxmax() + 1, "split"] = other   # a sibling track elsewhere
    assert (broken.loc[broken["group"] == g, "split"].nunique()) == 2
    with pytest.raises(SplitLeakError, match="1 group"):
        check_groups(broken)
    assert check_groups(broken.assign(method="official")) == 1


def test_official_split_counts_artists_it_puts_in_several_splits():
    index = _index(official=True)   # official_split cycles train/valid/test: artists straddle
    table = make_split(index, SplitSettings(method="official"), seed=0)
    assert split_summary(table)["n_groups_in_several_splits"] == index["artist"].nunique()
    assert split_summary(table)["official"] == 1


def test_kfold_writes_each_tracks_fold_and_fold_all_runs_every_fold():
    index = _index()
    settings = SplitSettings(method="kfold", fold="all", n_folds=4)
    table = make_split(index, settings, seed=0)
    assert set(table["fold"]) == {0, 1, 2, 3}
    assert (table.groupby("artist")["fold"].nunique() == 1).all()
    folds = split_folds(table, settings)
    assert [f for f, _ in folds] == [0, 1, 2, 3]
    for f, t in folds:
        assert set(t.loc[t["split"] == "test", "track_id"]) == set(table.loc[table["fold"] == f, "track_id"])
        assert set(t.loc[t["split"] == "valid", "track_id"]) == set(table.loc[table["fold"] == (f + 1) % 4, "track_id"])
    assert list(fold_roles(np.array([0, 1, 2, 3]), 3, 4)) == ["valid", "train", "train", "test"]
    assert split_folds(table, SplitSettings(method="kfold", fold=1)) == [(None, table)]
    assert split_summary(table, settings)["all_folds"] == 1
    with pytest.raises(ConfigError, match="no folds"):
        split_folds(make_split(index, SplitSettings(method="grouped"), seed=0), settings)


@pytest.mark.parametrize("method", ["grouped", "kfold"])
def test_gtzan_splits_put_no_artist_of_sturms_index_in_two_splits(method):
    from genrelab.datasets.gtzan import load_gtzan_artists

    artists = load_gtzan_artists()
    index = pd.DataFrame({"track_id": list(artists), "genre": [t.split(".")[0] for t in artists],
                          "artist": list(artists.values()), "official_split": ""})
    table = make_split(index, SplitSettings(method=method), seed=0)
    known = table[table["artist"] != ""]
    assert (known.groupby(known["artist"].map(artist_key))["split"].nunique() == 1).all()
    assert (known.groupby(known["artist"].map(artist_key))["fold"].nunique() == 1).all()
    summary = split_summary(table)
    assert summary["n_tracks_grouped_by_artist"] == 919 and summary["n_tracks_grouped_by_track"] == 81
