"""Hostile and broken inputs (issue 14): one test group per numbered finding, on small generated inputs.

1-3 security (bundle trust, working-directory trust, Demucs checksums), 4 bad audio, 5 predict,
6 archives and downloads, 7 prepare's dependency on the source, 8 temporaries, settings and
byte-identical models, 9 the web demo. The last test runs a GTZAN-layout folder mixing good and
broken clips through ``dvc exp run`` (slow).
"""
from __future__ import annotations

import http.client
import io
import json
import os
import pickle
import platform
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml
from test_predict import SR, build_tiny_bundle

from genrelab.synth import SynthSettings, render_track

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


# ------------------------------------------------------------------------------------ inputs
class _Evil:
    """Unpickling it creates ``marker``: proof that code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _music(seconds: float, *, genre: str = "metal", index: int = 3) -> np.ndarray:
    return render_track(genre, seed=1, track_index=index, settings=SynthSettings(duration_s=seconds))["mix"]


def _au_bytes(y: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, sr, format="AU", subtype=subtype)
    return buf.getvalue()


def _patch_au(data: bytes, *, encoding: int | None = None, rate: int | None = None) -> bytes:
    """Corrupt an AU header (big-endian: magic, offset, size, encoding @12, rate @16, channels @20)."""
    b = bytearray(data)
    if encoding is not None:
        b[12:16] = struct.pack(">I", encoding)
    if rate is not None:
        b[16:20] = struct.pack(">I", rate)
    return bytes(b)


def broken_clips(seconds: float = 30.0) -> dict[str, tuple[bytes, str]]:
    """The broken kinds of the sweep, as ``.au`` files: name -> (bytes, regex of the quarantine reason)."""
    y = _music(seconds)
    t = np.arange(int(seconds * SR)) / SR
    return {
        "huge": (_au_bytes((1e30 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), subtype="FLOAT"),
                 "implausible sample peak"),
        "one_hz": (_patch_au(_au_bytes(y), rate=1), r"\b1 Hz"),
        "corrupt_header": (_patch_au(_au_bytes(y), encoding=1, rate=8000), "8000 Hz"),  # 16-bit read as mu-law
        "silence": (_au_bytes(np.zeros_like(y)), "silent"),
        "dc": (_au_bytes(np.full_like(y, 0.5)), "DC offset only"),
        "half_second": (_au_bytes(y[: SR // 2]), "too short: 0.50 s"),
        "eight_frames": (_au_bytes(y[:8]), "too short: 0.00 s"),
        "empty": (b"", "holds no audio"),
        "text": (b"not audio at all\n" * 100, "cannot decode"),
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny trained bundle (pickled logreg) and its features folder."""
    root = tmp_path_factory.mktemp("tiny")
    model, features = build_tiny_bundle(root)
    return model, features


def _malicious_bundle(folder: Path, marker: Path, *, link_seed: bool) -> Path:
    """bundle.json for a logreg bundle whose ``seed_0/model.joblib`` runs code when unpickled."""
    folder.mkdir(parents=True)
    (folder / "bundle.json").write_text(json.dumps({"format": 1, "model": "logreg", "input": "vector",
                                                    "labels": ["a", "b"], "seeds": [0], "params": {}}))
    payload = folder.parent / f"{folder.name}-payload" if link_seed else folder / "seed_0"
    payload.mkdir()
    (payload / "model.joblib").write_bytes(pickle.dumps({"pipeline": _Evil(marker)}))
    if link_seed:
        (folder / "seed_0").symlink_to(payload, target_is_directory=True)
    return folder


# ---------------------------------------------------------------------- 1-2. bundle trust
def test_1_a_linked_seed_folder_does_not_hide_its_pickle(tmp_path):
    from genrelab.models import UntrustedBundleError, load_bundle

    marker = tmp_path / "ran"
    bundle = _malicious_bundle(tmp_path / "bundle", marker, link_seed=True)
    with pytest.raises(UntrustedBundleError, match=r"model\.joblib"):
        load_bundle(bundle)
    assert not marker.exists(), "the linked pickle was unpickled without --trust"


