"""The Dask engine of compute.map_tracks: same results as in-process, worker deaths, bad items, cancel;
the features stage on a local cluster."""
from __future__ import annotations

import _thread
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from genrelab import cluster
from genrelab.compute import ComputeSettings, map_tracks
from genrelab.config import ConfigError, from_mapping
from genrelab.features import MelFeatures, MFCCFeatures, SliceSettings, extract_dataset
from genrelab.store import Store

IN_PROCESS = ComputeSettings(workers=1)


# -- task functions (module level: the workers import this module to unpickle them) ------------


def spectrum(seed: int) -> np.ndarray:
    """Deterministic float work through BLAS and FFT."""
    x = np.random.default_rng(seed).standard_normal((64, 256))
    return np.abs(np.fft.rfft(x @ x.T, axis=1)).astype(np.float32)


def counted(item: tuple[int, str]) -> int:
    """Record each call in a file; item 3 is a bad file."""
    i, folder = item
    with open(Path(folder) / f"calls-{i}.txt", "a") as fh:
        fh.write("x")
    if i == 3:
        raise ValueError(f"track {i}: not audio")
    return i * i


def dies_once(item: tuple[int, str]) -> np.ndarray:
    """Kill the worker running item 2 the first time it is tried (a marker file remembers)."""
    i, folder = item
    marker = Path(folder) / "killed"
    if i == 2 and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return spectrum(i)


def always_dies(item: tuple[int, str]) -> int:
    i, folder = item
    if i == 1:
        with open(Path(folder) / "attempts.txt", "a") as fh:
            fh.write("x")
        os.kill(os.getpid(), signal.SIGKILL)
    return i


def slow(i: int) -> int:
    time.sleep(0.4)
    return i


def batch_square(items: list[int]) -> list[int]:
    if 7 in items:
        raise ValueError("7 is a bad file")
    return [i * i for i in items]


def pid(_: int) -> int:
    return os.getpid()


def slow_pid(_: int) -> int:
    time.sleep(0.05)
    return os.getpid()


def visible_gpus(_: int) -> str:
    return os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")


def blas_threads(_: int) -> int:
    from threadpoolctl import threadpool_info

    return max(i["num_threads"] for i in threadpool_info())


