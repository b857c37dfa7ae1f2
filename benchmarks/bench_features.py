"""Feature extraction: genrelab's per-track engine against a plain librosa loop, on many clips.

For each feature set (``mfcc``, ``mel``, ``classic``) and for the three together, prints the
wall-clock and CPU seconds of

* **genrelab**: :func:`genrelab.compute.map_tracks` over
  :func:`genrelab.features.file_feature_sets` with the default ``compute`` settings (auto: a
  local cluster of one single-threaded worker per core when the job pays for it; one decoding
  and one STFT per slice for every set asked for): the per-track work of the features stage
  (writing the feature files is not included);
* **plain**: the same arrays made the plain way, one 3 s slice at a time with
  :func:`genrelab.features.reference.reference_features` (``librosa.load``, then
  ``librosa.feature.*`` / ``librosa.effects``-style HPSS per slice), in one process with
  librosa's default threads, and under ``multiprocessing.Pool(2)`` with one BLAS thread per
  process;

with the ratios (plain / genrelab: above 1 means genrelab is faster), the peak resident memory
of each (the largest process), and the largest difference between genrelab's outputs and the
plain ones (absolute, and relative to ``max(|plain|, 1e-3)`` per value; ``tempo`` is compared
exactly, as a count of differing slices).

Every run is a fresh Python process, so imports and worker start-up are included. The plain
loops run on the first ``--n-plain`` clips only (the classic one takes about a second per clip);
their times for ``--n-clips`` clips are extrapolated: start-up (interpreter and imports, timed
separately) plus the loop time scaled by ``n_clips / n_plain``, marked ``*``. The clips are the
ten GTZAN excerpts of ``../shared/audio/gtzan_au`` repeated (or ten synthetic 30 s clips when
that folder is absent). On a shared machine wall-clock times move with the other jobs; CPU
seconds are steadier.

Usage::

    .venv/bin/python benchmarks/bench_features.py                       # 1000 clips, plain on 100 (~6 min)
    .venv/bin/python benchmarks/bench_features.py --n-clips 200 --n-plain 20 --sets mfcc classic
    .venv/bin/python benchmarks/bench_features.py --pool-overhead       # in-process vs 2 workers on small jobs
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SHARED_AUDIO = Path(__file__).resolve().parents[2] / "shared" / "audio" / "gtzan_au"
SR = 22050
SETS = ("mfcc", "mel", "classic")


# ------------------------------------------------------------------------------------------
# process accounting (Linux /proc)


def _proc_stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _cpu_of(pid: int, *, children: bool = False) -> float:
    """utime + stime of ``pid`` (and of its reaped children), seconds."""
    f = _proc_stat(pid)
    if f is None:
        return 0.0
    ticks = int(f[11]) + int(f[12]) + ((int(f[13]) + int(f[14])) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def _descendants(root: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            f = _proc_stat(int(entry.name))
            if f is not None:
                kids.setdefault(int(f[1]), []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        for child in kids.get(pid, []):
            out.append(child)
            todo.append(child)
    return out


def _hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Accounting:
    """CPU seconds and peak RSS of this process and every process below it.

    CPU: this process, the children it waited for (``RUSAGE_CHILDREN``), and every process
    still running below it at the end (its own time plus that of the children it reaped, such
    as a forkserver's workers); peak RSS is sampled from ``/proc/*/status`` (VmHWM) every
    0.2 s. Linux only.
    """

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            for pid in _descendants(os.getpid()):
                self.peak_kb = max(self.peak_kb, _hwm_kb(pid))

    def finish(self) -> tuple[float, int]:
        """(CPU seconds since process start, peak RSS in MB) of the whole tree."""
        self._stop.set()
        self._thread.join()
        own = resource.getrusage(resource.RUSAGE_SELF)
        waited = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = own.ru_utime + own.ru_stime + waited.ru_utime + waited.ru_stime
        peak = max(self.peak_kb, own.ru_maxrss, waited.ru_maxrss)
        for pid in _descendants(os.getpid()):
            cpu += _cpu_of(pid, children=True)
            peak = max(peak, _hwm_kb(pid))
        return cpu, peak // 1024


# ------------------------------------------------------------------------------------------
# the runs (each in its own process)


def _extractors(names):
    from genrelab.features import make_extractor

    return [make_extractor({"name": n}) for n in names]


def _keep(out: dict, names, store: dict, i: int) -> None:
    for n in names:
        store[f"{n}/{i}/vector"] = out[n].vector
        if out[n].frames is not None:
            store[f"{n}/{i}/frames"] = out[n].frames


def run_genrelab(files: list[str], names: list[str], n_keep: int, dump: Path) -> dict:
    acc = Accounting()
    from genrelab.compute import ComputeSettings, map_tracks
    from genrelab.features import SliceSettings, file_feature_sets

    t0 = time.perf_counter()
    fn = functools.partial(file_feature_sets, extractors=_extractors(names), slicing=SliceSettings(), sample_rate=SR)
    kept, errors = {}, []
    for i, out in map_tracks(fn, files, settings=ComputeSettings(), progress=False):
        if isinstance(out, Exception):
            errors.append(f"{files[i]}: {out}")
        elif i < n_keep:
            _keep(out, names, kept, i)
    loop = time.perf_counter() - t0
    np.savez(dump, **kept)
    cpu, peak = acc.finish()
    return {"loop_s": loop, "cpu_s": cpu, "peak_mb": peak, "errors": errors}


def _plain_clip(path: str, names: list[str]) -> dict:
    import librosa

    from genrelab.features import SliceSettings, slice_signal
    from genrelab.features.reference import reference_features

    y, _ = librosa.load(path, sr=SR)
    slices, _ = slice_signal(y, SR, SliceSettings())  # the same slices (a short last one padded)
    out = {}
    for n, ex in zip(names, _extractors(names)):
        rows = [reference_features(ex, s, SR) for s in slices]
        out[n] = (np.concatenate([r.vector for r in rows]),
                  None if rows[0].frames is None else np.concatenate([r.frames for r in rows]))
    return out


def _one_thread() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def run_plain(files: list[str], names: list[str], pool: int, dump: Path) -> dict:
    acc = Accounting()
    import importlib

    for module in ("librosa.feature", "librosa.effects", "genrelab.features.reference"):
        importlib.import_module(module)  # imports count as start-up, not loop

    startup_cpu = time.process_time()
    t0 = time.perf_counter()
    if pool > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(pool, initializer=_one_thread) as p:
            results = p.map(functools.partial(_plain_clip, names=names), files, chunksize=1)
            p.close()
            p.join()
    else:
        results = [_plain_clip(f, names) for f in files]
    loop = time.perf_counter() - t0
    kept = {}
    for i, out in enumerate(results):
        for n, (vec, fr) in out.items():
            kept[f"{n}/{i}/vector"] = vec
            if fr is not None:
                kept[f"{n}/{i}/frames"] = fr
    np.savez(dump, **kept)
    cpu, peak = acc.finish()
    return {"loop_s": loop, "cpu_s": cpu, "startup_cpu_s": startup_cpu, "peak_mb": peak}


def _subprocess(kind: str, files: list[str], names: list[str], *, n_keep: int = 0, pool: int = 1,
                tmp: Path) -> dict:
    """Run ``kind`` in a fresh interpreter; its wall time includes start-up and imports."""
    job = tmp / f"{kind}-{'-'.join(names)}-{pool}"
    (job.with_suffix(".json")).write_text(json.dumps({"files": files, "names": names, "n_keep": n_keep,
                                                      "pool": pool}))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--run", kind, str(job)], capture_output=True, text=True,
                          check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    result["dump"] = str(job.with_suffix(".npz"))
    return result


def _child_main(kind: str, job: Path) -> None:
    spec = json.loads(job.with_suffix(".json").read_text())
    dump = job.with_suffix(".npz")
    if kind == "genrelab":
        result = run_genrelab(spec["files"], spec["names"], spec["n_keep"], dump)
    else:
        result = run_plain(spec["files"], spec["names"], spec["pool"], dump)
    print(json.dumps(result))


# ------------------------------------------------------------------------------------------
# comparison and report


def compare(ours: Path, plain: Path, name: str, n: int) -> dict:
    """Largest differences between the two runs' outputs for the first ``n`` clips."""
    from genrelab.features import KAGGLE_COLUMNS

    a, b = np.load(ours), np.load(plain)
    worst = {"abs": 0.0, "rel": 0.0, "frames_abs": 0.0, "tempo_diff": 0, "slices": 0}
    for i in range(n):
        va, vb = a[f"{name}/{i}/vector"].astype(np.float64), b[f"{name}/{i}/vector"].astype(np.float64)
        if va.shape != vb.shape:
            raise SystemExit(f"{name} clip {i}: genrelab gives {va.shape}, plain {vb.shape}")
        if name == "classic":
            t = KAGGLE_COLUMNS.index("tempo")
            worst["tempo_diff"] += int(np.sum(va[:, t] != vb[:, t]))
            va, vb = np.delete(va, t, axis=1), np.delete(vb, t, axis=1)
        worst["slices"] += len(va)
        worst["abs"] = max(worst["abs"], float(np.abs(va - vb).max()))
        worst["rel"] = max(worst["rel"], float((np.abs(va - vb) / np.maximum(np.abs(vb), 1e-3)).max()))
        if f"{name}/{i}/frames" in a.files:
            worst["frames_abs"] = max(worst["frames_abs"], float(np.abs(a[f"{name}/{i}/frames"]
                                                                        - b[f"{name}/{i}/frames"]).max()))
    return worst


def clip_files(tmp: Path) -> tuple[list[str], str]:
    files = sorted(str(p) for p in SHARED_AUDIO.glob("*.au")) if SHARED_AUDIO.is_dir() else []
    if files:
        return files, f"the {len(files)} GTZAN excerpts of {SHARED_AUDIO}"
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(30 * SR) / SR
    for k in range(10):
        f0, bpm = rng.uniform(110, 440), rng.uniform(70, 160)
        y = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.3 * np.exp(-30 * ((t * bpm / 60) % 1.0)) * rng.standard_normal(t.size)
        sf.write(tmp / f"clip{k}.wav", (y + 0.02 * rng.standard_normal(t.size)).astype(np.float32), SR)
        files.append(str(tmp / f"clip{k}.wav"))
    return files, "10 synthetic 30 s clips (../shared is absent)"


def pool_overhead(tmp: Path, files10: list[str]) -> None:
    """Small jobs: in-process (workers=1) against two workers, each in a fresh process."""
    print("\nsmall jobs, mfcc, wall seconds of a fresh process (imports included): workers=1 vs workers=2")
    code = ("import functools,sys,json\nfrom genrelab.compute import ComputeSettings,map_tracks\n"
            "from genrelab.features import SliceSettings,file_feature_sets,make_extractor\n"
            "if __name__=='__main__':\n"
            " files=json.loads(sys.argv[1]); w=int(sys.argv[2])\n"
            " fn=functools.partial(file_feature_sets,extractors=[make_extractor({'name':'mfcc'})],"
            "slicing=SliceSettings(),sample_rate=22050)\n"
            " assert all(not isinstance(r,Exception) for _,r in map_tracks(fn,files,"
            "settings=ComputeSettings(workers=w),progress=False))\n")
    script = tmp / "small_job.py"
    script.write_text(code)
    for n in (4, 16, 64):
        files = (files10 * (n // len(files10) + 1))[:n]
        walls = {}
        for w in (1, 2):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, str(script), json.dumps(files), str(w)], check=True)
            walls[w] = time.perf_counter() - t0
        print(f"  {n:3d} clips: in-process {walls[1]:6.2f} s   2 workers {walls[2]:6.2f} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-clips", type=int, default=1000, help="clips for the genrelab runs")
    p.add_argument("--n-plain", type=int, default=100, help="clips for the plain loops (extrapolated to --n-clips)")
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    p.add_argument("--no-combined", action="store_true", help="skip the all-sets-at-once genrelab run")
    p.add_argument("--pool-overhead", action="store_true", help="only time small jobs in-process vs 2 workers")
    p.add_argument("--run", nargs=2, metavar=("KIND", "JOB"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.run:
        _child_main(args.run[0], Path(args.run[1]))
        return
    with tempfile.TemporaryDirectory(prefix="bench_features_") as tmp_name:
        tmp = Path(tmp_name)
        files10, source = clip_files(tmp)
        if args.pool_overhead:
            pool_overhead(tmp, files10)
            return
        n, m = args.n_clips, min(args.n_plain, args.n_clips)
        files = (files10 * (n // len(files10) + 1))[:n]
        print(f"{platform.node()}: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start; "
              f"{n} clips of {source}, 3 s slices at {SR} Hz; plain loops on {m} clips")
        rows = []
        for name in args.sets:
            ours = _subprocess("genrelab", files, [name], n_keep=m, tmp=tmp)
            plain1 = _subprocess("plain", files[:m], [name], pool=1, tmp=tmp)
            plain2 = _subprocess("plain", files[:m], [name], pool=2, tmp=tmp)
            rows.append((name, ours, plain1, plain2, compare(Path(ours["dump"]), Path(plain1["dump"]), name, m)))
            print(f"  ... {name} done (load {os.getloadavg()[0]:.2f})", flush=True)
        combined = None
        if not args.no_combined and len(args.sets) > 1:
            combined = _subprocess("genrelab", files, list(args.sets), n_keep=0, tmp=tmp)
        report(rows, combined, n, m)
        print(f"load average {os.getloadavg()[0]:.2f} at the end")


def _scaled(run: dict, n: int, m: int) -> tuple[float, float]:
    """Plain wall and CPU for ``n`` clips from a run on ``m``: start-up + loop * n / m."""
    if n == m:
        return run["wall_s"], run["cpu_s"]
    startup_wall = run["wall_s"] - run["loop_s"]
    startup_cpu = run["startup_cpu_s"]
    return startup_wall + run["loop_s"] * n / m, startup_cpu + (run["cpu_s"] - startup_cpu) * n / m


def report(rows, combined, n: int, m: int) -> None:
    star = "*" if n != m else ""
    print(f"\n{'features':<22} {'genrelab wall/CPU s':>20} {'plain 1-proc' + star:>17} {'plain Pool(2)' + star:>17} "
          f"{'x vs 1-proc':>12} {'x vs Pool(2)':>12} {'peak MB ours/plain':>19}  max |diff| (rel)")
    totals = {"ours": [0.0, 0.0], "p1": [0.0, 0.0], "p2": [0.0, 0.0]}
    for name, ours, p1, p2, diff in rows:
        w1, c1 = _scaled(p1, n, m)
        w2, c2 = _scaled(p2, n, m)
        for key, (w, c) in (("ours", (ours["wall_s"], ours["cpu_s"])), ("p1", (w1, c1)), ("p2", (w2, c2))):
            totals[key][0] += w
            totals[key][1] += c
        d = f"{diff['abs']:.2g} ({diff['rel']:.1e})"
        if diff["frames_abs"]:
            d += f"; frames {diff['frames_abs']:.2g}"
        if name == "classic":
            d += f"; tempo differs on {diff['tempo_diff']}/{diff['slices']} slices"
        print(
            f"{name:<22} {ours['wall_s']:8.1f} / {ours['cpu_s']:7.1f}   {w1:7.1f} / {c1:7.1f} {w2:7.1f} / {c2:7.1f} "
            f"{w1 / ours['wall_s']:5.2f}/{c1 / ours['cpu_s']:5.2f} "
            f"{w2 / ours['wall_s']:5.2f}/{c2 / ours['cpu_s']:5.2f} "
            f"{ours['peak_mb']:8d} / {max(p1['peak_mb'], p2['peak_mb']):<8d}  {d}"
        )
        if ours["errors"]:
            print(f"   {len(ours['errors'])} clip(s) failed, e.g. {ours['errors'][0]}")
    if len(rows) > 1:
        (w, c), (w1, c1), (w2, c2) = totals["ours"], totals["p1"], totals["p2"]
        print(f"{'sum of the sets':<22} {w:8.1f} / {c:7.1f}   {w1:7.1f} / {c1:7.1f} {w2:7.1f} / {c2:7.1f} "
              f"{w1 / w:5.2f}/{c1 / c:5.2f} {w2 / w:5.2f}/{c2 / c:5.2f}")
        if combined is not None:
            w, c = combined["wall_s"], combined["cpu_s"]
            print(f"{'all sets, one decode':<22} {w:8.1f} / {c:7.1f}   {w1:7.1f} / {c1:7.1f} {w2:7.1f} / {c2:7.1f} "
                  f"{w1 / w:5.2f}/{c1 / c:5.2f} {w2 / w:5.2f}/{c2 / c:5.2f} {combined['peak_mb']:8d}")
    if star:
        print(f"* plain times for {n} clips extrapolated from {m}: start-up + loop x {n / m:g}")


if __name__ == "__main__":
    main()
