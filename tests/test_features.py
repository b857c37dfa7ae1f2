import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from genrelab.config import ConfigError
from genrelab.features import (
    FEATURES,
    KAGGLE_COLUMNS,
    ClassicFeatures,
    MelFeatures,
    MFCCFeatures,
    SliceSettings,
    make_extractor,
    slice_signal,
    track_feature_sets,
    track_features,
)
from genrelab.features.reference import reference_features

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


@pytest.mark.parametrize("bad", [{"length_s": -1.0}, {"length_s": 0.0}, {"overlap": 1.0}, {"tolerance": 0.5},
                                 {"tolerance": -0.1}, {"whole": True, "overlap": 0.5}])
def test_invalid_slicing(bad):
    with pytest.raises(ConfigError, match="slicing."):
        SliceSettings(**bad)


def test_a_slice_a_few_samples_short_is_kept_and_zero_padded():
    y = np.ones(int(29.98 * SR), np.float32)  # a short GTZAN clip
    slices, starts = slice_signal(y, SR, SliceSettings(length_s=30.0))
    assert slices.shape == (1, 30 * SR)
    assert slices[0, len(y) - 1] == 1 and not slices[0, len(y):].any()
    slices, starts = slice_signal(y, SR, SliceSettings(length_s=3.0))
    assert slices.shape == (10, 3 * SR)  # not 9
    np.testing.assert_allclose(starts, np.arange(10) * 3.0)
    with pytest.raises(ValueError, match="shorter than one slice"):  # beyond the tolerance
        slice_signal(y[: int(29.5 * SR)], SR, SliceSettings(length_s=30.0))
    with pytest.raises(ValueError, match="shorter than one slice"):
        slice_signal(y, SR, SliceSettings(length_s=30.0, tolerance=0.0))


def test_whole_track_is_one_slice_and_has_no_frames():
    y = np.random.default_rng(0).standard_normal((1, int(4.3 * SR))).astype(np.float32)
    slices, starts = slice_signal(y, SR, SliceSettings(whole=True))
    assert slices.shape == (1, 1, y.shape[-1]) and starts.tolist() == [0.0]
    feats = track_features(y, SR, extractor=MelFeatures(n_mels=16), slicing=SliceSettings(whole=True))
    assert feats.vector.shape == (1, 32) and feats.frames is None
    assert SliceSettings(whole=True).min_duration_s() == 0.0


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


