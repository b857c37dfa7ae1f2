"""FMA ingest on fixtures in the real layouts (fma_metadata.zip, fma_small.zip) and on a real FMA mp3."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from genrelab.config import ConfigError
from genrelab.datasets import prepare_dataset, read_index
from genrelab.datasets.fma import (
    fma_audio_path,
    load_fma_tracks,
    prepare_fma,
    prepare_fma_small,
    select_fma_subset,
)
from genrelab.download import DownloadError

# The three header lines of FMA's tracks.csv (two-level columns + index line), as in
# ../shared/data/fma/tracks_header_reconstructed.csv (checked below when that is present).
TRACKS_HEADER = [
    ",album,album,album,album,album,album,album,album,album,album,album,album,album,artist,artist,artist,"
    "artist,artist,artist,artist,artist,artist,artist,artist,artist,artist,artist,artist,artist,artist,set,"
    "set,track,track,track,track,track,track,track,track,track,track,track,track,track,track,track,track,"
    "track,track,track,track",
    ",comments,date_created,date_released,engineer,favorites,id,information,listens,producer,tags,title,"
    "tracks,type,active_year_begin,active_year_end,associated_labels,bio,comments,date_created,favorites,"
    "id,latitude,location,longitude,members,name,related_projects,tags,website,wikipedia_page,split,subset,"
    "bit_rate,comments,composer,date_created,date_recorded,duration,favorites,genre_top,genres,genres_all,"
    "information,interest,language_code,license,listens,lyricist,number,publisher,tags,title",
    "track_id" + "," * 52,
]

# track_id: (subset, split, genre_top, artist id, seconds of audio | "empty" | None = no file)
FIXTURE_TRACKS = {
    2: ("small", "training", "Hip-Hop", 1, 2.0),
    3: ("medium", "validation", "Hip-Hop", 1, 2.0),
    5: ("small", "test", "Hip-Hop", 1, 2.0),
    10: ("small", "training", "Pop", 6, 2.0),
    20: ("large", "training", None, 4, None),
    140: ("small", "validation", "Folk", 60, 2.0),
    666: ("small", "test", "Rock", 100, 1.2),  # short clip: kept, counted
    1000: ("small", "training", "Rock", 200, 2.0),  # lives in 001/
    98565: ("small", "training", "Electronic", 300, "empty"),  # fma_small erratum: no audio
    98567: ("small", "training", "Electronic", 300, None),  # listed, file missing
}
SMALL_USABLE = ["2", "5", "10", "140", "666", "1000"]


def tracks_frame(tracks: dict = FIXTURE_TRACKS) -> pd.DataFrame:
    """A tracks table with FMA's 52 two-level columns, filled for the columns we read."""
    cols = pd.MultiIndex.from_tuples(list(zip(TRACKS_HEADER[0].split(",")[1:], TRACKS_HEADER[1].split(",")[1:])))
    df = pd.DataFrame(index=pd.Index(sorted(tracks), name="track_id"), columns=cols, dtype=object)
    for tid in df.index:
        subset, split, genre, artist, _ = tracks[tid]
        df.loc[tid, ("set", "subset")] = subset
        df.loc[tid, ("set", "split")] = split
        df.loc[tid, ("track", "genre_top")] = genre
        df.loc[tid, ("artist", "id")] = artist
        df.loc[tid, ("artist", "name")] = f"Artist {artist}"
        df.loc[tid, ("track", "genres")] = "[21]"
        df.loc[tid, ("track", "title")] = f"Title, with comma {tid}"
    return df


def tracks_csv_text(tracks: dict = FIXTURE_TRACKS) -> str:
    text = tracks_frame(tracks).to_csv()
    assert text.splitlines()[:3] == TRACKS_HEADER  # same layout as the real file
    return text


def mp3_bytes(seconds: float, seed: int, sr: int = 22050) -> bytes:
    y = 0.2 * np.sin(2 * np.pi * 330 * np.arange(int(seconds * sr)) / sr)
    y += 0.01 * np.random.default_rng(seed).standard_normal(y.size)
    buf = io.BytesIO()
    sf.write(buf, y.astype(np.float32), sr, format="MP3")
    return buf.getvalue()


