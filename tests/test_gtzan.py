"""GTZAN ingest on fixtures in the real layouts (original tar.gz, Kaggle zip) and on real .au files."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from collections import Counter
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from httpserver import FixtureServer, closed_port_url

from genrelab import GENRES
from genrelab.config import ConfigError
from genrelab.datasets import INDEX_COLUMNS, prepare_dataset, read_index
from genrelab.datasets.gtzan import (
    GtzanLayoutError,
    find_gtzan_audio,
    load_gtzan_artists,
    load_gtzan_split,
    prepare_gtzan,
    probe_audio,
)
from genrelab.download import DownloadError
from genrelab.io import AudioDecodeError

SR = 22050
# facts from the shipped fault-filtered lists: valid / train / test / faulty (in no list)
KNOWN = {"blues.00000": "valid", "blues.00029": "train", "blues.00012": "test", "classical.00042": ""}
TRACKS = sorted({f"{g}.00000" for g in GENRES} | set(KNOWN) | {"jazz.00054"})
SHORT_CLIPS = {"expected_duration_s": [0.1, 40.0]}  # the fixtures hold 0.25 s clips, not GTZAN's 30 s


def _audio_bytes(fmt: str, seconds: float, seed: int) -> bytes:
    y = 0.1 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * SR)) / SR)
    y += 0.01 * np.random.default_rng(seed).standard_normal(y.size)
    buf = io.BytesIO()
    sf.write(buf, y.astype(np.float32), SR, format=fmt, subtype="PCM_16")
    return buf.getvalue()


def _entries(prefix: str, ext: str, fmt: str, seconds: float = 0.25) -> dict[str, bytes]:
    out = {}
    for i, tid in enumerate(TRACKS):
        genre = tid.split(".")[0]
        out[f"{prefix}/{genre}/{tid}.{ext}"] = _audio_bytes(fmt, seconds, i)
    return out


def _original_tar(path: Path) -> Path:
    """``genres.tar.gz`` as released: ``genres/<genre>/<genre>.000NN.au`` plus marsyas .mf lists."""
    entries = _entries("genres", "au", "AU")
    entries["genres/input.mf"] = b"genres/blues/blues.00000.au\tblues\n"
    with tarfile.open(path, "w:gz") as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _kaggle_entries() -> dict[str, bytes]:
    """The Kaggle copy: ``Data/genres_original/...wav`` with a corrupt jazz.00054.wav, images, csvs."""
    entries = _entries("Data/genres_original", "wav", "WAV")
    entries["Data/genres_original/jazz/jazz.00054.wav"] = b"\x00\x01garbage that is not a RIFF file" * 20
    entries["Data/images_original/blues/blues00000.png"] = b"\x89PNG fake"
    entries["Data/features_30_sec.csv"] = b"filename,length,label\n"
    return entries


def _kaggle_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in _kaggle_entries().items():
            zf.writestr(name, data)
    return path


def _check_outputs(out: Path, index: pd.DataFrame, *, n_found: int, n_quarantined: int) -> dict:
    assert list(index.columns) == list(INDEX_COLUMNS)
    on_disk = pd.read_csv(out / "index.csv", dtype=str, keep_default_na=False)
    assert on_disk["track_id"].tolist() == index["track_id"].tolist()
    assert all((out / p).is_file() for p in index["path"])  # paths resolve from out_dir
    summary = json.loads((out / "summary.json").read_text())
    assert all(isinstance(v, (int, float)) for v in summary.values())
    assert (summary["n_found"], summary["n_usable"], summary["n_quarantined"]) == (
        n_found, len(index), n_quarantined)
    return summary


def test_packaged_splits_match_the_published_sizes():
    ff = load_gtzan_split("fault_filtered")
    assert Counter(ff.values()) == {"train": 443, "valid": 197, "test": 290}
    assert {t: ff.get(t, "") for t in KNOWN} == KNOWN
    st = load_gtzan_split("stratified")
    assert Counter(st.values()) == {"train": 500, "valid": 250, "test": 250}
    assert all(Counter(t.split(".")[0] for t in st).get(g) == 100 for g in GENRES)
    with pytest.raises(ConfigError, match="-S split=kfold"):   # folds are the split stage's, not the dataset's
        load_gtzan_split("kfold")
    with pytest.raises(ConfigError, match="valid choices: fault_filtered, stratified"):
        load_gtzan_split("random")


def test_packaged_artists_are_sturms_index():
    artists = load_gtzan_artists()
    assert len(artists) == 1000 and set(artists) == {f"{g}.{n:05d}" for g in GENRES for n in range(100)}
    known = {t: a for t, a in artists.items() if a}
    assert len(known) == 919 and len(set(known.values())) == 244
    assert artists["blues.00000"] == "John Lee Hooker"
    assert Counter(a for t, a in known.items() if t.startswith("reggae."))["Bob Marley"] == 35
    assert Counter(a for t, a in known.items() if t.startswith("pop."))["Britney Spears"] == 24
    text = (files("genrelab") / "data" / "gtzan_artists.csv").read_text()
    assert "Sturm" in text and "An Analysis of the GTZAN Music Genre Dataset" in text and "MIRUM" in text
    # the fault-filtered split is artist-conflict-free; the 70 faulty tracks all have a known artist
    ff = load_gtzan_split("fault_filtered")
    splits_of = {}
    for t, s in ff.items():
        if artists[t]:
            splits_of.setdefault(artists[t].casefold(), set()).add(s)
    assert all(len(v) == 1 for v in splits_of.values())
    assert all(artists[t] for t in artists if t not in ff)


def test_download_original_release_then_reuse_cache(tmp_path):
    archive = _original_tar(tmp_path / "served.tar.gz")
    data = archive.read_bytes()
    settings = {"urls": ["http://127.0.0.1:1/placeholder"], "md5": hashlib.md5(data).hexdigest(),
                "cache_dir": str(tmp_path / "cache"), "split": "fault_filtered", **SHORT_CLIPS}
    with FixtureServer({"/sound/genres.tar.gz": data}) as srv:
        settings["urls"] = [closed_port_url(), srv.url("/sound/genres.tar.gz")]  # first mirror is dead
        out = tmp_path / "gtzan"
        index = prepare_gtzan(settings, out, progress=False)
        assert len(srv.requests) == 1
    assert (tmp_path / "cache" / "genres.tar.gz").is_file()
    summary = _check_outputs(out, index, n_found=len(TRACKS), n_quarantined=0)
    assert index["track_id"].tolist() == TRACKS
    assert (index["genre"] == index["track_id"].str.split(".").str[0]).all()
    assert (index["sample_rate"] == SR).all()
    np.testing.assert_allclose(index["duration_s"], 0.25, atol=1e-3)
    assert index["artist"].tolist() == [load_gtzan_artists()[t] for t in TRACKS]   # Sturm's index
    assert {t: s for t, s in zip(index["track_id"], index["official_split"]) if t in KNOWN} == KNOWN
    assert index["path"].str.endswith(".au").all() and not index["path"].str.startswith("/").any()
    assert summary["n_unassigned"] == 1  # classical.00042 is one of the 70 faulty tracks
    assert pd.read_csv(out / "quarantine.csv").empty
    # the server is gone: the verified download and extraction in the cache are reused
    again = prepare_gtzan(settings, tmp_path / "gtzan2", progress=False)
    assert again["track_id"].tolist() == TRACKS


def test_kaggle_zip_quarantines_corrupt_jazz_00054(tmp_path):
    source = _kaggle_zip(tmp_path / "archive.zip")
    out = tmp_path / "gtzan"
    index = prepare_gtzan({"source": str(source), "cache_dir": str(tmp_path / "cache"), "split": "stratified",
                           **SHORT_CLIPS}, out, progress=False)
    _check_outputs(out, index, n_found=len(TRACKS), n_quarantined=1)
    assert "jazz.00054" not in set(index["track_id"])
    q = pd.read_csv(out / "quarantine.csv")
    assert q["track_id"].tolist() == ["jazz.00054"]
    assert q["path"].iloc[0].endswith("jazz/jazz.00054.wav") and "decode" in q["reason"].iloc[0]
    assert index["path"].str.endswith(".wav").all()
    st = load_gtzan_split("stratified")
    assert index["official_split"].tolist() == [st[t] for t in index["track_id"]]


@pytest.mark.parametrize("below", ["", "wrapper", "wrapper/Data", "wrapper/Data/genres_original"])
def test_kaggle_extracted_folder_detected_at_any_level(tmp_path, below):
    root = tmp_path / "kaggle"
    for name, data in _kaggle_entries().items():
        p = root / "wrapper" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    audio_dir, layout = find_gtzan_audio(root / below if below else root)
    assert layout == "kaggle" and audio_dir == root / "wrapper" / "Data" / "genres_original"


def test_registry_entry_keeps_every_track_with_its_artist(tmp_path):
    root = tmp_path / "copy"
    for name, data in _entries("genres", "au", "AU").items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    # through the project's dataset registry, as the prepare stage calls it
    index = prepare_dataset({"name": "gtzan", "source": str(root), "split": "fault_filtered",
                             "cache_dir": str(tmp_path / "c"), **SHORT_CLIPS}, tmp_path / "out", progress=False)
    assert len(index) == len(TRACKS)   # the faulty classical.00042 too, in no official split
    assert index.set_index("track_id").loc["classical.00042", "official_split"] == ""
    assert index["artist"].tolist() == [load_gtzan_artists()[t] for t in index["track_id"]]
    pd.testing.assert_frame_equal(read_index(tmp_path / "out"), index, check_dtype=False)


def test_unreachable_download_says_where_to_put_the_archive(tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError) as err:
        prepare_gtzan({"urls": [closed_port_url("/sound/genres.tar.gz")], "cache_dir": str(cache)},
                      tmp_path / "out", progress=False)
    msg = str(err.value)
    assert str((cache / "genres.tar.gz").resolve()) in msg and "5b3d6dddb579ab49814ab86dba69e7c7" in msg


def test_invalid_settings_and_sources(tmp_path):
    with pytest.raises(ConfigError, match="fault_filtered, stratified"):
        prepare_gtzan({"split": "random"}, tmp_path / "o", progress=False)
    with pytest.raises(ConfigError, match="dataset.split: 'kfold' is not a dataset option.*-S split=kfold"):
        prepare_gtzan({"split": "kfold"}, tmp_path / "o", progress=False)
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['n_folds'\]"):
        prepare_gtzan({"n_folds": 5}, tmp_path / "o", progress=False)
    with pytest.raises(ConfigError, match="unknown key"):
        prepare_gtzan({"sourse": "x"}, tmp_path / "o", progress=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        prepare_gtzan({"source": str(tmp_path / "nope")}, tmp_path / "o", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(GtzanLayoutError, match=r"genres/<genre>/<genre>\.000NN\.au.*Data/genres_original"):
        find_gtzan_audio(tmp_path / "empty")


def test_probe_audio_rejects_empty_and_undecodable(tmp_path):
    (tmp_path / "empty.au").write_bytes(b"")
    with pytest.raises(AudioDecodeError, match="empty"):
        probe_audio(tmp_path / "empty.au")
    (tmp_path / "bad.wav").write_bytes(b"not audio at all" * 10)
    with pytest.raises(AudioDecodeError):
        probe_audio(tmp_path / "bad.wav")
    (tmp_path / "ok.wav").write_bytes(_audio_bytes("WAV", 1.5, 0))
    assert probe_audio(tmp_path / "ok.wav").duration_s == pytest.approx(1.5, abs=1e-4)


def test_real_gtzan_au_files(tmp_path, shared_dir):
    src = shared_dir / "audio" / "gtzan_au"
    if not src.is_dir():
        pytest.skip(f"{src} is absent")
    for f in sorted(src.glob("*.au")):
        genre = f.name.split(".")[0]
        (tmp_path / "genres" / genre).mkdir(parents=True, exist_ok=True)
        (tmp_path / "genres" / genre / f.name).symlink_to(f)
    index = prepare_gtzan({"source": str(tmp_path), "split": "stratified", "cache_dir": str(tmp_path / "c")},
                          tmp_path / "out", progress=False)
    assert index["track_id"].tolist() == [f"{g}.00000" for g in GENRES]
    assert (index["sample_rate"] == 22050).all()
    header = [sf.info(src / f"{t}.au").duration for t in index["track_id"]]  # real clips: 30.00-30.13 s
    np.testing.assert_allclose(index["duration_s"], header, atol=1e-3)
    assert index["duration_s"].between(29.9, 30.2).all()
    assert (index["official_split"] != "").all()