@pytest.fixture
def fake_repo(tmp_path, monkeypatch):
    """Pretend genrelab runs from ``tmp_path/repo`` (a checkout with dvc.yaml and data/)."""
    import genrelab.models.bundle as bundle_module

    root = tmp_path / "repo"
    (root / "data").mkdir(parents=True)
    (root / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.setattr(bundle_module, "repository_root", lambda: root)
    return root


def test_1_only_files_that_resolve_inside_the_bundle_in_data_are_trusted(tiny, fake_repo, tmp_path):
    from genrelab.models import UntrustedBundleError, load_bundle

    model, _ = tiny
    shutil.copytree(model, fake_repo / "data" / "model")
    assert load_bundle(fake_repo / "data" / "model").labels  # the train stage's own output: no --trust

    # a seed folder linked out of the bundle (even to another bundle under data/)
    shutil.copytree(model, fake_repo / "data" / "other")
    linked = fake_repo / "data" / "linked"
    linked.mkdir()
    shutil.copy(model / "bundle.json", linked / "bundle.json")
    (linked / "seed_0").symlink_to(fake_repo / "data" / "other" / "seed_0", target_is_directory=True)
    with pytest.raises(UntrustedBundleError, match="link out of the bundle"):
        load_bundle(linked)
    # a link from outside data/ into the trusted bundle
    (tmp_path / "outside").symlink_to(fake_repo / "data" / "model", target_is_directory=True)
    with pytest.raises(UntrustedBundleError, match="link from outside"):
        load_bundle(tmp_path / "outside")
    assert load_bundle(tmp_path / "outside", trust=True).labels  # explicit --trust


def test_2_a_dvc_yaml_in_the_working_directory_trusts_nothing(tmp_path, monkeypatch, capsys):
    from genrelab.models import UntrustedBundleError, load_bundle
    from genrelab.predict import predict_command

    repo = tmp_path / "someone_elses_repo"
    marker = tmp_path / "ran"
    _malicious_bundle(repo / "data" / "model", marker, link_seed=False)
    (repo / "dvc.yaml").write_text("stages: {}\n")
    sf.write(repo / "song.wav", _music(2.0), SR)
    monkeypatch.chdir(repo)
    with pytest.raises(UntrustedBundleError):
        load_bundle("data/model")
    assert predict_command(["song.wav", "--no-progress"]) == 2
    assert "pickled models" in capsys.readouterr().err
    assert not marker.exists()


# --------------------------------------------------------------------- 3. Demucs checksums
def test_3_a_weight_file_matching_only_the_8_digit_prefix_is_never_fully_unpickled(tmp_path, monkeypatch):
    pytest.importorskip("demucs", reason="needs demucs (pip install --no-deps demucs==4.0.1 openunmix==1.3.0)")
    import hashlib

    import torch

    from genrelab.separation import demucs as dmod

    marker = tmp_path / "ran"
    sig = "deadbeef"
    raw = tmp_path / "raw.th"
    torch.save({"klass": _Evil(marker), "args": [], "kwargs": {}, "state": {}}, raw)
    prefix = hashlib.sha256(raw.read_bytes()).hexdigest()[:8]
    repo = tmp_path / "repo"
    repo.mkdir()
    name = f"{sig}-{prefix}.th"  # its name carries its own sha256 prefix: the 32-bit "verification" passes
    raw.rename(repo / name)
    # ... and demucs' remote list names exactly this file, as a brute-forced collision would
    monkeypatch.setattr(dmod, "_remote_files", lambda dm: {sig: f"https://dl.fbaipublicfiles.com/demucs/x/{name}"})
    with pytest.raises(dmod.DemucsLoadError, match="sha256|unpickle"):
        dmod.load_demucs_model(sig, repo=repo)
    assert not marker.exists(), "a file matching only the 8-digit prefix was fully unpickled"


def test_3_published_full_checksums_agree_with_the_file_names():
    from genrelab.separation.demucs import PUBLISHED_SHA256

    assert "955717e8-8726e21a.th" in PUBLISHED_SHA256  # htdemucs, the default
    for name, digest in PUBLISHED_SHA256.items():
        assert len(digest) == 64 and digest.startswith(name.split("-")[1][:8]), name


# ------------------------------------------------------------------------- 4. bad audio
def _gtzan_folder(root: Path, good: dict[str, np.ndarray], bad: dict[str, bytes]) -> Path:
    """GTZAN's original layout: genres/<genre>/<genre>.000NN.au (bad files get numbers from 50)."""
    for tid, y in good.items():
        genre = tid.split(".")[0]
        (root / "genres" / genre).mkdir(parents=True, exist_ok=True)
        sf.write(root / "genres" / genre / f"{tid}.au", y, SR, format="AU", subtype="PCM_16")
    genres = sorted({t.split(".")[0] for t in good})
    for k, data in enumerate(bad.values()):
        genre = genres[k % len(genres)]
        (root / "genres" / genre / f"{genre}.{50 + k:05d}.au").write_bytes(data)
    return root


def test_4_ingest_quarantines_every_broken_kind_with_its_reason(tmp_path):
    from genrelab.datasets.gtzan import prepare_gtzan

    kinds = broken_clips()
    good = {"blues.00000": _music(30.0, genre="blues"), "metal.00000": _music(30.0, genre="metal")}
    src = _gtzan_folder(tmp_path / "gtzan", good, {k: v[0] for k, v in kinds.items()})
    index = prepare_gtzan({"source": str(src), "split": "stratified", "cache_dir": str(tmp_path / "cache")},
                          tmp_path / "out", progress=False)
    assert sorted(index["track_id"]) == sorted(good)
    q = pd.read_csv(tmp_path / "out" / "quarantine.csv", dtype=str)
    assert len(q) == len(kinds)
    genres = sorted({t.split(".")[0] for t in good})
    for k, (kind, (_, reason)) in enumerate(kinds.items()):
        tid = f"{genres[k % len(genres)]}.{50 + k:05d}"
        row = q[q["track_id"] == tid]
        assert len(row) == 1 and pd.Series(row["reason"]).str.contains(reason).all(), (kind, row.to_dict("records"))
        assert "\n" not in row["reason"].iloc[0]


def test_4_an_implausible_header_is_refused_before_decoding(tmp_path):
    from genrelab.io import AudioDecodeError, load_audio

    (tmp_path / "one_hz.au").write_bytes(_patch_au(_au_bytes(_music(1.0)[:200]), rate=1))  # 200 "seconds"
    with pytest.raises(AudioDecodeError, match="1 Hz"):
        load_audio(tmp_path / "one_hz.au", sr=SR)
    sf.write(tmp_path / "huge.wav", np.full(SR, 1e25, dtype=np.float32), SR, subtype="FLOAT")
    with pytest.raises(AudioDecodeError, match="implausible sample peak"):
        load_audio(tmp_path / "huge.wav", sr=SR)


def test_4_features_that_are_not_finite_skip_the_track(tmp_path):
    from genrelab.features import SliceSettings, make_extractor, track_features

    extractor = make_extractor({"name": "mfcc", "n_mfcc": 13, "n_mels": 64, "n_fft": 1024, "hop_length": 512,
                                "deltas": False, "stats": ["mean", "std"]})
    t = np.arange(2 * SR) / SR
    loud = (1e30 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)[None]  # finite, but its power is not
    with pytest.raises(ValueError, match="not finite"):
        track_features(loud, SR, extractor=extractor, slicing=SliceSettings(1.0))


def test_4_train_refuses_nan_features_naming_the_tracks(tiny, tmp_path):
    from genrelab.config import ConfigError
    from genrelab.models import train_bundle

    _, features = tiny
    broken = tmp_path / "features"
    shutil.copytree(features, broken)
    x_file = next(broken.rglob("X.npy"))
    X = np.load(x_file)
    X[0, 0] = np.nan
    np.save(x_file, X)
    params = json.loads((features.parent / "model" / "bundle.json").read_text())["params"]
    with pytest.raises(ConfigError, match="NaN/inf features"):
        train_bundle({**params, "train": {"seeds": [0]}}, broken, tmp_path / "model",
                     split_table=features.parent / "split.csv", progress=False)


# ---------------------------------------------------------------------------- 5. predict
@pytest.fixture(scope="module")
def odd_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("odd")
    y = _music(2.0)
    sf.write(d / "-song.wav", y, SR)
    sf.write(d / "new\nline.wav", y, SR)
    sf.write(d / "ok.wav", y, SR)
    (d / "song.wav").mkdir()  # a folder named like an audio file
    (d / "broken.wav").symlink_to("nowhere.wav")
    (d / "loop1.wav").symlink_to("loop2.wav")
    (d / "loop2.wav").symlink_to("loop1.wav")
    (d / "one_hz.au").write_bytes(_patch_au(_au_bytes(y[:200]), rate=1))
    return d


def test_5_a_file_name_starting_with_a_dash_is_a_file(tiny, odd_dir, monkeypatch, capsys):
    from genrelab.cli import main
    from genrelab.predict import predict_command

    model, _ = tiny
    monkeypatch.chdir(odd_dir)
    assert predict_command(["-song.wav", "--model", str(model), "--trust", "--no-progress"]) == 0
    assert any(line.startswith("-song.wav ") for line in capsys.readouterr().out.splitlines())
    assert main(["predict", "--model", str(model), "--trust", "--no-progress", "--", "-song.wav"]) == 0


def test_5_every_path_of_a_folder_is_reported_on_one_line(tiny, odd_dir, capsys):
    from genrelab.predict import predict_command

    model, _ = tiny
    code = predict_command([str(odd_dir), "--model", str(model), "--trust", "--no-progress"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith(str(odd_dir))]  # not the card
    by_name = {Path(line.split("  ")[0].strip()).name: line for line in lines}
    assert code == 1 and len(lines) == 8, lines  # 3 good, 5 reported; nothing dropped, nothing split
    assert "broken symbolic link" in by_name["broken.wav"]
    assert "symbolic link loop" in by_name["loop1.wav"] and "symbolic link loop" in by_name["loop2.wav"]
    assert "a folder named like an audio file" in by_name["song.wav"]
    assert "implausible sample rate 1 Hz" in by_name["one_hz.au"]
    assert any(line.startswith(str(odd_dir / "new\\nline.wav")) and "metal" in line for line in lines)


def test_5_one_file_running_out_of_memory_does_not_stop_the_batch(tiny, odd_dir, monkeypatch):
    from genrelab import predict
    from genrelab.models import load_bundle

    model, _ = tiny
    real = predict.predict_file

    def flaky(bundle, path, **kw):
        if Path(path).name == "ok.wav":
            raise MemoryError
        return real(bundle, path, **kw)

    monkeypatch.setattr(predict, "predict_file", flaky)
    preds = predict.predict_paths(load_bundle(model, trust=True), [odd_dir / "ok.wav", odd_dir / "-song.wav"],
                                  progress=False)
    assert [p.ok for p in preds] == [False, True] and "memory" in preds[0].error


def test_5_a_crash_has_its_own_exit_status_and_a_traceback(tiny, odd_dir, monkeypatch, capsys):
    from genrelab import predict

    model, _ = tiny

    def boom(paths):
        raise RuntimeError("a bug")

    monkeypatch.setattr(predict, "collect_audio_files", boom)
    assert predict.predict_command([str(odd_dir / "ok.wav"), "--model", str(model), "--trust", "--no-progress"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: a bug" in err
    with pytest.raises(SystemExit):
        predict.predict_command(["--help"])
    assert "3 genrelab predict crashed" in " ".join(capsys.readouterr().out.split())


# ----------------------------------------------------------------- 6. archives, downloads
def _zeros_zip(path: Path, megabytes: int) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("zeros.bin", "w") as fh:
        block = bytes(1 << 20)
        for _ in range(megabytes):
            fh.write(block)
    return path


def test_6_archive_bombs_are_refused_before_anything_is_written(tmp_path):
    from genrelab.download import ExtractError, extract

    bomb = _zeros_zip(tmp_path / "bomb.zip", 100)  # ~100 KB expanding to 100 MiB
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(ExtractError, match="ratio|bomb"):
        extract(bomb, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))

    tgz = tmp_path / "bomb.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        for k in range(3):
            info = tarfile.TarInfo(f"zeros{k}.bin")
            info.size = 40 << 20
            tf.addfile(info, io.BytesIO(bytes(info.size)))
    with pytest.raises(ExtractError, match="bomb"):
        extract(tgz, tmp_path / "out2", progress=False)


def test_6_entry_count_and_total_size_limits(tmp_path):
    from genrelab.download import ExtractError, ExtractLimits, extract

    z = tmp_path / "many.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for k in range(11):
            zf.writestr(f"f{k}.txt", b"x" * 100)
    with pytest.raises(ExtractError, match="more than 10 entries"):
        extract(z, tmp_path / "a", progress=False, limits=ExtractLimits(max_entries=10))
    with pytest.raises(ExtractError, match="more than 1000 B"):
        extract(z, tmp_path / "b", progress=False, limits=ExtractLimits(max_bytes=1000))
    assert extract(z, tmp_path / "c", progress=False).joinpath("f10.txt").read_bytes() == b"x" * 100


def test_6_download_size_cap(tmp_path):
    from httpserver import FixtureServer

    from genrelab.download import DownloadError, download

    with FixtureServer({"/big.zip": bytes(2_000_000)}) as srv, pytest.raises(DownloadError, match="download limit"):
        download([srv.url("/big.zip")], tmp_path / "big.zip", progress=False, max_bytes=1_000_000)
    assert not (tmp_path / "big.zip").exists() and not (tmp_path / "big.zip.part").exists()


def test_6_the_extraction_marker_is_keyed_on_the_archive_content(tmp_path):
    from genrelab.download import extract

    z = tmp_path / "data.zip"
    for content in (b"AAAA", b"BBBB"):  # same name, same size, same modification time
        with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr(zipfile.ZipInfo("a.txt", date_time=(2020, 1, 1, 0, 0, 0)), content)
        os.utime(z, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
        out = extract(z, tmp_path / "out", progress=False)
        assert (out / "a.txt").read_bytes() == content


def test_6_a_refused_archive_as_dataset_source_is_one_line(tmp_path):
    bad = tmp_path / "gtzan.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../../evil.txt", b"pwned")
    params = tmp_path / "params.yaml"
    from genrelab.config import compose

    params.write_text(yaml.safe_dump(compose(["dataset=gtzan", f"dataset.source={bad}",
                                              f"dataset.cache_dir={tmp_path / 'cache'}"], config_dir=ROOT / "conf")))
    proc = subprocess.run([sys.executable, str(ROOT / "stages" / "prepare.py"), "--params", str(params),
                           "--out", str(tmp_path / "ds"), "--metrics", str(tmp_path / "m.json"),
                           "--details", str(tmp_path / "d.json")],
                          capture_output=True, text=True, env={**os.environ, "GENRELAB_LOG": "ERROR"}, timeout=120,
                          check=False)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert "Traceback" not in proc.stderr and len(errors) == 1 and "refusing entry" in errors[0], proc.stderr


# -------------------------------------------------------------- 7. prepare and the source
def test_7_prepare_depends_on_a_fingerprint_of_the_source_files(tmp_path):
    from genrelab.datasets.source import source_fingerprint

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    probes = {n: s for n, s in stages.items() if s.get("always_changed")}
    probe_outs = {str(o) for s in probes.values() for o in s.get("outs", [])}
    assert probe_outs & set(map(str, stages["prepare"]["deps"])), "prepare has no dependency on the source"

    src = tmp_path / "src"
    (src / "blues").mkdir(parents=True)
    (src / "blues" / "blues.00000.au").write_bytes(b"x" * 10)
    settings = {"name": "gtzan", "source": str(src), "cache_dir": "~/.cache/x"}
    first = source_fingerprint(settings)
    assert source_fingerprint(settings) == first  # nothing changed: prepare does not re-run
    (src / "blues" / "blues.00001.au").write_bytes(b"y")
    second = source_fingerprint(settings)
    assert second != first
    os.utime(src / "blues" / "blues.00000.au", ns=(0, 10**9))
    assert source_fingerprint(settings) != second  # a modification time
    assert source_fingerprint({"name": "synthetic"}) == {"dataset": "synthetic", "sources": {}}


# ----------------------------------------- 8. temporaries, settings, byte-identical models
STAGE_SCRIPT = textwrap.dedent('''
    import threading
    import time
    from genrelab.io import atomic_path
    from genrelab.stage import run_stage

    def configure(p):
        p.add_argument("--out")

    def main(args, params):
        # a second thread, as libraries start them (numpy's BLAS threads, Dask's, tqdm's)
        threading.Thread(target=time.sleep, args=(120,), daemon=True).start()
        with atomic_path(args.out) as tmp:
            tmp.write_text("half-written")
            print("ready", flush=True)
            # work in short steps, as a stage does: the kernel may hand SIGTERM to another thread
            # of the process (numpy's BLAS threads), and CPython then runs the handler when the
            # main thread next runs Python code, which one 60 s sleep would put off for 60 s
            for _ in range(600):
                time.sleep(0.1)

    run_stage(main, "a stage stopped by SIGTERM", configure)
''')


def _block_sigterm() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})


_TGKILL = {"x86_64": 234, "aarch64": 131}.get(platform.machine())
"""Linux's tgkill system call number (a signal to one thread of another process), where known."""


def _sigterm_to_another_thread(pid: int) -> None:
    """SIGTERM to a thread of ``pid`` other than its main one, as the kernel may choose to deliver
    a signal sent to the process."""
    import ctypes

    others = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid)
    assert others, "the test stage starts a second thread; it has none"
    ctypes.CDLL(None, use_errno=True).syscall(_TGKILL, pid, others[0], int(signal.SIGTERM))