def audio_entries(folder: str, subsets: tuple[str, ...]) -> dict[str, bytes]:
    out = {f"{folder}/README.txt": b"fma audio\n", f"{folder}/checksums": b""}
    for tid, (subset, _, _, _, audio) in FIXTURE_TRACKS.items():
        if subset not in subsets or audio is None:
            continue
        out[f"{folder}/{fma_audio_path(tid)}"] = b"" if audio == "empty" else mp3_bytes(audio, tid)
    return out


def metadata_entries() -> dict[str, bytes]:
    return {
        "fma_metadata/tracks.csv": tracks_csv_text().encode(),
        "fma_metadata/genres.csv": b"genre_id,#tracks,parent,title,top_level\n21,8389,0,Hip-Hop,21\n",
    }


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def write_tree(root: Path, entries: dict[str, bytes]) -> Path:
    for name, data in entries.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_header_matches_the_shared_reconstruction(shared_dir):
    ref = shared_dir / "data" / "fma" / "tracks_header_reconstructed.csv"
    if not ref.is_file():
        pytest.skip(f"{ref} is absent")
    assert ref.read_text().splitlines()[:3] == TRACKS_HEADER


def test_audio_path_rule():
    assert fma_audio_path(2) == "000/000002.mp3"
    assert fma_audio_path(155066) == "155/155066.mp3"
    with pytest.raises(ValueError, match=">= 0"):
        fma_audio_path(-1)


def test_tracks_csv_reading_and_subsets(tmp_path):
    path = tmp_path / "tracks.csv"
    path.write_text(tracks_csv_text())
    tracks = load_fma_tracks(path)
    assert tracks.index.name == "track_id" and tracks.shape == (len(FIXTURE_TRACKS), 52)
    small = select_fma_subset(tracks, "small")
    medium = select_fma_subset(tracks, "medium")
    assert set(small.index) < set(medium.index) and 3 in medium.index and 20 not in medium.index
    assert small.loc[2].tolist() == ["Hip-Hop", "1", "train"]
    assert small.loc[140, "official_split"] == "valid" and small.loc[5, "official_split"] == "test"
    with pytest.raises(ConfigError, match="small, medium"):
        select_fma_subset(tracks, "tiny")
    (tmp_path / "flat.csv").write_text("track_id,genre\n2,Hip-Hop\n")
    with pytest.raises(ValueError, match="tracks.csv"):
        load_fma_tracks(tmp_path / "flat.csv")


def test_download_small_quarantines_errata_and_counts_short(tmp_path):
    meta, small = zip_bytes(metadata_entries()), zip_bytes(audio_entries("fma_small", ("small",)))
    files = {"/fma/fma_metadata.zip": meta, "/fma/fma_small.zip": small}
    from httpserver import FixtureServer

    with FixtureServer(files) as srv:
        settings = {
            "base_urls": [srv.url("/fma/")],
            "sha1": {"fma_metadata.zip": hashlib.sha1(meta).hexdigest(),
                     "fma_small.zip": hashlib.sha1(small).hexdigest()},
            "cache_dir": str(tmp_path / "cache"),
            "short_s": 1.5,
        }
        out = tmp_path / "fma_small"
        index = prepare_fma_small(settings, out, progress=False)
        assert sorted(r.path for r in srv.requests) == sorted(files)
    assert index["track_id"].tolist() == SMALL_USABLE
    on_disk = pd.read_csv(out / "index.csv", dtype=str, keep_default_na=False)
    assert on_disk["track_id"].tolist() == SMALL_USABLE and on_disk["path"].tolist() == index["path"].tolist()
    assert all((out / p).is_file() for p in index["path"])
    assert index.set_index("track_id").loc["1000", "path"].endswith("fma_small/001/001000.mp3")
    row = index.set_index("track_id").loc["2"]
    assert (row["genre"], row["artist"], row["official_split"], row["sample_rate"]) == ("Hip-Hop", "1", "train", 22050)
    dur = index.set_index("track_id")["duration_s"]
    assert 1.1 < dur["666"] < 1.4 and (dur.drop("666") > 1.9).all()
    q = pd.read_csv(out / "quarantine.csv", dtype=str).set_index("track_id")
    assert sorted(q.index) == ["98565", "98567"]
    assert "empty" in q.loc["98565", "reason"] and "missing" in q.loc["98567", "reason"]
    summary = json.loads((out / "summary.json").read_text())
    assert {k: summary[k] for k in ("n_listed", "n_found", "n_usable", "n_quarantined", "n_short")} == {
        "n_listed": 8, "n_found": 7, "n_usable": 6, "n_quarantined": 2, "n_short": 1}


