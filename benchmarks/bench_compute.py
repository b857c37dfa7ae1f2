"""Per-track features through the compute engine: 1 worker (this process) vs the default.

For ``--n-clips`` GTZAN-length clips (30 s at 22,050 Hz, decoded from the 10 GTZAN excerpts
in ``/work/shared/audio/gtzan_au`` cycled, or from synthetic WAV files where those are absent)
it runs the features stage's per-track work (decode, 3 s slices, extractor) through
:func:`genrelab.compute.map_tracks` twice: with ``compute.workers=1`` (in this process) and
with the default settings (``workers=0``: a local Dask cluster sized to the machine, or this
process where that is faster). It prints each wall and CPU time (this process only: workers'
CPU is not counted), the ratio, what the default decided, and whether the two runs gave
bit-identical arrays. On a shared machine the load swings between runs: ``--repeats N``
interleaves the two settings N times and keeps the best of each.

Usage::

    python benchmarks/bench_compute.py                        # 1000 clips, mfcc
    python benchmarks/bench_compute.py --n-clips 100 --features mfcc,mel
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genrelab import cluster
from genrelab.compute import ComputeSettings, map_tracks
from genrelab.features import SliceSettings, make_extractor, track_features
from genrelab.io import load_audio, write_audio

SR = 22050
GTZAN = Path("/work/shared/audio/gtzan_au")


@dataclass(frozen=True)
class TrackWork:
    """The features stage's work on one track (variant ``normal``): decode, slice, extract."""

    extractor: object
    slicing: SliceSettings
    sr: int = SR

    def __call__(self, path: str) -> tuple[np.ndarray, np.ndarray | None]:
        y, _ = load_audio(path, sr=self.sr)
        feats = track_features(y[None], self.sr, extractor=self.extractor, slicing=self.slicing)
        return feats.vector, feats.frames


def clip_files(folder: Path, seconds: float) -> list[Path]:
    files = sorted(GTZAN.glob("*.au"))
    if files:
        return files
    rng = np.random.default_rng(0)
    out = []
    for k in range(10):
        t = np.arange(int(seconds * SR)) / SR
        y = 0.2 * np.sin(2 * np.pi * (110 + 40 * k) * t) + 0.05 * rng.standard_normal(t.size)
        out.append(folder / f"clip{k}.wav")
        write_audio(out[-1], y.astype(np.float32), SR, subtype="PCM_16")
    return out


def run(work: TrackWork, paths: list[str], settings: ComputeSettings, desc: str) -> tuple[float, float, dict]:
    c0, t0 = time.process_time(), time.perf_counter()
    results = dict(map_tracks(work, paths, settings=settings, desc=desc, progress=False))
    return time.perf_counter() - t0, time.process_time() - c0, results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-clips", type=int, default=1000)
    parser.add_argument("--features", default="mfcc", help="comma-separated feature sets (mfcc, mel, classic)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of synthetic clips (no GTZAN files)")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved runs of each setting; best kept")
    args = parser.parse_args(argv)
    import distributed  # noqa: F401  (configures its loggers on import; quiet them after)

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] in ("distributed", "tornado"):
            logging.getLogger(name).setLevel(logging.ERROR)

    with tempfile.TemporaryDirectory() as tmp:
        files = clip_files(Path(tmp), args.seconds)
        paths = [str(files[k % len(files)]) for k in range(args.n_clips)]
        print(f"{args.n_clips} clips ({len(files)} distinct files from {files[0].parent}), "
              f"{cluster.local_cpus()} cores; default = ComputeSettings() (auto)")
        print(f"{'features':<9} {'1 worker wall/CPU':>20} {'default wall/CPU':>20} {'ratio':>7}  identical")
        for name in args.features.split(","):
            work = TrackWork(make_extractor({"name": name}), SliceSettings(length_s=3.0))
            best: dict[str, tuple[float, float, dict]] = {}
            for _ in range(max(1, args.repeats)):
                for key, settings in (("one", ComputeSettings(workers=1)), ("auto", ComputeSettings())):
                    result = run(work, paths, settings, f"{name} ({'1 worker' if key == 'one' else 'default'})")
                    cluster.close_clients()  # every default run pays the cluster start
                    if key not in best or result[0] < best[key][0]:
                        best[key] = result
            (one_s, one_cpu, one), (auto_s, auto_cpu, auto) = best["one"], best["auto"]
            same = one.keys() == auto.keys() and all(
                not isinstance(one[i], Exception) and one[i][0].tobytes() == auto[i][0].tobytes()
                and (one[i][1] is None or one[i][1].tobytes() == auto[i][1].tobytes()) for i in one)
            print(f"{name:<9} {one_s:9.1f} s / {one_cpu:6.1f} s {auto_s:9.1f} s / {auto_cpu:6.1f} s "
                  f"{one_s / auto_s:6.2f}x  {same}", flush=True)


if __name__ == "__main__":
    main()
