"""The per-track store: keys, atomic writes, corruption, a full disk, and the stages over it."""
from __future__ import annotations

import errno
import json
import multiprocessing
import os
import time

import numpy as np
import pandas as pd
import pytest

from genrelab.config import ConfigError
from genrelab.features import (
    FeatureWriter,
    MelFeatures,
    MFCCFeatures,
    SliceSettings,
    extract_dataset,
    features_job,
)
from genrelab.io import write_audio
from genrelab.separation import separate_dataset, stems_job
from genrelab.store import (
    Store,
    StoreFullError,
    key_settings,
    open_store,
    store_command,
    store_dir,
    store_key,
)
from genrelab.variants import VariantSettings

SR = 8000


pytestmark = pytest.mark.usefixtures("in_process_compute")  # the tests count calls and raise interrupts
KEY = "ab" + "0" * 62


def _write_npy(value):
    def write(folder):
        np.save(folder / "x.npy", np.asarray(value, dtype=np.float32))
    return write


# ------------------------------------------------------------------------------------ keys
def test_key_leaves_out_settings_that_do_not_change_the_result():
    base = {"kernel_size": 31, "margin": 1.0}
    same = key_settings({**base, "device": "cuda", "batch_size": 8, "progress": True, "workers": 4})
    assert same == base
    k = store_key("hpss", 1, {"audio": "a" * 64, "settings": same})
    assert k == store_key("hpss", 1, {"settings": key_settings(base), "audio": "a" * 64})  # order-free
    assert k != store_key("hpss", 1, {"audio": "a" * 64, "settings": {**base, "margin": 2.0}})
    assert k != store_key("hpss", 2, {"audio": "a" * 64, "settings": same})
    assert k != store_key("mel", 1, {"audio": "a" * 64, "settings": same})
    assert len(k) == 64 and int(k, 16) >= 0
    with pytest.raises(ValueError, match="transform name"):
        store_key("Bad Name", 1, {})


@pytest.fixture
def tracks(tmp_path):
    rows = []
    for i in range(4):
        t = np.arange(int(2.0 * SR)) / SR
        y = 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t)
        write_audio(tmp_path / "ds" / f"t{i}.wav", y, SR)
        rows.append({"track_id": f"t{i}", "genre": "ab"[i % 2], "artist": f"a{i}", "path": f"t{i}.wav",
                     "duration_s": 2.0, "sample_rate": SR, "official_split": ""})
    return tmp_path, pd.DataFrame(rows)


def _extract(tmp_path, index, extractor, *, variant=None, out="feat", **kw):
    variant = variant or VariantSettings()
    return extract_dataset(index, extractor=extractor, variant=variant, slicing=SliceSettings(length_s=1.0),
                           sample_rate=SR, dataset_dir=tmp_path / "ds", out_dir=tmp_path / out,
                           store=Store(tmp_path / "store"), progress=False, **kw)


def test_version_bump_invalidates_only_its_transform(tracks, monkeypatch):
    tmp_path, index = tracks
    mfcc, mel = MFCCFeatures(n_mfcc=8, n_mels=32, n_fft=512), MelFeatures(n_mels=16, n_fft=512)
    hpss = VariantSettings(name="hpss_percussive", separator="hpss", channels=(("percussive",),))
    sep = {"hpss": {"kernel_size": 17, "n_fft": 512, "hop_length": 128}}
    assert _extract(tmp_path, index, mfcc)["computed"] == 4
    assert _extract(tmp_path, index, mel)["computed"] == 4
    assert _extract(tmp_path, index, mfcc, variant=hpss, separation=sep)["computed"] == 4
    store = Store(tmp_path / "store")
    assert {t: n for t, n in ((t, sum(1 for _ in store.entries(t))) for t in store.transforms())} == \
        {"hpss": 4, "mfcc": 8, "mel": 4}
    monkeypatch.setattr(MFCCFeatures, "VERSION", MFCCFeatures.VERSION + 1)
    assert _extract(tmp_path, index, mfcc)["computed"] == 4  # mfcc recomputed
    assert _extract(tmp_path, index, mel)["reused"] == 4  # mel untouched
    job = stems_job("hpss", sep["hpss"], store=store, sample_rate=SR)
    assert all(store.get("hpss", job.key(store.digest(tmp_path / "ds" / f"t{i}.wav"))) for i in range(4))
    # the features stage separated what it needed through the separate stage's own function
    _, summary = separate_dataset(index, separator="hpss", settings=sep["hpss"], dataset_dir=tmp_path / "ds",
                                  store=store, sample_rate=SR, progress=False)
    assert (summary["computed"], summary["reused"]) == (0, 4)