@pytest.mark.parametrize("how", ["plain", "sigterm-blocked-by-the-parent", "sigterm-to-another-thread"])
def test_8_a_stage_stopped_by_sigterm_leaves_no_temporary_file(tmp_path, how):
    if how == "sigterm-to-another-thread" and _TGKILL is None:
        pytest.skip(f"Linux's tgkill number is known here for x86_64 and aarch64, not {platform.machine()}")
    (tmp_path / "stage.py").write_text(STAGE_SCRIPT)
    (tmp_path / "params.yaml").write_text("{}\n")
    out = tmp_path / "out" / "stems.flac"
    proc = subprocess.Popen([sys.executable, "stage.py", "--out", str(out)], cwd=tmp_path, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
                            preexec_fn=_block_sigterm if how == "sigterm-blocked-by-the-parent" else None)
    try:  # (a mask survives exec)
        assert proc.stdout.readline().strip() == "ready"
        assert list(out.parent.iterdir())  # the temporary file is there while the stage runs
        if how == "sigterm-to-another-thread":
            _sigterm_to_another_thread(proc.pid)
        else:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # say why: the signal masks of the stage that did not stop
            status = Path(f"/proc/{proc.pid}/status")
            sig = [x for x in status.read_text().splitlines() if x.startswith("Sig")] if status.exists() else []
            raise AssertionError(f"the stage did not stop within 30 s of SIGTERM: {sig}") from None
        assert rc == 128 + signal.SIGTERM
    finally:
        proc.kill()
    assert list(out.parent.iterdir()) == []


