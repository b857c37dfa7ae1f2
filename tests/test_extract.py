"""The features stage's library function on a tiny dataset with a broken file."""
import json

import numpy as np
import pandas as pd
import pytest

from genrelab.config import ConfigError
from genrelab.features import MFCCFeatures, SliceSettings, extract_dataset, load_feature_split
from genrelab.io import write_audio
from genrelab.splits import SplitSettings, make_split
from genrelab.variants import VariantSettings

SR = 8000


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


def _run(tmp_path, index, split="grouped", **kw):
    table = make_split(index, SplitSettings(method=split), seed=0)
    return extract_dataset(index, table, extractor=MFCCFeatures(n_mfcc=8, n_mels=32), variant=VariantSettings(),
                           slicing=kw.pop("slicing", SliceSettings(length_s=2.0)), sample_rate=SR,
                           dataset_dir=tmp_path / "ds", separated_dir=tmp_path / "sep", out_dir=tmp_path / "feat",
                           progress=False, **kw)


def test_features_per_split_with_track_ids_and_skip_report(tiny):
    tmp_path, index = tiny
    summary = _run(tmp_path, index)
    skipped = pd.read_csv(tmp_path / "feat" / "skipped.csv")
    assert list(skipped["track_id"]) == ["high.00005"]
    assert "cannot decode" in skipped["reason"].iloc[0]
    assert summary["n_tracks_skipped"] == 1
    seen = set()
    for split in ("train", "valid", "test"):
        fs = load_feature_split(tmp_path / "feat", split)
        assert fs.X.shape == (len(fs.meta), 16)
        assert fs.S.shape[:2] == (len(fs.meta), 8)
        assert set(fs.meta["slice_idx"]) <= {0, 1}  # 4.2 s -> two 2 s slices
        tracks = set(fs.track_id)
        assert not tracks & seen  # no track in two splits
        seen |= tracks
    info = json.loads((tmp_path / "feat" / "info.json").read_text())
    assert info["labels"] == ["high", "low"] and info["split_method"] == "grouped"


def test_slice_longer_than_every_clip_fails_at_start(tiny):
    tmp_path, index = tiny
    with pytest.raises(ConfigError, match="longer than every clip"):
        _run(tmp_path, index, slicing=SliceSettings(length_s=10.0))
    assert not (tmp_path / "feat").exists()  # nothing half-written


def test_leaky_split_puts_slices_of_one_track_in_several_splits(tiny):
    tmp_path, index = tiny
    _run(tmp_path, index, split="leaky", slicing=SliceSettings(length_s=0.5), seed=1)
    where = {}
    for split in ("train", "valid", "test"):
        for t in load_feature_split(tmp_path / "feat", split).track_id:
            where.setdefault(t, set()).add(split)
    assert any(len(s) > 1 for s in where.values())


def test_separation_quality_scores_a_perfect_and_a_poor_estimate(tmp_path):
    from genrelab.io import write_json
    from genrelab.separation import separation_quality

    rng = np.random.default_rng(0)
    t = np.arange(2 * SR) / SR
    stems = {"vocals": 0.2 * np.sin(2 * np.pi * 440 * t), "other": 0.2 * np.sin(2 * np.pi * 660 * t),
             "drums": 0.2 * (rng.random(len(t)) < 0.01), "bass": 0.2 * np.sin(2 * np.pi * 55 * t)}
    for name, y in stems.items():
        write_audio(tmp_path / "ds/stems/a" / f"{name}.flac", y, SR)
    # estimate: harmonic perfect, percussive = the whole mix (poor)
    write_audio(tmp_path / "sep/a/harmonic.flac", stems["vocals"] + stems["other"], SR)
    write_audio(tmp_path / "sep/a/percussive.flac", sum(stems.values()), SR)
    write_json(tmp_path / "sep/a/done.json", {"stems": ["harmonic", "percussive"]})
    q = separation_quality(pd.DataFrame({"track_id": ["a"]}), separator="hpss", dataset_dir=tmp_path / "ds",
                           stems_dir=tmp_path / "sep", sample_rate=SR, progress=False)
    assert q["n_tracks"] == 1
    assert q["harmonic"]["si_sdr_db_mean"] > 30
    assert q["percussive"]["si_sdr_db_mean"] < 5