def test_features_output_does_not_depend_on_the_stores_warmth(tracks):
    """A run that reuses every track writes the same files as the run that computed them (else DVC
    would see a changed output and re-run train and evaluate for nothing)."""
    tmp_path, index = tracks
    mfcc = MFCCFeatures(n_mfcc=8, n_mels=32, n_fft=512)
    assert _extract(tmp_path, index, mfcc, out="cold")["computed"] == 4
    assert _extract(tmp_path, index, mfcc, out="warm")["reused"] == 4
    for name in sorted(p.name for p in (tmp_path / "cold").iterdir()):
        assert (tmp_path / "cold" / name).read_bytes() == (tmp_path / "warm" / name).read_bytes(), name


def test_features_key_covers_the_variant_and_not_the_device(tracks):
    tmp_path, index = tracks
    store = Store(tmp_path / "store")
    common = dict(slicing=SliceSettings(1.0), sample_rate=SR, dataset_dir=tmp_path / "ds", store=store)
    perc = VariantSettings(name="p", separator="hpss", channels=(("percussive",),))
    harm = VariantSettings(name="h", separator="hpss", channels=(("harmonic",),))
    a = features_job(MFCCFeatures(), variant=perc, separation={"hpss": {"device": "cpu"}}, **common)
    b = features_job(MFCCFeatures(), variant=perc, separation={"hpss": {"device": "auto"}}, **common)
    c = features_job(MFCCFeatures(), variant=harm, separation={"hpss": {"device": "cpu"}}, **common)
    d = features_job(MFCCFeatures(), variant=perc, separation={"hpss": {"kernel_size": 17}}, **common)
    assert a.settings_key == b.settings_key and a.stems.key("0" * 64) == b.stems.key("0" * 64)
    assert a.settings_key != c.settings_key
    assert a.stems.key("0" * 64) != d.stems.key("0" * 64)


def test_interrupted_features_stage_recomputes_only_unfinished_tracks(tracks):
    tmp_path, index = tracks

    class Interrupting(MFCCFeatures):
        calls = 0

        def extract(self, analysis):  # the features stage's per-slice call (one shared STFT)
            type(self).calls += 1
            if type(self).calls == 3:
                raise KeyboardInterrupt
            return super().extract(analysis)

    extractor = Interrupting(n_mfcc=8, n_mels=32, n_fft=512)
    with pytest.raises(KeyboardInterrupt):
        _extract(tmp_path, index, extractor)
    assert not (tmp_path / "feat").exists()
    summary = _extract(tmp_path, index, extractor)
    assert (summary["reused"], summary["computed"]) == (2, 2)


# ---------------------------------------------------------------------------- writing safely
def _put_many(root, keys, barrier):
    store = Store(root)
    barrier.wait()
    for k in keys:
        entry = store.put("race", k, _write_npy(np.arange(100_000) + int(k, 16)))
        assert entry.path.name == k


def test_two_processes_writing_the_same_keys(tmp_path):
    keys = [f"{i:064x}" for i in range(1, 31)]
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_put_many, args=(tmp_path / "store", keys, barrier)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    store = Store(tmp_path / "store")
    assert [k for _, k, _ in store.entries("race")] == keys
    assert store.verify() == []
    assert not list(store._temporaries())
    entry = store.get("race", keys[4])
    np.testing.assert_array_equal(np.load(entry.file("x.npy")), np.arange(100_000) + 5)


@pytest.mark.parametrize("damage", ["truncate", "flip", "no_meta", "bad_meta"])
def test_corrupt_entry_is_logged_removed_and_recomputed(tmp_path, caplog, damage):
    store = Store(tmp_path / "store")
    entry = store.put("mel", KEY, _write_npy(np.ones(1000)))
    f = entry.file("x.npy")
    if damage == "truncate":
        f.write_bytes(f.read_bytes()[:-10])
    elif damage == "flip":
        data = bytearray(f.read_bytes())
        data[-1] ^= 0xFF
        f.write_bytes(bytes(data))
    elif damage == "no_meta":
        (entry.path / "meta.json").unlink()
    else:
        (entry.path / "meta.json").write_text("{not json")
    assert store.verify() == [("mel", KEY, store.verify()[0][2])]
    with caplog.at_level("WARNING"):
        assert store.get("mel", KEY) is None
    assert KEY in caplog.text and "corrupt" in caplog.text
    assert not entry.path.exists()
    again = store.put("mel", KEY, _write_npy(np.ones(1000)))
    assert store.get("mel", KEY) is not None and np.load(again.file("x.npy")).sum() == 1000


