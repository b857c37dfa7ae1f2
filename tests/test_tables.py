"""Feature-table imports: Kaggle GTZAN features_{30,3}_sec.csv and FMA features.csv."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_fma import tracks_csv_text

from genrelab.config import ConfigError
from genrelab.datasets.gtzan import load_gtzan_artists, load_gtzan_split
from genrelab.datasets.tables import import_table

# The 60 columns of the Kaggle GTZAN features_30_sec.csv / features_3_sec.csv, as in
# ../shared/data/gtzan/kaggle_features_30_sec.header.csv (checked below when present).
KAGGLE_HEADER = (
    "filename,length,chroma_stft_mean,chroma_stft_var,rms_mean,rms_var,spectral_centroid_mean,"
    "spectral_centroid_var,spectral_bandwidth_mean,spectral_bandwidth_var,rolloff_mean,rolloff_var,"
    "zero_crossing_rate_mean,zero_crossing_rate_var,harmony_mean,harmony_var,perceptr_mean,perceptr_var,tempo,"
    + ",".join(f"mfcc{i}_mean,mfcc{i}_var" for i in range(1, 21))
    + ",label"
).split(",")
# fault-filtered facts: valid / train / test / faulty (in no list)
TRACKS = {"blues.00000": "valid", "blues.00029": "train", "blues.00012": "test", "classical.00042": ""}

# FMA features.csv: 7 statistics x these features (number of coefficients) = 518 columns
FMA_FEATURES = {"chroma_cens": 12, "chroma_cqt": 12, "chroma_stft": 12, "mfcc": 20, "rmse": 1,
                "spectral_bandwidth": 1, "spectral_centroid": 1, "spectral_contrast": 7,
                "spectral_rolloff": 1, "tonnetz": 6, "zcr": 1}
FMA_STATS = ("kurtosis", "max", "mean", "median", "min", "skew", "std")


def _kaggle_csv(path, track_ids, *, slices=None, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for tid in track_ids:
        for s in ([None] if slices is None else range(slices)):
            name = f"{tid}.wav" if s is None else f"{tid}.{s}.wav"
            rows.append([name, 661794 if s is None else 66149, *rng.standard_normal(57).round(6),
                         tid.split(".")[0]])
    pd.DataFrame(rows, columns=KAGGLE_HEADER).to_csv(path, index=False)
    return pd.read_csv(path)


def test_kaggle_header_matches_shared(shared_dir):
    ref = shared_dir / "data" / "gtzan" / "kaggle_features_30_sec.header.csv"
    if not ref.is_file():
        pytest.skip(f"{ref} is absent")
    assert ref.read_text().strip().split(",") == KAGGLE_HEADER and len(KAGGLE_HEADER) == 60


def test_kaggle_30_sec_by_fault_filtered_split(tmp_path):
    raw = _kaggle_csv(tmp_path / "features_30_sec.csv", list(TRACKS)[::-1])
    out = import_table("gtzan_kaggle", tmp_path / "features_30_sec.csv")
    assert list(out) == ["train", "valid", "test", "none"]
    for split in out:
        tids = [t for t, s in TRACKS.items() if s == (split if split != "none" else "")]
        part = out[split]
        assert part["X"].dtype == np.float32 and part["X"].shape == (len(tids), 57)
        assert part["track_id"].tolist() == tids and part["slice_idx"].tolist() == [0] * len(tids)
        assert part["genre"].tolist() == [t.split(".")[0] for t in tids]
        assert part["artist"].tolist() == [load_gtzan_artists()[t] for t in tids]   # Sturm's index
        assert list(part["feature_names"]) == KAGGLE_HEADER[2:-1]
        want = raw.set_index("filename").loc[[f"{t}.wav" for t in tids], KAGGLE_HEADER[2:-1]].to_numpy(np.float32)
        np.testing.assert_array_equal(part["X"], want)
    # a faulty track is kept in no official split, as the audio ingest keeps it
    assert out["none"]["track_id"].tolist() == ["classical.00042"]


def test_kaggle_3_sec_slices_grouped_by_track(tmp_path):
    _kaggle_csv(tmp_path / "features_3_sec.csv", ["blues.00029", "jazz.00000", "blues.00000"], slices=10)
    out = import_table("gtzan_kaggle", tmp_path / "features_3_sec.csv", split="stratified")
    st = load_gtzan_split("stratified")
    everything = np.concatenate([p["track_id"] for p in out.values()])
    assert len(everything) == 30
    assert len(out["none"]["track_id"]) == 0
    for split, part in out.items():
        assert all(st[t] == split for t in part["track_id"])
        order = list(zip(part["track_id"], part["slice_idx"]))
        assert order == sorted(order)  # grouped by track, slices 0..9 in order
        for t in set(part["track_id"]):
            assert part["slice_idx"][part["track_id"] == t].tolist() == list(range(10))
    with pytest.raises(ConfigError, match="-S split=kfold"):   # folds are made by the split stage
        import_table("gtzan_kaggle", tmp_path / "features_3_sec.csv", split="kfold")


def test_kaggle_bad_inputs(tmp_path):
    _kaggle_csv(tmp_path / "f.csv", ["blues.00000"])
    df = pd.read_csv(tmp_path / "f.csv")
    df.loc[0, "filename"] = "track_one.wav"
    df.to_csv(tmp_path / "badname.csv", index=False)
    with pytest.raises(ValueError, match="track_one.wav"):
        import_table("gtzan_kaggle", tmp_path / "badname.csv")
    df.loc[0, ["filename", "label"]] = ["blues.00000.wav", "rock"]
    df.to_csv(tmp_path / "badlabel.csv", index=False)
    with pytest.raises(ValueError, match="label disagrees"):
        import_table("gtzan_kaggle", tmp_path / "badlabel.csv")
    with pytest.raises(ConfigError, match="fma, gtzan_kaggle|gtzan_kaggle, fma"):
        import_table("kaggle", tmp_path / "f.csv")
    with pytest.raises(ConfigError, match="fault_filtered"):
        import_table("gtzan_kaggle", tmp_path / "f.csv", split="official")
    with pytest.raises(ValueError, match="'fma' only"):
        import_table("gtzan_kaggle", tmp_path / "f.csv", subset="small")
    with pytest.raises(FileNotFoundError):
        import_table("gtzan_kaggle", tmp_path / "missing.csv")


def _fma_features_csv(path, track_ids, seed=0):
    cols = [(f, s, f"{i:02d}") for f, n in FMA_FEATURES.items() for s in FMA_STATS for i in range(1, n + 1)]
    columns = pd.MultiIndex.from_tuples(cols, names=("feature", "statistics", "number")).sort_values()
    X = np.random.default_rng(seed).standard_normal((len(track_ids), len(columns))).round(6)
    df = pd.DataFrame(X, index=pd.Index(track_ids, name="track_id"), columns=columns)
    df.to_csv(path, float_format="%.6e")
    return df


def test_fma_features_with_official_split(tmp_path):
    (tmp_path / "tracks.csv").write_text(tracks_csv_text())
    feats = _fma_features_csv(tmp_path / "features.csv", [1000, 2, 3, 5, 10, 20, 140])  # 666 has no features
    assert feats.shape[1] == 518
    head = (tmp_path / "features.csv").read_text().splitlines()[:4]
    assert [h.split(",")[0] for h in head] == ["feature", "statistics", "number", "track_id"]
    out = import_table("fma", tmp_path / "features.csv", tracks_csv=tmp_path / "tracks.csv", subset="small")
    assert {k: v["track_id"].tolist() for k, v in out.items()} == {
        "train": ["2", "10", "1000"], "valid": ["140"], "test": ["5"], "none": []}
    train = out["train"]
    assert train["X"].shape == (3, 518) and train["X"].dtype == np.float32
    assert train["feature_names"][0] == "chroma_cens_kurtosis_01" and len(set(train["feature_names"])) == 518
    np.testing.assert_allclose(train["X"], feats.loc[[2, 10, 1000]].to_numpy(np.float32), rtol=1e-5)
    assert train["genre"].tolist() == ["Hip-Hop", "Pop", "Rock"]
    assert train["artist"].tolist() == ["1", "6", "200"]   # FMA's artist ids: the split stage groups by them
    medium = import_table("fma", tmp_path / "features.csv", tracks_csv=tmp_path / "tracks.csv", subset="medium")
    assert medium["valid"]["track_id"].tolist() == ["3", "140"]
    with pytest.raises(ValueError, match="needs `tracks_csv`"):
        import_table("fma", tmp_path / "features.csv", subset="small")
    with pytest.raises(ValueError, match="three-level header"):
        import_table("fma", tmp_path / "tracks.csv", tracks_csv=tmp_path / "tracks.csv", subset="small")