def test_checksum_mismatch_of_published_archive(tmp_path):
    meta = zip_bytes(metadata_entries())
    from httpserver import FixtureServer

    with FixtureServer({"/fma/fma_metadata.zip": meta}) as srv, pytest.raises(DownloadError) as err:
        # no sha1 override: the fixture does not match the published checksum
        prepare_fma({"base_urls": [srv.url("/fma")], "cache_dir": str(tmp_path / "c")}, tmp_path / "o",
                    subset="small", progress=False)
    assert "f0df49ffe5f2a6008d7dc83c6915b31835dfe733" in str(err.value)
    assert hashlib.sha1(meta).hexdigest() in str(err.value)


def test_medium_from_local_folders(tmp_path):
    meta_dir = write_tree(tmp_path / "meta", metadata_entries())
    audio_dir = write_tree(tmp_path / "audio", audio_entries("fma_medium", ("small", "medium")))
    settings = {"metadata_source": str(meta_dir), "audio_source": str(audio_dir),
                "cache_dir": str(tmp_path / "c"), "short_s": 1.5, "base_urls": []}
    index = prepare_dataset({"name": "fma_medium", **settings}, tmp_path / "out", progress=False)  # registry
    pd.testing.assert_frame_equal(read_index(tmp_path / "out"), index, check_dtype=False)
    assert index["track_id"].tolist() == ["2", "3", "5", "10", "140", "666", "1000"]
    assert index.set_index("track_id").loc["3", "official_split"] == "valid"
    # small is inside medium: the medium audio folder serves the small subset too
    small = prepare_fma(settings, tmp_path / "out_small", subset="small", progress=False)
    assert small["track_id"].tolist() == SMALL_USABLE


def test_invalid_inputs(tmp_path):
    with pytest.raises(ConfigError, match="small, medium"):
        prepare_fma({}, tmp_path / "o", subset="large")
    with pytest.raises(ConfigError, match="short_s"):
        prepare_fma({"short_s": -1}, tmp_path / "o", subset="small")
    with pytest.raises(ConfigError, match="unknown key"):
        prepare_fma({"audio_sourse": "x"}, tmp_path / "o", subset="small")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        prepare_fma({"metadata_source": str(tmp_path / "nope"), "audio_source": str(tmp_path)}, tmp_path / "o",
                    subset="small", progress=False)


def test_real_fma_mp3(tmp_path, shared_dir):
    mp3 = shared_dir / "audio" / "fma" / "000002.mp3"
    if not mp3.is_file():
        pytest.skip(f"{mp3} is absent")
    write_tree(tmp_path / "meta", {"fma_metadata/tracks.csv": tracks_csv_text({2: FIXTURE_TRACKS[2]}).encode()})
    (tmp_path / "audio" / "fma_small" / "000").mkdir(parents=True)
    (tmp_path / "audio" / "fma_small" / "000" / "000002.mp3").symlink_to(mp3)
    index = prepare_fma({"metadata_source": str(tmp_path / "meta"), "audio_source": str(tmp_path / "audio"),
                         "cache_dir": str(tmp_path / "c")}, tmp_path / "out", subset="small", progress=False)
    row = index.iloc[0]
    assert (row["track_id"], row["genre"], row["sample_rate"]) == ("2", "Hip-Hop", 44100)
    assert 29.5 < row["duration_s"] < 30.5  # the real clip decodes to ~29.98 s: not short
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["n_short"] == 0