def test_corrupt_features_entry_is_recomputed_by_the_stage(tracks):
    tmp_path, index = tracks
    extractor = MFCCFeatures(n_mfcc=8, n_mels=32, n_fft=512)
    _extract(tmp_path, index, extractor)
    before = np.load(tmp_path / "feat" / "X.npy")
    store = Store(tmp_path / "store")
    _, _, folder = next(store.entries("mfcc"))
    (folder / "vector.npy").write_bytes(b"\x93NUMPY garbage")
    summary = _extract(tmp_path, index, extractor)
    assert (summary["computed"], summary["reused"]) == (1, 3)
    np.testing.assert_array_equal(np.load(tmp_path / "feat" / "X.npy"), before)


def test_unwritable_location_fails_at_start_naming_the_parameter(tmp_path, monkeypatch):
    monkeypatch.delenv("GENRELAB_STORE", raising=False)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match=r"store\.dir: cannot write to .*a_file/store"):
        open_store({"dir": str(blocker / "store")})
    monkeypatch.setenv("GENRELAB_STORE", str(blocker / "env_store"))
    with pytest.raises(ConfigError, match=r"store\.dir: .*from GENRELAB_STORE"):
        open_store({"dir": str(tmp_path / "fine")})
    with pytest.raises(ConfigError, match=r"store: unknown key"):
        open_store({"path": "x"})


