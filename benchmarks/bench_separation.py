"""Seconds per clip and real-time factor of every separator, on CPU and (when present) CUDA.

Rows: HPSS with librosa, genrelab's fast HPSS, Demucs with a tiny randomly initialised
HTDemucs built and saved locally (measures the pipeline: resampling, chunking, I/O-free model
calls; its stems are meaningless), and the real ``htdemucs`` when its weights are already in
the torch hub cache (or ``--repo``). The real-time factor (RTF) is wall-clock processing seconds
per second of audio: below 1 is faster than real time. CPU seconds (all threads) are printed
too: on a shared machine they are steadier than wall-clock time.

Usage::

    python benchmarks/bench_separation.py                  # 30 s clip, CPU (+ CUDA if available)
    python benchmarks/bench_separation.py --seconds 10 --repeats 3 --repo /data/demucs_weights
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import librosa
import numpy as np
import torch

from genrelab.separation import DemucsSeparator, HPSSSeparator, MissingWeightsError, required_weight_files
from genrelab.separation.demucs import save_tiny_demucs

SR = 22050


def test_clip(seconds: float, *, seed: int = 0) -> np.ndarray:
    """Stereo chords plus noise bursts at 22050 Hz, shape (2, n), float32."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    y = sum(0.15 * np.sin(2 * np.pi * f * t) for f in (110.0, 220.0, 277.2, 329.6))
    env = np.exp(-np.arange(2000) / 300.0)
    for start in range(0, n - 2000, SR // 4):
        y[start : start + 2000] += 0.5 * env * rng.standard_normal(2000)
    return np.stack([y, 0.9 * y]).astype(np.float32)


def timed(fn: Callable[[], object], repeats: int, *, cuda: bool) -> tuple[float, float]:
    """Best wall-clock and best CPU seconds of ``repeats`` calls after one warm-up call."""
    fn()
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best, best_cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="clip length")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--repo", type=Path, default=None, help="folder with real Demucs weights (default: hub cache)")
    parser.add_argument("--model", default="htdemucs", help="real Demucs model to time when its weights exist")
    parser.add_argument("--mono", action="store_true", help="time mono input (stems averaged back to mono)")
    args = parser.parse_args(argv)

    stereo = test_clip(args.seconds)
    y = stereo.mean(axis=0) if args.mono else stereo
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"clip: {args.seconds:.1f} s at {SR} Hz, {'mono' if args.mono else 'stereo'}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads; devices: {', '.join(devices)}")
    rows: list[tuple[str, str, float]] = []

    def run(name: str, device: str, fn: Callable[[], object]) -> None:
        seconds, cpu = timed(fn, args.repeats, cuda=device == "cuda")
        rows.append((name, device, seconds))
        print(f"  {name:<28} {device:<5} {seconds:8.2f} s wall ({cpu:7.2f} s CPU)   RTF {seconds / args.seconds:7.4f}   "
              f"{args.seconds / seconds:8.1f}x real time", flush=True)

    channels = [y] if y.ndim == 1 else list(y)
    run("hpss (librosa)", "cpu", lambda: [librosa.effects.hpss(c) for c in channels])
    for device in devices:
        sep = HPSSSeparator(device=device)
        run("hpss (genrelab)", device, lambda sep=sep: sep.separate(y, SR))

    with tempfile.TemporaryDirectory() as tmp:
        save_tiny_demucs(tmp, signature="0123abcd", bag=None, segment=7.8)
        for device in devices:
            sep = DemucsSeparator("0123abcd", repo=Path(tmp), device=device, progress=False)
            run("demucs (tiny HTDemucs)", device, lambda sep=sep: sep.separate(y, SR))

    files = required_weight_files(args.model, repo=args.repo)
    if all(f.exists for f in files):
        for device in devices:
            try:
                sep = DemucsSeparator(args.model, repo=args.repo, device=device, progress=False)
            except MissingWeightsError as exc:  # pragma: no cover - raced with a deletion
                print(exc)
                break
            run(f"demucs ({args.model})", device, lambda sep=sep: sep.separate(y, SR))
    else:
        missing = ", ".join(f"{f.filename} -> {f.path.parent}" for f in files if not f.exists)
        print(f"  demucs ({args.model}): skipped, weights not on this machine ({missing})")


if __name__ == "__main__":
    main()