def page_faults(_: int) -> int:
    """Minor page faults while making three 8 MB arrays (each page once if nothing is reused)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    arrays = [np.ones(2**21, np.float32) for _ in range(3)]
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    del arrays
    return faults


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_workers():
    """One local cluster of 2 single-threaded workers for the whole module."""
    lc = cluster.start_local_cluster(2, dashboard=False, preload=[__name__, "genrelab.datasets.gtzan"])
    try:
        yield ComputeSettings(address=lc.scheduler_address)
    finally:
        cluster.close_clients()
        lc.close()


def collect(gen) -> dict[int, object]:
    out: dict[int, object] = {}
    for index, result in gen:
        assert index not in out, f"index {index} yielded twice"
        out[index] = result
    return out


# -- tests ----------------------------------------------------------------------------------------


def test_cluster_results_identical_to_in_process(two_workers):
    items = list(range(12))
    here = collect(map_tracks(spectrum, items, settings=IN_PROCESS, progress=False))
    there = collect(map_tracks(spectrum, items, settings=two_workers, progress=False))
    assert sorted(there) == items
    for i in items:
        assert there[i].tobytes() == here[i].tobytes()


def test_workers_are_single_threaded(two_workers):
    assert set(collect(map_tracks(blas_threads, range(4), settings=two_workers, progress=False)).values()) == {1}
    assert set(collect(map_tracks(blas_threads, range(2), settings=IN_PROCESS, progress=False)).values()) == {1}


def test_items_reuse_freed_memory_instead_of_faulting_it_in_again(two_workers):
    import platform
    import subprocess
    import sys

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("the C library is not glibc: its allocator is left as it is")
    # a plain loop in a fresh interpreter: glibc hands the arrays back and faults them in again
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import test_cluster as t\n"
            "print(sorted(t.page_faults(i) for i in range(10))[5])")
    plain = int(subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent)], capture_output=True,
                               text=True, check=True).stdout)
    pages = 3 * 2**21 * 4 // os.sysconf("SC_PAGE_SIZE")
    assert plain > pages // 10, f"the plain loop faulted {plain} pages per item: the check cannot tell"
    for settings in (IN_PROCESS, two_workers):
        faults = sorted(collect(map_tracks(page_faults, range(10), settings=settings, progress=False)).values())
        assert faults[5] < pages // 100, f"{settings}: {faults} page faults per item (plain loop: {plain})"


def test_bad_item_reported_once_and_not_retried(two_workers, tmp_path):
    items = [(i, str(tmp_path)) for i in range(6)]
    out = collect(map_tracks(counted, items, settings=two_workers, progress=False))
    assert isinstance(out[3], ValueError) and "not audio" in str(out[3])
    assert {i: r for i, r in out.items() if i != 3} == {i: i * i for i in range(6) if i != 3}
    assert (tmp_path / "calls-3.txt").read_text() == "x"  # called once: never retried


def test_killed_worker_loses_only_its_task(two_workers, tmp_path):
    items = [(i, str(tmp_path)) for i in range(8)]
    out = collect(map_tracks(dies_once, items, settings=two_workers, progress=False))
    assert (tmp_path / "killed").exists()  # the worker did die
    assert sorted(out) == list(range(8))
    for i in range(8):
        assert out[i].tobytes() == spectrum(i).tobytes()


def test_task_that_always_kills_its_worker_is_given_up(two_workers, tmp_path):
    from distributed import KilledWorker

    items = [(i, str(tmp_path)) for i in range(4)]
    out = collect(map_tracks(always_dies, items, settings=two_workers, progress=False))
    attempts = len((tmp_path / "attempts.txt").read_text())
    assert isinstance(out[1], KilledWorker), (out, attempts)
    assert {i: out[i] for i in (0, 2, 3)} == {0: 0, 2: 2, 3: 3}, out
    assert attempts == cluster.ALLOWED_FAILURES + 1, out


def _scheduler_tasks(dask_scheduler) -> int:
    return len(dask_scheduler.tasks)


def _wait_no_tasks(settings: ComputeSettings, timeout: float = 10.0) -> int:
    client = cluster.get_client(address=settings.address)
    deadline = time.monotonic() + timeout
    while (n := client.run_on_scheduler(_scheduler_tasks)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return n


def test_closing_the_map_cancels_unfinished_tasks(two_workers):
    gen = map_tracks(slow, range(20), settings=two_workers, progress=False)
    next(gen)
    gen.close()
    assert _wait_no_tasks(two_workers) == 0


def test_keyboard_interrupt_cancels(two_workers):
    # Python's own SIGINT handler, whatever an earlier test left: interrupt_main does nothing
    # where SIGINT is ignored. 40 items of 0.4 s on 2 workers take 8 s; the interrupt comes at 0.6 s.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    fired: list[float] = []
    t0 = time.monotonic()
    timer = threading.Timer(0.6, lambda: (fired.append(time.monotonic() - t0), _thread.interrupt_main()))
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            collect(map_tracks(slow, range(40), settings=two_workers, progress=False))
            raise AssertionError(f"the map ended after {time.monotonic() - t0:.1f} s without the interrupt "
                                 f"(timer fired at {fired or 'never'})")
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert _wait_no_tasks(two_workers) == 0


@pytest.mark.parametrize("where", ["in_process", "cluster"])
def test_batched_map_isolates_the_bad_item(two_workers, where):
    settings = IN_PROCESS if where == "in_process" else two_workers
    out = collect(map_tracks(batch_square, range(10), settings=settings, progress=False, batch_size=4))
    assert isinstance(out[7], ValueError)
    assert {i: r for i, r in out.items() if i != 7} == {i: i * i for i in range(10) if i != 7}


def test_missing_gpu_worker_fails_at_once(two_workers):
    with pytest.raises(ConfigError, match="GPU=1"):
        collect(map_tracks(pid, range(3), settings=two_workers, progress=False, resources={"GPU": 1}))


def test_gpu_workers_get_gpu_tasks():
    lc = cluster.start_local_cluster(1, gpus=1, dashboard=False)
    try:
        settings = ComputeSettings(address=lc.scheduler_address)
        gpu = collect(map_tracks(visible_gpus, range(4), settings=settings, progress=False, resources={"GPU": 1}))
        assert set(gpu.values()) == {"0"}  # only the GPU worker, which sees only its GPU
        client = cluster.get_client(address=lc.scheduler_address)
        assert cluster.worker_resources(client) == {"GPU": 1}
        cpu_worker = [w for w, info in client.scheduler_info()["workers"].items() if not info.get("resources")]
        assert client.submit(visible_gpus, 0, workers=cpu_worker).result() == ""  # CPU workers see none
    finally:
        cluster.close_clients(("address", lc.scheduler_address))
        lc.close()


def test_auto_runs_small_cheap_maps_in_process():
    out = collect(map_tracks(pid, range(5), settings=ComputeSettings(), progress=False))
    assert set(out.values()) == {os.getpid()}
    assert not cluster.has_client(n_workers=cluster.local_cpus())


def test_auto_keeps_working_here_while_the_cluster_starts(monkeypatch):
    if cluster.local_cpus() < 2:
        pytest.skip("auto mode never starts a cluster on one core")
    monkeypatch.setattr(cluster, "CLUSTER_START_S", 0.0)  # any saving is worth a cluster
    cluster.close_clients()
    try:
        out = collect(map_tracks(slow_pid, range(200), settings=ComputeSettings(), progress=False))
        assert cluster.has_client(n_workers=cluster.local_cpus())
    finally:
        cluster.close_clients()
    assert sorted(out) == list(range(200))
    here = [i for i, p in out.items() if p == os.getpid()]
    # the two timed items, then more while the cluster started; the rest on the workers
    assert here[:3] == [0, 1, 2] and here == list(range(len(here))) and len(here) < 200, here
    assert set(out.values()) - {os.getpid()}, "no item ran on the cluster's workers"


def test_auto_chunk_size():
    assert cluster.auto_chunk_size(1000, 0.01, 2) == 25      # 0.25 s tasks
    assert cluster.auto_chunk_size(1000, 1.0, 2) == 1        # expensive items go one by one
    assert cluster.auto_chunk_size(40, 0.001, 2) == 5        # still 4 tasks per thread
    assert cluster.auto_chunk_size(10, 0.0, 2) == 1


def test_unreachable_address_names_the_setting():
    with pytest.raises(ConfigError, match="compute.address"):
        cluster.get_client(address="tcp://127.0.0.1:9", timeout=1)


@pytest.mark.parametrize("mapping, match", [({"workers": -1}, "workers"), ({"address": "localhost"}, "tcp://"),
                                            ({"threads": 2}, "unknown key")])
def test_compute_settings_are_validated(mapping, match):
    with pytest.raises(ConfigError, match=match):
        from_mapping(ComputeSettings, mapping, section="compute")


def test_progress_logs_lines_off_a_terminal(caplog):
    with caplog.at_level(logging.INFO, logger="genrelab.progress"):   # the project's one progress helper
        bar = cluster.Progress(4, "features", log_every_s=0.0)
        for k in range(4):
            bar.update(1, failed=int(k == 2))
        bar.close()
    assert "features: 4/4 tracks (100%), 1 failed" in caplog.text
    assert "1 failed" in bar.line()


def test_dataset_probing_on_the_cluster_matches_in_process(two_workers, tmp_path):
    from genrelab import compute
    from genrelab.datasets.gtzan import write_index
    from genrelab.io import write_audio

    candidates = []
    for k in range(6):
        path = tmp_path / "audio" / f"t{k}.wav"
        if k == 4:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")  # quarantined at once (undecodable bytes cost seconds of audioread probing)
        else:
            write_audio(path, np.sin(np.arange(2000 + 100 * k) / 7.0).astype(np.float32) * 0.1, 8000)
        candidates.append({"track_id": f"t{k}", "genre": "g", "artist": "", "path": str(path), "official_split": ""})
    here = write_index(candidates, tmp_path / "here", progress=False)
    compute.configure(two_workers)  # what run_stage does with the stage's `compute` section
    try:
        there = write_index(candidates, tmp_path / "there", progress=False)
    finally:
        compute.configure(ComputeSettings())
    assert there.equals(here) and "t4" not in set(there["track_id"])
    assert (tmp_path / "there" / "quarantine.csv").read_text() == (tmp_path / "here" / "quarantine.csv").read_text()


def nested(n: int) -> list[int]:
    return sorted(r for _, r in map_tracks(spectrum_sum, range(n), settings=ComputeSettings(), progress=False))


def spectrum_sum(i: int) -> int:
    return int(spectrum(i).sum() > 0) + i


def test_a_map_inside_a_task_runs_in_that_task(two_workers):
    out = collect(map_tracks(nested, [3, 4], settings=two_workers, progress=False))
    assert out == {0: [1, 2, 3], 1: [1, 2, 3, 4]}


# -- the features stage on the cluster (issue 17: same bytes as in-process; a dead worker loses nothing) --

SR = 8000


@dataclass(frozen=True)
class KillsItsWorkerOnce(MFCCFeatures):
    """MFCC whose first call on a Dask worker kills that worker (a marker file in ``folder`` remembers)."""

    folder: str = ""

    def extract(self, analysis):
        folder = Path(self.folder)
        with open(folder / "calls.txt", "a") as fh:
            fh.write("x")
        if not (folder / "killed").exists() and cluster_worker():
            (folder / "killed").touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return super().extract(analysis)


def cluster_worker() -> bool:
    from distributed import get_worker

    try:
        get_worker()
    except ValueError:
        return False
    return True


def tiny_dataset(root: Path, n: int = 6):
    import pandas as pd

    from genrelab.io import write_audio

    rows = []
    rng = np.random.default_rng(0)
    for i in range(n):
        t = np.arange(int(2.0 * SR)) / SR
        y = 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t) + 0.01 * rng.standard_normal(len(t))
        write_audio(root / "ds" / f"t{i}.wav", y, SR)
        rows.append({"track_id": f"t{i}", "genre": "ab"[i % 2], "artist": f"a{i}", "path": f"t{i}.wav",
                     "duration_s": 2.0, "sample_rate": SR, "official_split": ""})
    return pd.DataFrame(rows)


def features_stage(root: Path, index, extractor, settings: ComputeSettings, name: str) -> dict:
    return extract_dataset(index, extractor=extractor, variant=_normal(), slicing=SliceSettings(length_s=1.0),
                           sample_rate=SR, dataset_dir=root / "ds", out_dir=root / name,
                           store=Store(root / f"store-{name}"), compute=settings, progress=False)


def _normal():
    from genrelab.variants import VariantSettings

    return VariantSettings()


def same_set(a: Path, b: Path) -> None:
    for name in ("X.npy", "S.npy", "meta.csv", "skipped.csv"):
        assert (a / name).is_file() == (b / name).is_file(), name
        if (a / name).is_file():
            assert (a / name).read_bytes() == (b / name).read_bytes(), f"{name} differs"


def test_features_stage_on_two_workers_is_bit_identical(two_workers, tmp_path):
    index = tiny_dataset(tmp_path)
    mel = MelFeatures(n_mels=16, n_fft=512, hop_length=256)
    here = features_stage(tmp_path, index, mel, IN_PROCESS, "here")
    there = features_stage(tmp_path, index, mel, two_workers, "there")
    assert here == there == {"n_tracks": 6, "n_slices": 12, "n_skipped": 0, "computed": 6, "reused": 0}
    same_set(tmp_path / "here", tmp_path / "there")
    assert (tmp_path / "here" / "info.json").read_text() == (tmp_path / "there" / "info.json").read_text()


def test_features_stage_survives_a_killed_worker(two_workers, tmp_path):
    index = tiny_dataset(tmp_path)
    (tmp_path / "in_process").mkdir()
    (tmp_path / "in_process" / "killed").touch()  # never kill this process
    (tmp_path / "cluster").mkdir()
    common = {"n_mfcc": 8, "n_mels": 32, "n_fft": 512}
    features_stage(tmp_path, index, KillsItsWorkerOnce(**common, folder=str(tmp_path / "in_process")), IN_PROCESS,
                   "here")
    killer = KillsItsWorkerOnce(**common, folder=str(tmp_path / "cluster"))
    summary = features_stage(tmp_path, index, killer, two_workers, "there")
    assert (tmp_path / "cluster" / "killed").exists()  # a worker did die mid-map
    assert summary["computed"] == 6 and summary["n_skipped"] == 0
    # only the killed task ran again: every finished track was computed once (one call per track)
    assert len((tmp_path / "cluster" / "calls.txt").read_text()) == 6 + 1
    same_set(tmp_path / "here", tmp_path / "there")
    # the stage run again takes every track from the store
    again = features_stage(tmp_path, index, killer, IN_PROCESS, "there")
    assert (again["computed"], again["reused"]) == (0, 6)
    same_set(tmp_path / "here", tmp_path / "there")


_FIRST_TRACK = """
import importlib, json, sys
import numpy as np
from genrelab.features import SliceSettings, make_extractor, track_feature_sets
preload, settings = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for module in preload:
    importlib.import_module(module)