def test_location_from_params_environment_and_home(tmp_path, monkeypatch):
    monkeypatch.delenv("GENRELAB_STORE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert store_dir(None) == (tmp_path / "home/.cache/genrelab/store", "store.dir")
    assert store_dir({"dir": str(tmp_path / "p")})[0] == tmp_path / "p"
    monkeypatch.setenv("GENRELAB_STORE", str(tmp_path / "e"))
    assert store_dir({"dir": str(tmp_path / "p")}) == (tmp_path / "e", "GENRELAB_STORE")
    assert open_store(None).root == tmp_path / "e"


def test_full_disk_leaves_nothing_half_written(tmp_path):
    store = Store(tmp_path / "store")

    def write(folder):
        (folder / "x.npy").write_bytes(b"half of it")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(StoreFullError, match="store.dir: no space left"):
        store.put("mel", KEY, write)
    assert list(store.entries()) == [] and list(store._temporaries()) == []
    assert not store.path("mel", KEY).exists()


def test_full_disk_stops_the_features_stage_cleanly(tracks, monkeypatch):
    tmp_path, index = tracks
    calls = {"n": 0}
    real = np.save

    def save(path, arr, *a, **kw):
        calls["n"] += 1
        if calls["n"] > 4:  # the second track hits a full disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, arr, *a, **kw)

    monkeypatch.setattr(np, "save", save)
    with pytest.raises(StoreFullError):
        _extract(tmp_path, index, MFCCFeatures(n_mfcc=8, n_mels=32, n_fft=512))
    store = Store(tmp_path / "store")
    assert store.verify() == [] and len(list(store.entries())) == 1 and not list(store._temporaries())
    assert not (tmp_path / "feat").exists()


# --------------------------------------------------------------------------- digests, upkeep
def test_audio_digest_is_cached_by_path_size_and_mtime(tmp_path, monkeypatch):
    import genrelab.store as store_module

    f = tmp_path / "a.wav"
    f.write_bytes(b"RIFF" + bytes(1000))
    first = Store(tmp_path / "store").digest(f)
    calls = []
    real = store_module._sha256_file
    monkeypatch.setattr(store_module, "_sha256_file", lambda p: calls.append(p) or real(p))
    assert Store(tmp_path / "store").digest(f) == first and calls == []  # a new process: read from the cache
    f.write_bytes(b"RIFF" + bytes(999) + b"x")
    assert Store(tmp_path / "store").digest(f) != first and len(calls) == 1


def test_store_command_info_verify_rm(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GENRELAB_STORE", str(tmp_path / "store"))
    store = Store(tmp_path / "store")
    keys = [f"{i:064x}" for i in range(1, 4)]
    for k in keys:
        store.put("mel", k, _write_npy(np.zeros(10)))
    store.put("hpss", KEY, _write_npy(np.zeros(10)))
    assert store_command(["info"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "store") in out and "mel" in out and "4 entries" in out
    (store.path("mel", keys[0]) / "x.npy").write_bytes(b"broken")
    assert store_command(["verify"]) == 1
    assert keys[0] in capsys.readouterr().out
    assert store_command(["verify", "--remove"]) == 0
    assert len(list(store.entries())) == 3
    old = time.time() - 40 * 86400
    os.utime(store.path("mel", keys[1]) / "meta.json", (old, old))
    assert store_command(["rm", "--unused-days", "30"]) == 0
    assert "removed 1 entries" in capsys.readouterr().out
    assert [k for _, k, _ in store.entries()] == [KEY, keys[2]]
    assert store_command(["rm", "--transform", "hpss"]) == 0
    assert [k for _, k, _ in store.entries()] == [keys[2]]
    assert store_command(["rm", "--all"]) == 0
    assert list(store.entries()) == []
    capsys.readouterr()
    assert store_command(["--dir", str(tmp_path / "other"), "info"]) == 0
    assert "does not exist yet" in capsys.readouterr().out


def test_reading_an_entry_records_its_last_use(tmp_path):
    store = Store(tmp_path / "store")
    entry = store.put("mel", KEY, _write_npy(np.zeros(3)))
    old = time.time() - 10 * 86400
    os.utime(entry.path / "meta.json", (old, old))
    assert store.get("mel", KEY) is not None
    assert (entry.path / "meta.json").stat().st_mtime > old + 86400
    assert json.loads((entry.path / "meta.json").read_text())["key"] == KEY


# --------------------------------------------------------------------- memory-flat writing
def test_feature_writer_fills_preallocated_files_track_by_track(tmp_path):
    rng = np.random.default_rng(0)
    parts = [(rng.standard_normal((n, 5)), rng.standard_normal((n, 3, 4))) for n in (2, 3, 1)]
    w = FeatureWriter(tmp_path, 6, 5, (3, 4))
    # preallocated at the final size before any row is written
    assert (tmp_path / "S.npy").stat().st_size >= 6 * 12 * 4
    assert np.load(tmp_path / "X.npy", mmap_mode="r").shape == (6, 5)
    for k, (v, f) in enumerate(parts):
        w.append(f"t{k}", "g", 0, v, f, np.arange(len(v)) * 1.5)
    with pytest.raises(ValueError, match="overflow"):
        w.append("t9", "g", 0, parts[0][0], parts[0][1], np.zeros(2))
    w.close(info={"labels": ["g"]}, skipped=[])
    np.testing.assert_array_equal(np.load(tmp_path / "X.npy"), np.concatenate([v for v, _ in parts]).astype(np.float32))
    np.testing.assert_array_equal(np.load(tmp_path / "S.npy"), np.concatenate([f for _, f in parts]).astype(np.float32))
    meta = pd.read_csv(tmp_path / "meta.csv")
    assert list(meta.track_id) == ["t0", "t0", "t1", "t1", "t1", "t2"] and list(meta.slice_idx) == [0, 1, 0, 1, 2, 0]


def test_features_stage_memory_does_not_grow_with_the_number_of_tracks(tmp_path):
    """Peak Python-tracked memory of assembling 8 vs 32 tracks (store already filled)."""
    import tracemalloc

    rows = []
    for i in range(32):
        t = np.arange(int(8.0 * SR)) / SR
        write_audio(tmp_path / "ds" / f"t{i}.wav", 0.3 * np.sin(2 * np.pi * (100 + 37 * i) * t), SR)
        rows.append({"track_id": f"t{i}", "genre": "ab"[i % 2], "path": f"t{i}.wav", "duration_s": 8.0})
    index = pd.DataFrame(rows)
    mel = MelFeatures(n_mels=128, n_fft=256, hop_length=32)
    _extract(tmp_path, index, mel)  # fill the store: what follows measures the set's assembly
    peaks = {}
    for n in (8, 32):
        tracemalloc.start()
        _extract(tmp_path, index.iloc[:n], mel, out=f"feat{n}")
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    s_bytes = {n: (tmp_path / f"feat{n}" / "S.npy").stat().st_size for n in peaks}
    assert s_bytes[32] > 3.5 * s_bytes[8] > 0  # the output grows 4x ...
    assert peaks[32] < peaks[8] + 0.25 * s_bytes[32], (peaks, s_bytes)  # ... memory does not follow
