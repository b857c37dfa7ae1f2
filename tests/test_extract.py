"""The features stage's library function on a tiny dataset with a broken file."""
import json

import numpy as np
import pandas as pd
import pytest

from genrelab.config import ConfigError
from genrelab.features import MFCCFeatures, SliceSettings, extract_dataset, load_feature_split, track_features
from genrelab.io import write_audio
from genrelab.splits import SplitSettings, make_split
from genrelab.store import Store
from genrelab.variants import VariantSettings

SR = 8000


pytestmark = pytest.mark.usefixtures("in_process_compute")  # the tests count calls and raise interrupts


@pytest.fixture
def tiny(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for g, freq in (("low", 200.0), ("high", 2000.0)):
        for i in range(6):
            tid = f"{g}.{i:05d}"
            t = np.arange(int(4.2 * SR)) / SR
            y = 0.3 * np.sin(2 * np.pi * freq * (1 + 0.05 * i) * t) + 0.01 * rng.standard_normal(len(t))
            write_audio(tmp_path / "ds" / "audio" / f"{tid}.wav", y, SR)
            rows.append({"track_id": tid, "genre": g, "artist": f"{g}{i // 2}", "path": f"audio/{tid}.wav",
                         "duration_s": 4.2, "sample_rate": SR, "official_split": ""})
    (tmp_path / "ds" / "audio" / "high.00005.wav").write_bytes(b"this is not audio")
    return tmp_path, pd.DataFrame(rows)


def _run(tmp_path, index, **kw):
    return extract_dataset(index, extractor=kw.pop("extractor", MFCCFeatures(n_mfcc=8, n_mels=32)),
                           variant=VariantSettings(), slicing=kw.pop("slicing", SliceSettings(length_s=2.0)),
                           sample_rate=SR, dataset_dir=tmp_path / "ds", out_dir=tmp_path / "feat",
                           store=Store(tmp_path / "store"), progress=False, **kw)


def test_one_set_for_all_tracks_joined_with_the_split_and_a_skip_report(tiny):
    tmp_path, index = tiny
    summary = _run(tmp_path, index)
    skipped = pd.read_csv(tmp_path / "feat" / "skipped.csv")
    assert list(skipped["track_id"]) == ["high.00005"]
    assert "cannot decode" in skipped["reason"].iloc[0]
    assert summary == {"n_tracks": 11, "n_slices": 22, "n_skipped": 1, "computed": 11, "reused": 0}
    meta = pd.read_csv(tmp_path / "feat" / "meta.csv")
    assert list(meta.columns) == ["track_id", "slice_idx", "start_s", "genre", "label"]
    assert np.load(tmp_path / "feat" / "X.npy").shape == (22, 16)
    table = make_split(index, SplitSettings(method="grouped"), seed=0)
    seen = set()
    for split in ("train", "valid", "test"):
        fs = load_feature_split(tmp_path / "feat", split, split_table=table)
        assert fs.X.shape == (len(fs.meta), 16)
        assert fs.S.shape[:2] == (len(fs.meta), 8)
        assert set(fs.meta["slice_idx"]) <= {0, 1}  # 4.2 s -> two 2 s slices
        tracks = set(fs.track_id)
        assert tracks == set(table.loc[table["split"] == split, "track_id"]) - {"high.00005"}
        assert not tracks & seen  # no track in two splits
        seen |= tracks
        assert fs.info["split_method"] == "grouped"
    info = json.loads((tmp_path / "feat" / "info.json").read_text())
    assert info["labels"] == ["high", "low"]
    assert _run(tmp_path, index)["reused"] == 11  # a second run extracts nothing


def test_set_equals_the_per_track_features_and_frames_read_lazily(tiny):
    tmp_path, index = tiny
    _run(tmp_path, index)
    X, S = np.load(tmp_path / "feat" / "X.npy"), np.load(tmp_path / "feat" / "S.npy")
    extractor = MFCCFeatures(n_mfcc=8, n_mels=32)
    from genrelab.io import load_audio

    y, _ = load_audio(tmp_path / "ds" / "audio" / "low.00003.wav", sr=SR)
    feats = track_features(y[None], SR, extractor=extractor, slicing=SliceSettings(length_s=2.0))
    meta = pd.read_csv(tmp_path / "feat" / "meta.csv", dtype={"track_id": str})
    rows = (meta["track_id"] == "low.00003").to_numpy()
    # (the engine runs items with one BLAS thread; this process may use several: last-bit differences)
    np.testing.assert_allclose(X[rows], feats.vector, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(S[rows], feats.frames, rtol=1e-5, atol=1e-4)
    table = make_split(index, SplitSettings(method="grouped"), seed=0)
    fs = load_feature_split(tmp_path / "feat", "train", split_table=table)
    assert not isinstance(fs.S, np.ndarray)  # rows of the memory map, read when indexed
    np.testing.assert_array_equal(fs.S[np.array([0, 2])], np.asarray(fs.S)[[0, 2]])
    np.testing.assert_array_equal(fs.S[1:3], np.asarray(fs.S)[1:3])
    assert len(fs.S) == len(fs.meta) and fs.S.shape[1:] == S.shape[1:]


def test_slice_longer_than_every_clip_fails_at_start(tiny):
    tmp_path, index = tiny
    with pytest.raises(ConfigError, match="longer than every clip"):
        _run(tmp_path, index, slicing=SliceSettings(length_s=10.0))
    assert not (tmp_path / "feat").exists()  # nothing half-written


def test_leaky_split_puts_slices_of_one_track_in_several_splits(tiny):
    tmp_path, index = tiny
    _run(tmp_path, index, slicing=SliceSettings(length_s=0.5))
    table = make_split(index, SplitSettings(method="leaky"), seed=1)
    where = {}
    for split in ("train", "valid", "test"):
        for t in load_feature_split(tmp_path / "feat", split, split_table=table, seed=1).track_id:
            where.setdefault(t, set()).add(split)
    assert any(len(s) > 1 for s in where.values())
    # the same seed assigns the same slices (train and evaluate agree); another seed does not
    again = load_feature_split(tmp_path / "feat", "test", split_table=table, seed=1)
    other = load_feature_split(tmp_path / "feat", "test", split_table=table, seed=2)
    first = load_feature_split(tmp_path / "feat", "test", split_table=table, seed=1)
    assert again.meta.equals(first.meta) and not other.meta.equals(first.meta)


def test_separation_scores_a_perfect_and_a_poor_estimate_once(tmp_path):
    from genrelab.separation.dataset import object_job, separate_chunk, summarize_quality

    rng = np.random.default_rng(0)
    t = np.arange(2 * SR) / SR
    stems = {"vocals": 0.2 * np.sin(2 * np.pi * 440 * t), "other": 0.2 * np.sin(2 * np.pi * 660 * t),
             "drums": 0.2 * (rng.random(len(t)) < 0.01), "bass": 0.2 * np.sin(2 * np.pi * 55 * t)}
    for name, y in stems.items():
        write_audio(tmp_path / "ds/stems/a" / f"{name}.flac", y, SR)
    write_audio(tmp_path / "ds/a.wav", sum(stems.values()), SR)

    class Fixed:  # harmonic estimate perfect, percussive = the whole mix (poor)
        store_name = "hpss"
        stems = ("harmonic", "percussive")
        calls = 0

        def separate(self, y, sr):
            Fixed.calls += 1
            return {"harmonic": stems["vocals"] + stems["other"], "percussive": sum(stems.values())}

    job = object_job(Fixed(), store=Store(tmp_path / "store"), sr=SR, stems=None)
    track = {"track_id": "a", "path": str(tmp_path / "ds/a.wav"), "truth": str(tmp_path / "ds/stems/a")}
    first = separate_chunk([track], job)
    again = separate_chunk([track], job)
    assert [r["status"] for r in first + again] == ["computed", "reused"] and Fixed.calls == 1
    assert again[0]["scores"] == first[0]["scores"]  # read back from the store, not rescored
    q = summarize_quality([first[0]["scores"]])
    assert q["n_tracks"] == 1
    assert q["harmonic"]["si_sdr_db_mean"] > 30
    assert q["percussive"]["si_sdr_db_mean"] < 5
