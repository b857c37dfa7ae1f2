"""Peak memory (RSS) of the features stage against the number of tracks.

The features stage writes its arrays track by track into preallocated files, so its peak
memory should not grow with the dataset beyond a small index. This runs the stage's library
function (``extract_dataset``: mel spectrograms of 3 s slices, the serial engine) on 100, 300
and 1000 tracks, each size in a fresh Python process with an empty store of its own, and
prints the peak resident memory of that process and the growth from the smallest size to the
largest (the target is below 1.5x from 100 to 1000 tracks).

The tracks are built once: 20 tracks of the built-in synthetic generator (2 per genre), then
copied with a distinct small gain per copy, so that every track has its own content (the store
would otherwise compute each distinct audio once) while no more than 20 are rendered.

Usage::

    python benchmarks/bench_features_memory.py                   # 100, 300, 1000 tracks of 30 s
    python benchmarks/bench_features_memory.py --sizes 50 200 --seconds 10 --keep /tmp/bench
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

SR = 22050
N_BASE_PER_GENRE = 2


def build_tracks(folder: Path, n: int, seconds: float) -> pd.DataFrame:
    """``n`` distinct tracks (FLAC) made from a few synthetic ones; returns the dataset index."""
    import soundfile as sf

    from genrelab.synth import SynthSettings, generate_dataset

    settings = SynthSettings(n_tracks_per_genre=N_BASE_PER_GENRE, duration_s=seconds, sample_rate=SR,
                             tracks_per_artist=1)
    base_index = generate_dataset(folder / "base", settings, progress=False, write_stems=False)
    base = [(row.genre, sf.read(folder / "base" / row.path, dtype="float32")[0])
            for row in base_index.itertuples(index=False)]
    rows = []
    for i in range(n):
        genre, y = base[i % len(base)]
        copy = i // len(base)
        path = folder / "audio" / f"{genre}.{i:05d}.flac"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, y * (1.0 - 1e-3 * copy), SR, subtype="PCM_16")
        rows.append({"track_id": f"{genre}.{i:05d}", "genre": genre, "artist": f"a{i}",
                     "path": str(path.relative_to(folder)), "duration_s": seconds, "sample_rate": SR,
                     "official_split": ""})
    index = pd.DataFrame(rows)
    index.to_csv(folder / "index.csv", index=False)
    return index


def child(folder: Path, n: int) -> None:
    """Run the features stage's function on the first ``n`` tracks; print a JSON line."""
    from genrelab.datasets import read_index
    from genrelab.features import MelFeatures, SliceSettings, extract_dataset
    from genrelab.store import Store
    from genrelab.variants import VariantSettings

    index = read_index(folder).iloc[:n]
    store_dir = folder / f"store_{n}"
    shutil.rmtree(store_dir, ignore_errors=True)
    t0 = time.perf_counter()
    summary = extract_dataset(index, extractor=MelFeatures(), variant=VariantSettings(),
                              slicing=SliceSettings(length_s=3.0), sample_rate=SR, dataset_dir=folder,
                              out_dir=folder / f"features_{n}", store=Store(store_dir), progress=False)
    seconds = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: kilobytes
    s_bytes = (folder / f"features_{n}" / "S.npy").stat().st_size
    print(json.dumps({"n_tracks": n, "peak_rss_mb": peak_kb / 1024, "seconds": seconds, "S_mb": s_bytes / 2**20,
                      "n_slices": summary["n_slices"]}))
    shutil.rmtree(store_dir, ignore_errors=True)
    shutil.rmtree(folder / f"features_{n}", ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000], help="numbers of tracks")
    p.add_argument("--seconds", type=float, default=30.0, help="length of every track")
    p.add_argument("--keep", type=Path, help="folder for the tracks (kept; default: a temporary one)")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    p.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.folder, args.child)
        return 0
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_features_memory."))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        build_tracks(folder, max(args.sizes), args.seconds)
        print(f"{max(args.sizes)} tracks of {args.seconds:g} s in {folder} ({time.perf_counter() - t0:.0f} s to build)")
        print(f"{'tracks':>7} {'slices':>7} {'S.npy MB':>9} {'peak RSS MB':>12} {'seconds':>8}")
        results = []
        env = {**os.environ, "GENRELAB_LOG": "WARNING"}
        for n in sorted(args.sizes):
            out = subprocess.run([sys.executable, __file__, "--child", str(n), "--folder", str(folder)],
                                 capture_output=True, text=True, env=env, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            results.append(r)
            print(f"{r['n_tracks']:>7} {r['n_slices']:>7} {r['S_mb']:>9.0f} {r['peak_rss_mb']:>12.0f} "
                  f"{r['seconds']:>8.1f}")
        first, last = results[0], results[-1]
        ratio = last["peak_rss_mb"] / first["peak_rss_mb"]
        print(
            f"peak RSS grows {ratio:.2f}x from {first['n_tracks']} to {last['n_tracks']} tracks "
            f"(S.npy grows {last['S_mb'] / first['S_mb']:.1f}x); target < 1.5x: {'met' if ratio < 1.5 else 'NOT met'}"
        )
        return 0 if ratio < 1.5 else 1
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
