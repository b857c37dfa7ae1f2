import numpy as np
import pytest

from genrelab.config import ConfigError
from genrelab.features import (KAGGLE_COLUMNS, ClassicFeatures, MelFeatures, MFCCFeatures, SliceSettings,
                               make_extractor, slice_signal)

SR = 22050


def test_slices_cover_signal_and_drop_remainder():
    y = np.arange(int(10.5 * SR), dtype=np.float32)
    slices, starts = slice_signal(y, SR, SliceSettings(length_s=3.0))
    assert slices.shape == (3, 3 * SR)
    np.testing.assert_allclose(starts, [0, 3, 6])
    assert slices[1, 0] == y[3 * SR]


def test_overlap_gives_more_slices():
    y = np.zeros((2, 10 * SR), np.float32)
    slices, starts = slice_signal(y, SR, SliceSettings(length_s=2.0, overlap=0.5))
    assert slices.shape == (9, 2, 2 * SR)
    np.testing.assert_allclose(np.diff(starts), 1.0)


def test_signal_shorter_than_a_slice_is_an_error():
    with pytest.raises(ValueError, match="shorter than one slice"):
        slice_signal(np.zeros(SR), SR, SliceSettings(length_s=3.0))


@pytest.mark.parametrize("bad", [{"length_s": -1.0}, {"length_s": 0.0}, {"overlap": 1.0}])
def test_invalid_slicing(bad):
    with pytest.raises(ConfigError):
        SliceSettings(**bad)


def _tone(freq, seconds=3.0):
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_mfcc_shapes_and_names():
    ex = MFCCFeatures(n_mfcc=13, deltas=True)
    batch = ex(np.stack([_tone(220), _tone(880)]), SR)
    assert batch.vector.shape == (2, 13 * 3 * 2)
    assert batch.frames.shape[:2] == (2, 39)
    assert len(ex.names()) == batch.vector.shape[1]
    assert not np.allclose(batch.vector[0], batch.vector[1])


def test_mel_energy_follows_the_tone():
    ex = MelFeatures(n_mels=64)
    batch = ex(np.stack([_tone(200), _tone(4000)]), SR)
    assert batch.frames.shape[:2] == (2, 64)
    low_peak, high_peak = (batch.frames[i].mean(axis=-1).argmax() for i in range(2))
    assert low_peak < high_peak


def test_mel_slices_are_independent_of_batch():
    ex = MelFeatures(n_mels=32)
    a = ex(np.stack([_tone(300)]), SR).frames
    b = ex(np.stack([_tone(300), 10 * _tone(3000)]), SR).frames[:1]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


def test_classic_features_have_kaggle_columns():
    ex = ClassicFeatures()
    y = _tone(440) + 0.05 * np.random.default_rng(0).standard_normal(3 * SR).astype(np.float32)
    batch = ex(y[None], SR)
    assert batch.vector.shape == (1, 57)
    assert ex.names() == list(KAGGLE_COLUMNS)
    assert batch.frames is None
    assert np.all(np.isfinite(batch.vector))


def test_kaggle_columns_match_the_published_header(shared_dir):
    header = (shared_dir / "data/gtzan/kaggle_features_30_sec.header.csv").read_text().strip().split(",")
    assert [c for c in header if c not in ("filename", "length", "label")] == list(KAGGLE_COLUMNS)


@pytest.mark.parametrize("settings, match", [
    ({"name": "spectrum"}, "valid choices: mfcc, mel, classic"),
    ({"name": "mfcc", "n_mfcc": 0}, "n_mfcc"),
    ({"name": "mfcc", "n_mfcc": 200}, "exceeds n_mels"),
    ({"name": "mel", "stats": ["median"]}, "valid choices"),
    ({"name": "mel", "nmels": 3}, "unknown key"),
])
def test_invalid_feature_settings(settings, match):
    with pytest.raises(ConfigError, match=match):
        make_extractor(settings)
