"""Demucs loading/separation with a tiny locally saved model, missing weights, resumable runs over the store."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from genrelab.io import write_audio
from genrelab.separation import (
    SEPARATORS,
    DemucsLoadError,
    DemucsSeparator,
    HPSSSeparator,
    MissingWeightsError,
    make_separator,
    required_weight_files,
    separate_tracks,
    stems_job,
)
from genrelab.separation.demucs import save_tiny_demucs
from genrelab.store import Store

SR = 22050
TINY_SIG = "0123abcd"

needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device (torch.cuda.is_available() is False)"
)


pytestmark = pytest.mark.usefixtures("in_process_compute")  # the tests count calls and raise interrupts


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory) -> Path:
    # A tiny random HTDemucs saved with demucs' own serialisation (+ bag file tinybag.yaml).
    folder = tmp_path_factory.mktemp("demucs_repo")
    save_tiny_demucs(folder, signature=TINY_SIG, bag="tinybag", segment=1.0)
    return folder


@pytest.fixture(scope="module")
def tiny_separator(tiny_repo) -> DemucsSeparator:
    return DemucsSeparator(TINY_SIG, repo=tiny_repo, device="cpu", progress=False)


def clip(seconds: float, *, seed: int = 0, channels: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (int(seconds * SR),) if channels is None else (channels, int(seconds * SR))
    return (0.1 * rng.standard_normal(shape)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Loading and separating
# ---------------------------------------------------------------------------------------------


def test_demucs_import_does_not_need_torchaudio(tiny_separator):
    assert "torchaudio" not in sys.modules


def test_tiny_model_separates_mono_and_stereo(tiny_repo, tiny_separator):
    files = list(tiny_repo.glob(f"{TINY_SIG}-*.th"))
    assert len(files) == 1  # saved with its checksum in the name, as demucs does
    sep = tiny_separator
    assert sep.stems == ("drums", "bass", "vocals", "other")
    assert sep.samplerate == 44100 and sep.audio_channels == 2
    y = clip(0.9)
    out = sep.separate(y, SR)
    assert list(out) == list(sep.stems)
    for stem in sep.stems:
        assert out[stem].shape == y.shape and out[stem].dtype == np.float32
        assert np.all(np.isfinite(out[stem]))
    stereo = clip(0.5, seed=1, channels=2)
    out2 = sep.separate(stereo, 44100)
    assert all(v.shape == stereo.shape for v in out2.values())
    # Deterministic with shifts=0; a batch gives the per-clip results, in order.
    batch = sep.separate_batch([y, stereo], SR)
    np.testing.assert_allclose(batch[0]["bass"], out["bass"], atol=1e-5)
    assert batch[1]["bass"].shape == stereo.shape


def test_bag_file_and_registry_load_the_same_model(tiny_repo, tiny_separator):
    sep = make_separator("demucs", model="tinybag", repo=tiny_repo, device="cpu", progress=False)
    assert isinstance(SEPARATORS["demucs"](TINY_SIG, repo=tiny_repo, device="cpu", progress=False), DemucsSeparator)
    y = clip(0.5, seed=3)
    a = sep.separate(y, SR)
    b = tiny_separator.separate(y, SR)
    np.testing.assert_allclose(a["vocals"], b["vocals"], atol=1e-5)


def test_corrupt_weights_are_rejected(tiny_repo, tmp_path):
    src = next(tiny_repo.glob(f"{TINY_SIG}-*.th"))
    dst = tmp_path / src.name
    data = bytearray(src.read_bytes())
    data[-10] ^= 0xFF
    dst.write_bytes(bytes(data))
    with pytest.raises(DemucsLoadError, match="checksum"):
        DemucsSeparator(TINY_SIG, repo=tmp_path, device="cpu")


def test_missing_weights_name_file_url_and_folder(tmp_path, monkeypatch):
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    with pytest.raises(MissingWeightsError) as info:
        DemucsSeparator("htdemucs", device="cpu")
    msg = str(info.value)
    assert "955717e8-8726e21a.th" in msg
    assert "https://dl.fbaipublicfiles.com/demucs/hybrid_transformer/955717e8-8726e21a.th" in msg
    assert str(hub / "checkpoints") in msg
    assert info.value.files[0].path == hub / "checkpoints" / "955717e8-8726e21a.th"
    # With a local folder the message points there.
    local = tmp_path / "weights"
    local.mkdir()
    with pytest.raises(MissingWeightsError, match=str(local)):
        DemucsSeparator("htdemucs", repo=local, device="cpu")
    files = required_weight_files("htdemucs_ft", repo=local)
    assert len(files) == 4 and not any(f.exists for f in files)


def test_invalid_settings_and_input(tiny_repo, tiny_separator):
    with pytest.raises(ValueError, match="valid names: .*htdemucs"):
        DemucsSeparator("no_such_model", repo=tiny_repo, device="cpu")
    with pytest.raises(ValueError, match="not a folder"):
        DemucsSeparator(TINY_SIG, repo=tiny_repo / "nope", device="cpu")
    with pytest.raises(ValueError, match="shifts"):
        DemucsSeparator(TINY_SIG, repo=tiny_repo, shifts=-1)
    with pytest.raises(ValueError, match="segment"):
        DemucsSeparator(TINY_SIG, repo=tiny_repo, segment=3.0, device="cpu")
    with pytest.raises(ValueError, match="shape"):
        tiny_separator.separate(np.zeros((3, 1000), np.float32), SR)
    with pytest.raises(ValueError, match="empty"):
        tiny_separator.separate(np.zeros(0, np.float32), SR)
    with pytest.raises(ValueError, match="NaN"):
        tiny_separator.separate(np.full(1000, np.nan, np.float32), SR)
    with pytest.raises(ValueError, match="sr"):
        tiny_separator.separate(clip(0.1), 0)


@pytest.mark.gpu
@needs_cuda
def test_tiny_model_on_cuda(tiny_repo, tiny_separator):
    sep = DemucsSeparator(TINY_SIG, repo=tiny_repo, device="cuda", progress=False, precision="fp32")
    y = clip(1.0, seed=4)
    out = sep.separate(y, SR)
    ref = tiny_separator.separate(y, SR)
    for stem in sep.stems:
        np.testing.assert_allclose(out[stem], ref[stem], atol=1e-3)


# ---------------------------------------------------------------------------------------------
# Resumable runs over tracks
# ---------------------------------------------------------------------------------------------


class CountingSeparator:
    """Fake separator: stems are fixed gains of the input; can fail or interrupt on call k."""

    stems = ("drums", "bass", "vocals", "other")

    def __init__(self, *, interrupt_on: int | None = None, fail_on: set[int] | None = None, gain: float = 0.25):
        self.calls = 0
        self.interrupt_on = interrupt_on
        self.fail_on = fail_on or set()
        self.gain = gain

    def __repr__(self) -> str:
        return f"CountingSeparator(gain={self.gain})"

    def separate(self, y, sr):
        self.calls += 1
        if self.calls == self.interrupt_on:
            raise KeyboardInterrupt  # the process dies here
        if self.calls in self.fail_on:
            raise RuntimeError("model exploded")
        return {s: self.gain * y for s in self.stems}


@pytest.fixture
def tracks(tmp_path) -> list[tuple[str, Path]]:
    out = []
    for i in range(5):
        path = tmp_path / "audio" / f"t{i}.wav"
        write_audio(path, clip(0.2, seed=i), SR)
        out.append((f"t{i}", path))
    return out


def _status(table: pd.DataFrame) -> pd.Series:
    return table.groupby("track_id", sort=False)["status"].first()


def test_resume_after_interruption(tracks, tmp_path):
    store = Store(tmp_path / "store")
    k = 2
    first = CountingSeparator(interrupt_on=k + 1)
    with pytest.raises(KeyboardInterrupt):
        separate_tracks(tracks, first, store=store, sr=SR, progress=False)
    assert first.calls == k + 1
    assert len(list(store.entries())) == k  # the finished tracks, nothing of the interrupted one
    assert not list(store._temporaries())

    second = CountingSeparator()
    table = separate_tracks(tracks, second, store=store, sr=SR, progress=False)
    assert second.calls == len(tracks) - k  # the first k are not recomputed
    assert list(table.columns) == ["track_id", "stem", "path", "status", "reason", "key"]
    status = _status(table)
    assert list(status[[t for t, _ in tracks[:k]]]) == ["reused"] * k
    assert list(status[[t for t, _ in tracks[k:]]]) == ["computed"] * (len(tracks) - k)
    assert len(table) == 4 * len(tracks)
    assert all(Path(p).is_file() for p in table.path)

    third = CountingSeparator()
    table = separate_tracks(tracks, third, store=store, sr=SR, progress=False)
    assert third.calls == 0 and set(table["status"]) == {"reused"}


def test_same_audio_under_another_name_is_separated_once(tracks, tmp_path):
    import shutil

    copy = tmp_path / "elsewhere" / "copy.wav"
    copy.parent.mkdir()
    shutil.copy(tracks[0][1], copy)
    sep = CountingSeparator()
    table = separate_tracks([tracks[0], ("other_id", copy)], sep, store=Store(tmp_path / "store"), sr=SR,
                            progress=False)
    assert sep.calls == 1 and list(_status(table)) == ["computed", "reused"]


def test_corrupt_stem_is_recomputed(tracks, tmp_path):
    store = Store(tmp_path / "store")
    table = separate_tracks(tracks[:2], CountingSeparator(), store=store, sr=SR, progress=False)
    # t1's drums were truncated on disk (simulated)
    drums = Path(table[(table.track_id == "t1") & (table.stem == "drums")].path.iloc[0])
    drums.write_bytes(drums.read_bytes()[:100])
    sep = CountingSeparator()
    table = separate_tracks(tracks[:2], sep, store=store, sr=SR, progress=False)
    assert sep.calls == 1
    row = table[(table.track_id == "t1") & (table.stem == "drums")].iloc[0]
    assert row.status == "computed"
    import soundfile as sf

    y, sr = sf.read(row.path)
    assert sr == SR and y.shape == (int(0.2 * SR),)


def test_failures_are_recorded_and_retried(tracks, tmp_path):
    store = Store(tmp_path / "store")
    sep = CountingSeparator(fail_on={2})
    table = separate_tracks(tracks, sep, store=store, sr=SR, progress=False, stems=("drums", "bass"))
    failed = table[table.status == "failed"]
    assert set(failed.track_id) == {"t1"} and len(failed) == 2
    assert "RuntimeError: model exploded" in failed.reason.iloc[0]
    assert (failed.path == "").all()
    ok = table[table.status == "computed"]
    assert {Path(p).name for p in ok.path} == {"drums.flac", "bass.flac"}  # only the requested stems
    again = CountingSeparator()
    table = separate_tracks(tracks, again, store=store, sr=SR, progress=False, stems=("drums", "bass"))
    assert again.calls == 1
    assert table.set_index(["track_id", "stem"]).loc[("t1", "bass"), "status"] == "computed"


def test_changed_settings_recompute_and_device_does_not(tracks, tmp_path):
    store = Store(tmp_path / "store")
    separate_tracks(tracks[:2], CountingSeparator(gain=0.25), store=store, sr=SR, progress=False)
    sep = CountingSeparator(gain=0.5)
    separate_tracks(tracks[:2], sep, store=store, sr=SR, progress=False)
    assert sep.calls == 2
    sep = CountingSeparator(gain=0.5)
    separate_tracks(tracks[:2], sep, store=store, sr=SR, progress=False)
    assert sep.calls == 0
    cpu = stems_job("hpss", {"kernel_size": 31, "device": "cpu"}, store=store, sample_rate=SR)
    auto = stems_job("hpss", {"kernel_size": 31, "device": "auto"}, store=store, sample_rate=SR)
    other = stems_job("hpss", {"kernel_size": 17, "device": "cpu"}, store=store, sample_rate=SR)
    assert cpu.key("0" * 64) == auto.key("0" * 64) != other.key("0" * 64)


def test_undecodable_track_fails_alone(tracks, tmp_path):
    bad = tmp_path / "audio" / "bad.wav"
    bad.write_bytes(b"not audio")
    table = separate_tracks([*tracks[:1], ("bad", bad)], CountingSeparator(), store=Store(tmp_path / "store"), sr=SR,
                            progress=False)
    status = _status(table)
    assert status["t0"] == "computed" and status["bad"] == "failed"
    assert table[table.track_id == "bad"].reason.str.startswith("decode").all()


def test_batched_separator_falls_back_to_single_tracks(tracks, tmp_path):
    from genrelab.io import load_audio

    poison, _ = load_audio(tracks[3][1], sr=SR)

    class Batched(CountingSeparator):
        batch_size = 2

        def __init__(self):
            super().__init__()
            self.batches = 0

        def separate(self, y, sr):
            if np.array_equal(y, poison):
                raise RuntimeError("bad track")
            return super().separate(y, sr)

        def separate_batch(self, ys, sr):
            self.batches += 1
            return [self.separate(y, sr) for y in ys]

    sep = Batched()
    table = separate_tracks(tracks, sep, store=Store(tmp_path / "store"), sr=SR, progress=False)
    status = _status(table)
    assert list(status[status == "failed"].index) == ["t3"]
    assert sep.batches == 2  # (t0, t1) and (t2, t3) batched; t2 retried alone; t4 alone


def test_separate_tracks_rejects_bad_arguments(tracks, tmp_path):
    sep = CountingSeparator()
    store = Store(tmp_path / "store")
    with pytest.raises(ValueError, match="duplicate"):
        separate_tracks([tracks[0], tracks[0]], sep, store=store, sr=SR)
    with pytest.raises(ValueError, match="choose among"):
        separate_tracks(tracks, sep, store=store, sr=SR, stems=("guitar",))
    with pytest.raises(ValueError, match="sr"):
        separate_tracks(tracks, sep, store=store, sr=0)
    with pytest.raises(ValueError, match="not a separator"):
        separate_tracks(tracks, object(), store=store, sr=SR)
    with pytest.raises(ValueError, match="unknown separator"):
        stems_job("spleeter", {}, store=store, sample_rate=SR)


def test_real_separators_through_separate_tracks(tracks, tmp_path, tiny_separator, tiny_repo):
    store = Store(tmp_path / "store")
    table = separate_tracks(tracks[:2], tiny_separator, store=store, sr=SR, progress=False)
    assert (table.status == "computed").all() and len(table) == 8
    table = separate_tracks(tracks[:2], HPSSSeparator(), store=store, sr=SR, progress=False)
    assert set(table.stem) == {"harmonic", "percussive"}
    assert all(Path(p).is_file() for p in table.path)
    assert isinstance(table, pd.DataFrame)
    # from the registry: the key holds the weights' content, not their folder or the device
    job = stems_job("demucs", {"model": "tinybag", "repo": str(tiny_repo), "device": "cpu", "progress": False},
                    store=store, sample_rate=SR)
    table = separate_tracks(tracks[:2], job, store=store, sr=SR, progress=False)
    assert (table.status == "computed").all()
    import shutil

    moved = tmp_path / "moved_repo"
    shutil.copytree(tiny_repo, moved)
    job2 = stems_job("demucs", {"model": "tinybag", "repo": str(moved), "device": "cpu", "batch_size": 2},
                     store=store, sample_rate=SR, load=False)
    table = separate_tracks(tracks[:2], job2, store=store, sr=SR, progress=False)
    assert (table.status == "reused").all()


def test_failed_download_is_a_missing_weights_error(tmp_path, monkeypatch):
    def offline(url, dst, hash_prefix=None, progress=True):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(MissingWeightsError, match="network is unreachable") as info:
        DemucsSeparator("htdemucs", repo=tmp_path, download=True, device="cpu")
    assert "955717e8-8726e21a.th" in str(info.value)


class Streaming(CountingSeparator):
    """Fake GPU separator with ``separate_stream`` (decoding through ``load``, as Demucs does)."""

    batch_size = 2

    def __init__(self):
        super().__init__()
        self.streams = []

    def separate_batch(self, ys, sr):
        raise AssertionError("a GPU job streams its clips")

    def separate_stream(self, items, load, sr):
        items = list(items)
        self.streams.append(len(items))
        for k, item in enumerate(items):
            try:
                yield k, self.separate(load(item), sr)
            except Exception as exc:  # noqa: BLE001 - the item's error is its result
                yield k, exc


def test_gpu_job_streams_its_clips_and_keeps_track_order(tracks, tmp_path):
    import dataclasses

    from genrelab.separation.dataset import object_job

    store = Store(tmp_path / "store")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    separate_tracks(tracks[:1], Streaming(), store=store, sr=SR, progress=False)  # t0 already stored
    sep = Streaming()
    job = dataclasses.replace(object_job(sep, store=store, sr=SR, stems=None), gpu=True)
    table = separate_tracks([*tracks[:3], ("bad", bad), *tracks[3:]], job, store=store, sr=SR, progress=False)
    status = _status(table)
    assert list(status.index) == ["t0", "t1", "t2", "bad", "t3", "t4"]
    assert list(status) == ["reused", "computed", "computed", "failed", "computed", "computed"]
    assert table[table.track_id == "bad"].reason.str.startswith("decode").all()
    assert sep.streams == [5]  # one task of 4 batches of 2 tracks: all but the stored t0 in one stream
    assert all(Path(p).is_file() for p in table[table.status != "failed"].path)


def test_store_key_holds_the_resolved_precision(tiny_repo, tmp_path):
    store = Store(tmp_path / "store")
    common = {"model": "tinybag", "repo": str(tiny_repo), "device": "cpu"}
    key = {p: stems_job("demucs", {**common, "precision": p}, store=store, sample_rate=SR, load=False).key("0" * 64)
           for p in ("auto", "fp32", "fp16")}
    assert key["auto"] == key["fp32"] != key["fp16"]  # 'auto' on the CPU runs fp32
    job = stems_job("demucs", {**common, "batch_size": 4}, store=store, sample_rate=SR, load=False)
    assert job.batch_size == 4 and not job.gpu