def test_8_separation_leaves_nothing_of_a_killed_run_in_the_store(tmp_path):
    from genrelab.separation import HPSSSeparator, separate_tracks
    from genrelab.store import Store

    sf.write(tmp_path / "a.wav", _music(1.0), SR)
    store = Store(tmp_path / "store")
    table = separate_tracks([("a", tmp_path / "a.wav")], HPSSSeparator(device="cpu"), store=store, sr=SR,
                            progress=False)
    entry = Path(table.path.iloc[0]).parent
    leftover = entry.parent / f".{entry.name}.abcd_123.tmp"  # what a killed writer leaves beside the entry
    leftover.mkdir()
    (leftover / "harmonic.flac").write_bytes(b"half")
    again = separate_tracks([("a", tmp_path / "a.wav")], HPSSSeparator(device="cpu"), store=store, sr=SR,
                            progress=False)
    assert (again.status == "reused").all()  # the finished entry is whole; the leftover is no entry
    assert sorted(p.name for p in entry.iterdir() if p.suffix == ".flac") == ["harmonic.flac", "percussive.flac"]
    assert [key for _, key, _ in store.entries(entry.parent.parent.name)] == [entry.name]


def test_8_sample_rate_is_validated_before_any_work(tmp_path):
    from genrelab.config import ConfigError, compose

    with pytest.raises(ConfigError, match="audio.sample_rate"):  # composing conf/ refuses it already
        compose(["variant=hpss_harmonic", "audio.sample_rate=0"], config_dir=ROOT / "conf")
    params = compose(["variant=hpss_harmonic"], config_dir=ROOT / "conf")
    params["audio"]["sample_rate"] = 0  # a hand-edited params.yaml: the stage refuses it before any work
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run([sys.executable, str(ROOT / "stages" / "separate.py"), "--params", "params.yaml",
                           "--dataset", "nowhere", "--out", "sep", "--metrics", "m.json", "--details", "d.json"],
                          cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2 and "audio.sample_rate" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_8_identical_training_runs_give_byte_identical_model_files(tiny, tmp_path):
    from genrelab.models import train_bundle

    model, features = tiny
    params = json.loads((model / "bundle.json").read_text())["params"]
    for k in (1, 2):
        train_bundle({**params, "train": {"seeds": [0]}}, features, tmp_path / f"m{k}",
                     split_table=features.parent / "split.csv", progress=False)
    for name in ("seed_0/model.joblib", "bundle.json"):
        assert (tmp_path / "m1" / name).read_bytes() == (tmp_path / "m2" / name).read_bytes(), name


# --------------------------------------------------------------------------- 9. web demo
@pytest.fixture(scope="module")
def demo_bundle(tiny):
    from genrelab.models import load_bundle

    return load_bundle(tiny[0], trust=True)


class _Serving:
    def __init__(self, bundle, **kw):
        from genrelab.webapp import make_server

        self.server = make_server(bundle, port=0, max_bytes=2_000_000, max_duration_s=20.0, **kw)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self.server

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _request(server, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        conn.putrequest(method, path)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        if body:
            conn.send(body)
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def _wav_bytes(y: np.ndarray, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, SR, format="WAV", subtype=subtype)
    return buf.getvalue()


def test_9_fifty_simultaneous_uploads_are_all_answered(demo_bundle):
    body = _wav_bytes(_music(2.0))
    with _Serving(demo_bundle) as server:
        assert server.request_queue_size >= 128
        hdrs = {"Content-Type": "audio/wav", "Content-Length": str(len(body))}
        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(lambda _: _request(server, "POST", "/api/predict?name=a.wav", body, hdrs)[0],
                                    range(50)))
    assert answers == [200] * 50


def test_9_idle_connections_time_out_and_are_bounded(demo_bundle):
    with _Serving(demo_bundle, socket_timeout_s=0.5, max_connections=3) as server:
        addr = server.server_address[:2]
        idle = [socket.create_connection(addr, timeout=5) for _ in range(3)]
        time.sleep(0.2)
        extra = socket.create_connection(addr, timeout=5)  # a 4th: answered at once, without a thread
        assert extra.recv(200).startswith(b"HTTP/1.1 503")
        t0 = time.monotonic()
        assert idle[0].recv(100) == b""  # the server closed the idle connection
        assert time.monotonic() - t0 < 3
        for s in [*idle, extra]:
            s.close()
        time.sleep(0.2)
        assert server.connections == 0


def test_9_busy_server_answers_503_with_retry_after(demo_bundle):
    body = _wav_bytes(_music(2.0))
    with _Serving(demo_bundle, max_pending=1, socket_timeout_s=5) as server:
        slow = socket.create_connection(server.server_address[:2], timeout=5)
        slow.sendall(b"POST /api/predict?name=a.wav HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:100])  # then stalls
        time.sleep(0.3)
        status, headers, reply = _request(server, "POST", "/api/predict?name=b.wav", body,
                                          {"Content-Type": "audio/wav", "Content-Length": str(len(body))})
        slow.close()
    assert status == 503 and headers.get("Retry-After") and "busy" in json.loads(reply)["error"]


@pytest.mark.parametrize("length", ["\u00b2", "-5", "12abc", "1e3"])
def test_9_a_bad_content_length_is_a_400(demo_bundle, length):
    with _Serving(demo_bundle) as server:
        status, _, reply = _request(server, "POST", "/api/predict?name=a.wav", b"",
                                    {"Content-Type": "audio/wav", "Content-Length": length})
    assert status == 400 and "Content-Length" in json.loads(reply)["error"]


def test_9_a_huge_amplitude_file_is_a_422_with_the_reason(demo_bundle):
    body = _wav_bytes(np.full(2 * SR, 1e30, dtype=np.float32), subtype="FLOAT")
    with _Serving(demo_bundle) as server:
        status, _, reply = _request(server, "POST", "/api/predict?name=loud.wav", body,
                                    {"Content-Type": "audio/wav", "Content-Length": str(len(body))})
    assert status == 422 and "implausible sample peak" in json.loads(reply)["error"]


def test_9_au_uploads_are_transcoded_for_the_player(demo_bundle):
    body = _au_bytes(_music(2.0))
    with _Serving(demo_bundle) as server:
        status, headers, wav = _request(server, "POST", "/api/audio?name=song.au", body,
                                        {"Content-Type": "audio/basic", "Content-Length": str(len(body))})
    assert status == 200 and headers["Content-Type"] == "audio/wav"
    y, sr = sf.read(io.BytesIO(wav))
    assert sr == SR and len(y) == 2 * SR


# ------------------------------------------ the whole pipeline on a mixed GTZAN-layout folder
@pytest.mark.slow
def test_mixed_gtzan_folder_runs_to_metrics_with_every_bad_file_quarantined(tmp_path, monkeypatch):
    """20 good 30 s clips (4 genres) and the broken kinds, through ``dvc exp run``; then the source changes."""
    from conftest import copy_repository
    from conftest import run_in as run

    genres = ["classical", "disco", "metal", "reggae"]
    good = {f"{g}.{i:05d}": _music(30.0, genre=g, index=i) for g in genres for i in range(5)}
    kinds = broken_clips()
    src = _gtzan_folder(tmp_path / "gtzan", good, {k: v[0] for k, v in kinds.items()})
    monkeypatch.setenv("GENRELAB_STORE", str(tmp_path / "store"))  # the per-track store, if any, stays here
    repo = copy_repository(tmp_path / "repo", message="mixed gtzan")
    overrides = ["dataset=gtzan", f"dataset.source={src}", f"dataset.cache_dir={tmp_path / 'cache'}",
                 "split=grouped", "model=logreg"]
    run([str(BIN / "dvc"), "exp", "run", *[a for o in overrides for a in ("-S", o)]], repo)

    metrics = json.loads((repo / "metrics" / "eval.json").read_text())
    assert metrics and "NaN" not in json.dumps(metrics)
    index = pd.read_csv(repo / "data" / "dataset" / "index.csv", dtype=str)
    assert sorted(index["track_id"]) == sorted(good)
    q = pd.read_csv(repo / "data" / "dataset" / "quarantine.csv", dtype=str)
    assert len(q) == len(kinds) and q["reason"].str.len().gt(0).all()
    reasons = " | ".join(q["reason"])
    for kind, (_, pattern) in kinds.items():
        assert pd.Series([reasons]).str.contains(pattern).all(), (kind, reasons)
    features = json.loads((repo / "metrics" / "details" / "features.json").read_text())
    assert features["n_skipped"] == 0, features  # nothing broken got past ingest
    print("quarantine.csv:\n" + q.to_string(index=False))

    # prepare re-runs when the source's files change, and only then
    def ran(out: str) -> set[str]:
        return {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}

    assert "prepare" not in ran(run([str(BIN / "dvc"), "repro"], repo).stdout)
    next(src.rglob("*.00050.au")).unlink()
    assert "prepare" in ran(run([str(BIN / "dvc"), "repro"], repo).stdout)
    assert len(pd.read_csv(repo / "data" / "dataset" / "quarantine.csv")) == len(kinds) - 1