def _mixed_slices(n=4, seconds=2.0, seed=0):
    """Slices that differ a lot in level and content (a batch where shared normalisation shows)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    rows = [0.5 * np.sin(2 * np.pi * 220 * t), 0.001 * rng.standard_normal(t.size),
            np.sign(np.sin(2 * np.pi * 2 * t)) * rng.standard_normal(t.size) * 0.8,
            0.3 * np.sin(2 * np.pi * 440 * 1.03 * t) + 0.3 * (rng.random(t.size) < 0.002)]
    return np.stack(rows[:n]).astype(np.float32)


SLICE_EXTRACTORS = [MFCCFeatures(), MFCCFeatures(n_mfcc=13, deltas=True, stats=("mean", "var", "max")),
                    MelFeatures(), MelFeatures(n_mels=40, fmin=50.0, fmax=8000.0), ClassicFeatures()]


def test_every_slice_extractor_is_tested():
    tested = {type(ex) for ex in SLICE_EXTRACTORS}
    assert tested == {cls for cls in FEATURES.values() if hasattr(cls, "extract")}


@pytest.mark.parametrize("ex", SLICE_EXTRACTORS, ids=lambda ex: f"{ex.name}-{len(ex.names())}")
def test_batched_equals_one_slice_at_a_time(ex):
    """A slice's features do not depend on the other slices of its batch (dB reference, tuning,
    onset envelope are per slice)."""
    x = _mixed_slices()
    batch = ex(x, SR)
    for i in range(len(x)):
        alone = ex(x[i:i + 1], SR)
        np.testing.assert_allclose(batch.vector[i], alone.vector[0], rtol=1e-5, atol=1e-5 * np.abs(alone.vector).max())
        if batch.frames is not None:
            np.testing.assert_allclose(batch.frames[i], alone.frames[0], rtol=1e-5, atol=1e-4)
    # and through track_features, whatever the batch size
    y = x.reshape(1, -1)
    slicing = SliceSettings(length_s=2.0)
    a = track_features(y, SR, extractor=ex, slicing=slicing)
    b = track_features(y, SR, extractor=ex, slicing=slicing, batch_slices=1)
    np.testing.assert_allclose(a.vector, b.vector, rtol=1e-5, atol=1e-5 * np.abs(a.vector).max())


@pytest.mark.parametrize("ex", SLICE_EXTRACTORS, ids=lambda ex: f"{ex.name}-{len(ex.names())}")
def test_extractors_equal_their_plain_librosa_definition(ex):
    x = _mixed_slices(seed=1)
    fast = ex(x, SR)
    for i in range(len(x)):
        plain = reference_features(ex, x[i], SR)
        assert plain.vector.shape == fast.vector[i:i + 1].shape
        np.testing.assert_allclose(fast.vector[i], plain.vector[0], rtol=2e-4,
                                   atol=1e-4 * max(1.0, np.abs(plain.vector).max()) if ex.name != "classic" else 1e-6)
        if plain.frames is not None:
            np.testing.assert_allclose(fast.frames[i], plain.frames[0], rtol=1e-4, atol=1e-3)


def test_several_sets_share_one_analysis_and_equal_separate_runs():
    y = _mixed_slices().reshape(1, -1)
    slicing = SliceSettings(length_s=2.0)
    exs = [ClassicFeatures(), MFCCFeatures(), MelFeatures()]
    together = track_feature_sets(y, SR, extractors=exs, slicing=slicing)
    assert list(together) == ["classic", "mfcc", "mel"]
    for ex in exs:
        alone = track_features(y, SR, extractor=ex, slicing=slicing)
        np.testing.assert_array_equal(together[ex.name].vector, alone.vector)
    # classic's 20 MFCC means are the mfcc set's (same definition, one computation)
    cols = [KAGGLE_COLUMNS.index(f"mfcc{i}_mean") for i in range(1, 21)]
    np.testing.assert_allclose(together["classic"].vector[:, cols], together["mfcc"].vector[:, :20], rtol=1e-5,
                               atol=1e-4)


# the header of the Kaggle GTZAN tables (features_30_sec.csv) less filename, length and label
KAGGLE_HEADER = [f"{k}_{s}" for k in ("chroma_stft", "rms", "spectral_centroid", "spectral_bandwidth", "rolloff",
                                      "zero_crossing_rate", "harmony", "perceptr") for s in ("mean", "var")]
KAGGLE_HEADER += ["tempo"] + [f"mfcc{i}_{s}" for i in range(1, 21) for s in ("mean", "var")]


def test_classic_features_have_kaggle_columns():
    ex = ClassicFeatures()
    y = _tone(440) + 0.05 * np.random.default_rng(0).standard_normal(3 * SR).astype(np.float32)
    batch = ex(y[None], SR)
    assert batch.vector.shape == (1, 57)
    assert ex.names() == KAGGLE_HEADER  # written out here, not read from the code under test
    assert batch.frames is None
    assert np.all(np.isfinite(batch.vector))
    # each name labels its own value: a pure 440 Hz tone of amplitude 0.5
    col = dict(zip(ex.names(), ex(_tone(440)[None], SR).vector[0]))
    assert col["rms_mean"] == pytest.approx(0.5 / np.sqrt(2), rel=0.02)
    assert col["zero_crossing_rate_mean"] == pytest.approx(2 * 440 / SR, rel=0.05)
    assert col["spectral_centroid_mean"] == pytest.approx(440, rel=0.1)
    assert col["rms_var"] < 1e-3 and col["perceptr_mean"] == pytest.approx(0, abs=1e-3)


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


def test_classic_columns_match_the_kaggle_table_on_real_gtzan(shared_dir):
    """Whole 30 s clips reproduce the Kaggle features_30_sec.csv rows (librosa < 0.10 framing,
    beat_track tempo)."""
    from genrelab.io import load_audio

    table = pd.read_csv(shared_dir / "data/gtzan/kaggle_features_30_sec.rows_00000.csv").set_index("filename")
    clips = sorted((shared_dir / "audio/gtzan_au").glob("*.00000.au"))
    assert len(clips) == 10
    ex, rows, refs = ClassicFeatures(), [], []
    for path in clips:
        y, _ = load_audio(path, sr=SR)
        ref = table.loc[path.name.replace(".au", ".wav")]
        assert ref["length"] == len(y)  # the table's "length" is the clip's sample count
        rows.append(track_features(y[None], SR, extractor=ex, slicing=SliceSettings(whole=True)).vector[0])
        refs.append(ref[list(KAGGLE_COLUMNS)].to_numpy(float))
    ours, refs = np.array(rows, dtype=float), np.array(refs)
    rel = np.abs(ours - refs) / np.abs(refs)
    median = dict(zip(KAGGLE_COLUMNS, np.median(rel, axis=0)))
    assert max(median.values()) < 0.01, sorted(median.items(), key=lambda kv: -kv[1])[:5]
    tempo = KAGGLE_COLUMNS.index("tempo")
    assert np.sum(np.abs(ours[:, tempo] - refs[:, tempo]) <= 1.0) >= 9, list(zip(ours[:, tempo], refs[:, tempo]))


def test_a_real_gtzan_clip_short_of_30_s_keeps_its_30_s_slice(shared_dir):
    from genrelab.io import load_audio

    y, _ = load_audio(shared_dir / "audio/gtzan_au/jazz.00000.au", sr=SR)
    y = y[: int(29.93 * SR)]  # the shortest GTZAN clips
    feats = track_features(y[None], SR, extractor=MFCCFeatures(), slicing=SliceSettings(length_s=30.0))
    assert feats.vector.shape == (1, 40)


def test_classic_extraction_imports_neither_torch_nor_demucs():
    code = ("import sys, numpy as np\n"
            "from genrelab.features import ClassicFeatures\n"
            "ClassicFeatures()(np.random.default_rng(0).standard_normal((2, 22050)).astype('float32'), 22050)\n"
            "bad = [m for m in ('torch', 'demucs', 'tensorflow', 'essentia') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_rolloff_bins_are_those_of_the_float32_cumulative_sum():
    from genrelab.features.descriptors import _rolloff_bins

    rng = np.random.default_rng(3)
    mag = (np.abs(rng.standard_normal((37, 1025))) ** 4).astype(np.float32)
    mag[0] = 0.0  # silence: bin 0, as librosa
    mag[1, :-1] = 0.0  # all the energy in the top bin
    mag[2, 10:] = 0.0  # all of it at the bottom
    mag[3:] = np.float32(0.1) * (1 + (mag[3:] > 1))  # float32 running sums round: the bin must be theirs
    # float32 sums lose the tiny bins after a loud one: they cross at the last bin, exact sums near bin 950
    mag[4] = 4e-8
    mag[4, 0], mag[4, -1] = 1.0, 1 / 0.85 - 1 + 4e-6
    total = np.cumsum(mag, axis=-1)
    expected = np.argmax(total >= np.float32(0.85) * total[:, -1:], axis=-1)
    got = _rolloff_bins(mag, np.float32(0.85))
    np.testing.assert_array_equal(got, expected)
    assert got[1] == 1024 and got[0] == 0 and got[4] == 1024


@pytest.mark.parametrize("n_fft, n_mels, fmin, fmax", [(2048, 128, 0.0, None), (2048, 96, 50.0, 8000.0),
                                                       (512, 128, 0.0, None)])  # the last has empty filters
def test_mel_projection_over_the_filter_bands_equals_the_dense_product(n_fft, n_mels, fmin, fmax):
    import warnings

    from genrelab.features.analysis import mel_filters, mel_project

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # librosa: "Empty filters detected"
        dense_bank = mel_filters(SR, n_fft, n_mels, fmin, fmax)
    power = (np.abs(np.random.default_rng(4).standard_normal((3, 50, 1 + n_fft // 2))) ** 2).astype(np.float32)
    dense = power.astype(np.float64) @ dense_bank.astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        banded = mel_project(power, SR, n_fft, n_mels, fmin, fmax)
    assert banded.shape == (3, 50, n_mels) and banded.dtype == np.float32
    np.testing.assert_allclose(banded, dense, rtol=1e-5, atol=1e-6 * dense.max())
    assert np.array_equal(banded == 0, dense == 0)  # empty filters stay empty


@pytest.mark.parametrize("n", [1, 2, 3, 172, 255, 256, 384, 512, 1023, 2048, 4096])
def test_the_hann_window_is_scipys_to_the_bit(n):
    import scipy.signal

    from genrelab.features.analysis import window

    expected = scipy.signal.get_window("hann", n, fftbins=True)
    got = window(n)
    assert got.dtype == np.float64 and got.shape == (n,)
    np.testing.assert_array_equal(got, expected)


def test_mfcc_and_mel_of_a_first_track_import_no_scipy_signal():
    # scipy.signal costs about a second: the first track of every process (and worker) would pay it
    code = ("import sys, numpy as np\n"
            "from genrelab.features import SliceSettings, make_extractor, track_feature_sets\n"
            "y = np.random.default_rng(0).standard_normal((1, 3 * 22050)).astype('float32')\n"
            "track_feature_sets(y, 22050, extractors=[make_extractor({'name': n}) for n in ('mfcc', 'mel')],\n"
            "                   slicing=SliceSettings())\n"
            "assert 'scipy.signal' not in sys.modules, 'scipy.signal was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("sr, n_fft, n_mels, fmin, fmax", [
    (22050, 2048, 128, 0.0, None), (22050, 2048, 96, 50.0, 8000.0), (16000, 512, 48, 0.0, None),
    (22050, 512, 128, 0.0, None), (44100, 4096, 40, 20.0, 16000.0)])
def test_mel_filters_are_librosas_to_the_bit(sr, n_fft, n_mels, fmin, fmax):
    import warnings

    import librosa

    from genrelab.features.analysis import mel_filters

    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        expected = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    mel_filters.cache_clear()
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        got = mel_filters(sr, n_fft, n_mels, fmin, fmax)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected.T)
    assert [str(w.message)[:22] for w in ours] == [str(w.message)[:22] for w in theirs]  # empty filters warn


def test_the_shared_stft_is_librosas_to_the_bit_and_its_power_within_rounding():
    import librosa

    from genrelab.features.analysis import SliceAnalysis

    rng = np.random.default_rng(5)
    x = (rng.standard_normal((3, 3 * SR)) * np.array([[1.0], [1e-3], [0.0]])).astype(np.float32)
    analysis = SliceAnalysis(x, SR)
    for n_fft, hop in ((2048, 512), (1024, 256)):
        expected = np.stack([librosa.stft(row, n_fft=n_fft, hop_length=hop, pad_mode="reflect") for row in x])
        np.testing.assert_array_equal(analysis.stft(n_fft, hop), expected.transpose(0, 2, 1))
        theirs = np.abs(expected.transpose(0, 2, 1)) ** 2
        ours = analysis.power(n_fft, hop)
        assert ours.dtype == np.float32 and ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=4 * np.finfo(np.float32).eps, atol=0)
