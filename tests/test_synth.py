"""Tests of the deterministic synthetic genre dataset (``genrelab.synth``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from genrelab import GENRES
from genrelab.synth import (
    INDEX_COLUMNS,
    STEMS,
    TEMPLATES,
    GenreTemplate,
    SynthSettings,
    generate_dataset,
    render_track,
)

SHORT = SynthSettings(duration_s=4.0, sample_rate=22050, tracks_per_artist=3)


@pytest.fixture(scope="module")
def one_per_genre() -> dict[str, dict[str, np.ndarray]]:
    return {g: render_track(g, seed=0, track_index=0, settings=SHORT) for g in GENRES}


def test_templates_cover_gtzan_genres_in_order():
    assert tuple(TEMPLATES) == GENRES


@pytest.mark.parametrize("genre", GENRES)
def test_shapes_dtypes_and_peak(one_per_genre, genre):
    audio = one_per_genre[genre]
    assert set(audio) == {*STEMS, "mix"}
    n = round(SHORT.duration_s * SHORT.sample_rate)
    for name, y in audio.items():
        assert y.dtype == np.float32, name
        assert y.shape == (n,), name
        assert np.all(np.isfinite(y)), name
        assert np.max(np.abs(y)) <= 1.0, name
    # the mix is normalised to about -1 dBFS (lower only if a stem would peak higher)
    peak_db = 20 * np.log10(np.max(np.abs(audio["mix"])))
    assert -6.0 < peak_db <= -0.99


@pytest.mark.parametrize("genre", GENRES)
def test_stems_sum_to_mix(one_per_genre, genre):
    audio = one_per_genre[genre]
    total = sum(audio[s].astype(np.float64) for s in STEMS)
    np.testing.assert_allclose(total, audio["mix"], rtol=0, atol=1e-4)


def test_odd_length():
    settings = SynthSettings(duration_s=1.2345, sample_rate=16000)
    audio = render_track("pop", seed=0, track_index=0, settings=settings)
    assert all(y.shape == (round(1.2345 * 16000),) for y in audio.values())


def test_deterministic_same_seed_identical():
    a = render_track("jazz", seed=7, track_index=4, settings=SHORT)
    b = render_track("jazz", seed=7, track_index=4, settings=SHORT)
    for name in a:
        assert np.array_equal(a[name], b[name]), name


def test_different_seed_or_track_differs():
    a = render_track("jazz", seed=7, track_index=4, settings=SHORT)["mix"]
    b = render_track("jazz", seed=8, track_index=4, settings=SHORT)["mix"]
    c = render_track("jazz", seed=7, track_index=5, settings=SHORT)["mix"]
    assert not np.allclose(a, b, atol=1e-3)
    assert not np.allclose(a, c, atol=1e-3)


def test_independent_of_rendering_order():
    first = render_track("reggae", seed=3, track_index=2, settings=SHORT)["mix"]
    for genre, i in [("metal", 0), ("reggae", 1), ("reggae", 5), ("classical", 2)]:
        render_track(genre, seed=3, track_index=i, settings=SHORT)
    again = render_track("reggae", seed=3, track_index=2, settings=SHORT)["mix"]
    assert np.array_equal(first, again)


def test_independent_of_subset(tmp_path):
    base = dict(duration_s=1.0, sample_rate=16000, tracks_per_artist=2, seed=5)
    big = generate_dataset(tmp_path / "big", SynthSettings(n_tracks_per_genre=3, genres=("rock", "blues"), **base),
                           progress=False, write_stems=False)
    small = generate_dataset(tmp_path / "small", SynthSettings(n_tracks_per_genre=2, genres=("blues",), **base),
                             progress=False, write_stems=False)
    assert set(small.track_id) < set(big.track_id)
    for path in small.path:
        a, _ = sf.read(tmp_path / "big" / path, dtype="int16")
        b, _ = sf.read(tmp_path / "small" / path, dtype="int16")
        assert np.array_equal(a, b), path


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"genres": ("blues", "polka")}, "valid choices: blues, classical"),
        ({"genres": ()}, "valid choices"),
        ({"genres": "blues"}, "valid choices"),
        ({"genres": ("rock", "rock")}, "distinct"),
        ({"n_tracks_per_genre": 0}, "n_tracks_per_genre"),
        ({"tracks_per_artist": -1}, "tracks_per_artist"),
        ({"duration_s": 0.0}, "duration_s"),
        ({"duration_s": float("nan")}, "duration_s"),
        ({"sample_rate": 100}, "sample_rate"),
        ({"seed": -1}, "seed"),
    ],
)
def test_invalid_settings_raise(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        SynthSettings(**kwargs)


def test_settings_accept_a_list_of_genres():
    assert SynthSettings(genres=["pop", "rock"]).genres == ("pop", "rock")


def test_render_track_invalid_input():
    with pytest.raises(ValueError, match="valid choices: blues"):
        render_track("polka", seed=0, track_index=0, settings=SHORT)
    with pytest.raises(ValueError, match="track_index"):
        render_track("pop", seed=0, track_index=-1, settings=SHORT)
    with pytest.raises(ValueError, match="seed"):
        render_track("pop", seed=-2, track_index=0, settings=SHORT)


def test_template_rejects_unknown_names():
    tpl = TEMPLATES["rock"]
    with pytest.raises(ValueError, match="valid choices"):
        dataclasses.replace(tpl, harmony_timbres=("theremin",))
    with pytest.raises(ValueError, match="progression"):
        dataclasses.replace(tpl, progressions=("major: I XIV",))
    assert isinstance(dataclasses.replace(tpl, tempo_bpm=(90, 100)), GenreTemplate)


def test_generate_dataset_index_and_files(tmp_path):
    settings = SynthSettings(n_tracks_per_genre=4, duration_s=1.0, sample_rate=16000, tracks_per_artist=2,
                             genres=("classical", "metal"))
    index = generate_dataset(tmp_path, settings, progress=False, write_stems=True)
    assert tuple(index.columns) == INDEX_COLUMNS
    on_disk = pd.read_csv(tmp_path / "index.csv")
    assert tuple(on_disk.columns) == INDEX_COLUMNS
    pd.testing.assert_frame_equal(on_disk, index, check_dtype=False)
    assert list(index.track_id) == [f"{g}.{i:05d}" for g in ("classical", "metal") for i in range(4)]
    assert list(index.path) == [f"audio/{g}/{t}.flac" for g, t in zip(index.genre, index.track_id)]
    assert set(index.artist) == {"classical_artist00", "classical_artist01", "metal_artist00", "metal_artist01"}
    # each artist has tracks_per_artist tracks, all of one genre
    per_artist = index.groupby("artist").agg(n=("track_id", "size"), genres=("genre", "nunique"))
    assert (per_artist.n == 2).all() and (per_artist.genres == 1).all()
    assert (index.duration_s == 1.0).all() and (index.sample_rate == 16000).all()
    for row in index.itertuples():
        info = sf.info(tmp_path / row.path)
        assert (info.format, info.subtype, info.samplerate, info.frames) == ("FLAC", "PCM_16", 16000, 16000)
        mix, _ = sf.read(tmp_path / row.path, dtype="float64")
        stems = [sf.read(tmp_path / "stems" / row.track_id / f"{s}.flac", dtype="float64")[0] for s in STEMS]
        np.testing.assert_allclose(sum(stems), mix, atol=4 * 2.0**-15)  # four stems' rounding
    assert not list(tmp_path.rglob("*.tmp*"))  # no leftovers of the atomic writes


def test_generate_dataset_without_stems(tmp_path):
    settings = SynthSettings(n_tracks_per_genre=1, duration_s=0.5, sample_rate=8000, genres=("pop",))
    generate_dataset(tmp_path, settings, progress=False, write_stems=False)
    assert (tmp_path / "audio" / "pop" / "pop.00000.flac").is_file()
    assert not (tmp_path / "stems").exists()


def test_generate_dataset_rejects_bad_settings(tmp_path):
    with pytest.raises(TypeError, match="SynthSettings"):
        generate_dataset(tmp_path, {"n_tracks_per_genre": 1}, progress=False)  # type: ignore[arg-type]


def test_classical_drums_are_silent(one_per_genre):
    for i in range(3):
        drums = render_track("classical", seed=1, track_index=i, settings=SHORT)["drums"]
        assert np.max(np.abs(drums)) < 1e-6
    for genre in set(GENRES) - {"classical"}:
        assert np.sqrt(np.mean(one_per_genre[genre]["drums"] ** 2)) > 1e-3, genre


def test_genres_are_learnable_above_chance():
    """Logistic regression on MFCC means, split by artist, beats chance (10 %) clearly."""
    import librosa
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    settings = SynthSettings(duration_s=5.0, sample_rate=16000, tracks_per_artist=2)
    X, y, groups = [], [], []
    for g, genre in enumerate(GENRES):
        for i in range(8):
            mix = render_track(genre, seed=11, track_index=i, settings=settings)["mix"]
            mfcc = librosa.feature.mfcc(y=mix, sr=settings.sample_rate, n_mfcc=13)
            X.append(np.r_[mfcc.mean(axis=1), mfcc.std(axis=1)])
            y.append(g)
            groups.append(f"{genre}{i // settings.tracks_per_artist}")
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000))
    pred = cross_val_predict(clf, np.array(X), np.array(y), groups=groups, cv=GroupKFold(n_splits=4))
    accuracy = float(np.mean(pred == np.array(y)))
    assert accuracy > 0.3, accuracy


def test_the_dataset_rendered_on_two_workers_is_the_one_rendered_here(tmp_path):
    """The prepare stage renders its tracks through map_tracks: where a track runs changes no byte."""
    from genrelab import cluster, compute
    from genrelab.compute import ComputeSettings

    settings = SynthSettings(n_tracks_per_genre=3, duration_s=1.0, sample_rate=16000, tracks_per_artist=3,
                             genres=("rock", "jazz"), seed=7)
    before = compute.default_settings()
    try:
        compute.configure(ComputeSettings(workers=1))
        here = generate_dataset(tmp_path / "here", settings, progress=False, write_stems=True)
        compute.configure(ComputeSettings(workers=2))
        there = generate_dataset(tmp_path / "there", settings, progress=False, write_stems=True)
    finally:
        compute.configure(before)
        cluster.close_clients()
    pd.testing.assert_frame_equal(here, there)
    files = sorted(p.relative_to(tmp_path / "here") for p in (tmp_path / "here").rglob("*") if p.is_file())
    assert len(files) == 1 + 6 * (1 + len(STEMS))
    assert files == sorted(p.relative_to(tmp_path / "there") for p in (tmp_path / "there").rglob("*") if p.is_file())
    for f in files:
        assert (tmp_path / "here" / f).read_bytes() == (tmp_path / "there" / f).read_bytes(), f
