"""Profile of the classic extractor: plain per-slice librosa (before) against genrelab's shared
analysis (after), on 20 slices of 3 s from two shared GTZAN clips.

Prints wall and CPU time of each and its top functions by own time (cProfile).
Usage: ``python benchmarks/profile_classic.py [--top N]``.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

import numpy as np

from genrelab.features import SliceSettings, make_extractor
from genrelab.features.reference import reference_features
from genrelab.features.track import track_feature_sets
from genrelab.io import load_audio

SR = 22050
GTZAN = Path(__file__).resolve().parents[2] / "shared" / "audio" / "gtzan_au"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--top", type=int, default=8, help="functions listed per profile")
    args = p.parse_args(argv)
    files = sorted(GTZAN.glob("*.au"))[:2]
    if len(files) < 2:
        print(f"needs two GTZAN clips under {GTZAN}", file=sys.stderr)
        return 2
    clips = [np.asarray(load_audio(f, sr=SR)[0], dtype=np.float32) for f in files]
    n = 3 * SR
    slices = [y[i * n:(i + 1) * n] for y in clips for i in range(10)]  # 20 slices of 3 s
    ex = make_extractor({"name": "classic"})
    slicing = SliceSettings(length_s=3.0)

    def before() -> None:
        for s in slices:
            reference_features(ex, s, SR)

    def after() -> None:
        for y in clips:
            track_feature_sets(y[None], SR, extractors=[ex], slicing=slicing)

    after()
    before()  # warm-up: imports, numba compilation, librosa caches
    for name, fn in (("before (plain librosa per slice)", before), ("after (genrelab, shared analysis)", after)):
        prof = cProfile.Profile()
        c0, t0 = time.process_time(), time.perf_counter()
        prof.enable()
        fn()
        prof.disable()
        print(f"== {name}: {time.perf_counter() - t0:.2f} s wall, {time.process_time() - c0:.2f} s CPU "
              f"for {len(slices)} slices")
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(args.top)
        print("\n".join(line for line in out.getvalue().splitlines() if "{" in line or ".py" in line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