before = set(sys.modules)
y = np.random.default_rng(0).standard_normal((1, 3 * 22050)).astype('float32')
track_feature_sets(y, 22050, extractors=[make_extractor(settings)], slicing=SliceSettings())
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def _first_track_imports(preload: list[str], settings: dict) -> set[str]:
    """Modules a fresh process imports during its first track, after importing ``preload``."""
    out = subprocess.run([sys.executable, "-c", _FIRST_TRACK, json.dumps(preload), json.dumps(settings)],
                         check=True, capture_output=True, text=True).stdout
    return set(json.loads(out.splitlines()[-1]))


@pytest.mark.parametrize("settings", [{"name": "mfcc"}, {"name": "mfcc", "deltas": True}, {"name": "mel"},
                                      {"name": "classic"}], ids=["mfcc", "mfcc-deltas", "mel", "classic"])
def test_the_features_stages_workers_start_warm_and_preload_no_more(settings):
    """Local workers import what the features stage's map function and its extractor load lazily,
    and nothing their first track does not import: each module delays the workers' start."""
    import functools

    from genrelab.features import SliceSettings, make_extractor
    from genrelab.features.extract import FeaturesJob, features_track

    job = FeaturesJob(store=None, extractor=make_extractor(settings), variant=None, slicing=SliceSettings(),
                      sr=22050, dataset_dir="")
    preload = cluster.preload_modules(functools.partial(features_track, job=job))
    heavy = {"scipy.signal", "scipy.stats", "librosa.filters", "librosa.feature", "librosa.core.pitch", "numba"}
    assert not heavy & _first_track_imports(preload, settings)  # what the first track needs is preloaded
    cold = _first_track_imports([], settings)
    decoding = {"genrelab.features.extract", "genrelab.io"}  # the map function's own module, and decoding
    assert set(preload) - decoding <= cold  # nothing else the first track does not import
    assert ("librosa.filters" in preload) == (settings["name"] == "classic")


def test_a_local_cluster_adds_our_lines_to_an_info_log_not_dasks():
    """A stage logs at INFO: starting and closing a cluster gives our own lines, not Dask's ~25."""
    code = ("import logging, math\n"
            "logging.basicConfig(level=logging.INFO, format='%(name)s %(levelname)s %(message)s')\n"
            "from genrelab.compute import ComputeSettings, map_tracks\n"
            "if __name__ == '__main__':\n"
            "    two = ComputeSettings(workers=2)\n"
            "    out = dict(map_tracks(math.sqrt, [1.0, 4.0, 9.0], settings=two, progress=False))\n"
            "    assert sorted(out.values()) == [1.0, 2.0, 3.0], out\n"
            "    from genrelab import cluster\n"
            "    cluster.close_clients()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    assert any(line.startswith("genrelab.cluster INFO started a local Dask cluster") for line in lines), lines
    assert not [line for line in lines if line.startswith("distributed")], lines


def test_the_forkserver_starts_after_this_process_imported_its_preload(tmp_path, monkeypatch):
    """Two processes compiling one numba gufunc at once can corrupt its cache (numba#10128): the
    forkserver imports its preload only after this process has (and written the caches)."""
    from multiprocessing import forkserver

    (tmp_path / "genrelab_preload_probe.py").write_text("import time\ntime.sleep(0.3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen: list[bool] = []
    started = threading.Event()

    def ensure_running() -> None:  # instead of starting a server: what had this process imported?
        seen.append("genrelab_preload_probe" in sys.modules)
        started.set()

    monkeypatch.setattr(forkserver, "ensure_running", ensure_running)
    monkeypatch.delitem(sys.modules, "genrelab_preload_probe", raising=False)
    assert cluster.start_forkserver(["genrelab_preload_probe"])
    assert started.wait(30) and seen == [True]
