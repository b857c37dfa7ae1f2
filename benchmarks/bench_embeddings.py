"""Seconds per 30 s clip to embed with MusiCNN: a naive loop versus ``EmbeddingExtractor``.

*Naive*: what a first script does -- for every clip, resample it to 16 kHz and call a fresh
``TensorflowPredictMusiCNN(graphFilename=...)``, which loads the graph and starts a
TensorFlow session each time (Essentia's default batch of 64 patches). *Ours*: one
:class:`~genrelab.embeddings.EmbeddingExtractor` (graph loaded once, in its worker process)
embeds all clips with ``embed_many`` with its default settings (batch of 1 patch, the
fastest on the CPU). Both produce the same embeddings (checked on every clip, to float
rounding) with the same patch hop. The extractor's one-off start-up is printed separately and
is not part of its per-clip time.

Wall-clock times on a shared machine move with the other jobs on it; the CPU seconds (of
this process plus the worker) are printed too, and the rounds alternate naive and ours so
that both see the same load. Each round's per-clip time is the mean over all clips; the
table gives the best and the median round.

Usage::

    .venv/bin/python benchmarks/bench_embeddings.py                      # 20 synthetic 30 s clips
    .venv/bin/python benchmarks/bench_embeddings.py --rounds 3 --patch-hop 187 --threads 2
    .venv/bin/python benchmarks/bench_embeddings.py --graph models/msd-musicnn-1.pb --output model/dense/BiasAdd
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np

SHARED_GRAPH = Path(__file__).resolve().parents[2] / "shared" / "models" / "musicnn" / "msd-musicnn-frozen.pb"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--graph", type=Path, default=SHARED_GRAPH, help="MusiCNN graph (default: the shared stand-in)")
    p.add_argument("--output", default="model/batch_normalization_10/batchnorm/add_1", help="embedding node")
    p.add_argument("--clips", type=int, default=20)
    p.add_argument("--seconds", type=float, default=30.0, help="clip length")
    p.add_argument("--sr", type=int, default=22050, help="sample rate of the clips (resampled to 16 kHz)")
    p.add_argument("--patch-hop", type=int, default=93, help="frames between patches (Essentia's default: 93)")
    p.add_argument("--batch-size", type=int, default=1, help="extractor batch (default: its own, 1)")
    p.add_argument("--rounds", type=int, default=2, help="alternating naive/ours rounds")
    p.add_argument("--workers", type=int, default=1, help="extractor worker processes")
    p.add_argument("--threads", type=int, default=None, help="TensorFlow threads per extractor worker (default: all)")
    p.add_argument("--in-process", action="store_true", help="run the extractor without its worker (isolate=False)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def synthetic_clips(n: int, seconds: float, sr: int, seed: int) -> list[np.ndarray]:
    """Chirps, a beat and noise: music-like enough that patches differ, cheap to make."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    clips = []
    for _ in range(n):
        f0, bpm = rng.uniform(110, 440), rng.uniform(70, 160)
        tone = np.sin(2 * np.pi * f0 * t * (1 + 0.05 * np.sin(2 * np.pi * 0.1 * t)))
        beat = np.exp(-30 * ((t * bpm / 60) % 1.0)) * rng.standard_normal(t.size)
        clips.append((0.3 * tone + 0.3 * beat + 0.02 * rng.standard_normal(t.size)).astype(np.float32))
    return clips


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of this process, or of process ``pid`` (Linux ``/proc``)."""
    if pid is None:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    args = parse_args()
    if not args.graph.is_file():
        raise SystemExit(f"{args.graph}: no such graph; pass --graph (e.g. models/msd-musicnn-1.pb)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import essentia
    import essentia.standard as es
    import librosa

    from genrelab.embeddings import EmbeddingExtractor

    essentia.log.infoActive = False
    clips = synthetic_clips(args.clips, args.seconds, args.sr, args.seed)

    def naive() -> list[np.ndarray]:
        out = []
        for y in clips:
            y16 = librosa.resample(y, orig_sr=args.sr, target_sr=16000, res_type="soxr_hq")
            model = es.TensorflowPredictMusiCNN(graphFilename=str(args.graph), output=args.output,
                                                patchHopSize=args.patch_hop)
            out.append(np.asarray(model(y16)))
        return out

    t0 = time.perf_counter()
    extractor = EmbeddingExtractor("msd-musicnn-frozen", graph_path=args.graph, output=args.output,
                                   patch_hop=args.patch_hop, batch_size=args.batch_size,
                                   isolate=not args.in_process, n_threads=args.threads, n_workers=args.workers)
    startup = time.perf_counter() - t0
    workers = [] if args.in_process else [b._proc.pid for b in extractor._backends]

    def ours() -> list[np.ndarray]:
        return [e for e, _ in extractor.embed_many([(y, args.sr) for y in clips])]

    def timed(fn, pids):
        c0, w0 = cpu_seconds(), [cpu_seconds(p) for p in pids]
        t = time.perf_counter()
        out = fn()
        wall = time.perf_counter() - t
        cpu = cpu_seconds() - c0 + sum(cpu_seconds(p) - w for p, w in zip(pids, w0))
        return out, wall / len(clips), cpu / len(clips)

    rows = {"naive": [], "ours": []}
    max_diff = 0.0
    for _ in range(args.rounds):
        ref, wall, cpu = timed(naive, [])
        rows["naive"].append((wall, cpu))
        got, wall, cpu = timed(ours, workers)
        rows["ours"].append((wall, cpu))
        max_diff = max(max_diff, max(float(np.abs(a - b).max()) for a, b in zip(ref, got)))
    extractor.close()

    n_patches = ref[0].shape[0]
    print(f"{platform.node()}  {os.cpu_count()} cores  load average {os.getloadavg()[0]:.2f} (1 min)  "
          f"ours: {'in-process' if args.in_process else f'{args.workers} worker(s)'} x "
          f"{args.threads or 'all'} TF thread(s), batch {args.batch_size}")
    print(f"{args.clips} clips x {args.seconds:g} s at {args.sr} Hz -> 16 kHz; {n_patches} patches/clip "
          f"(hop {args.patch_hop} frames); graph {args.graph.name}")
    print(f"extractor start-up (once): {startup:.2f} s; max |naive - ours| = {max_diff:.2e}")
    print(f"{'method':8s} {'best s/clip':>12s} {'median s/clip':>14s} {'CPU s/clip':>11s}")
    for name, vals in rows.items():
        walls = sorted(w for w, _ in vals)
        print(f"{name:8s} {walls[0]:12.3f} {float(np.median(walls)):14.3f} {min(c for _, c in vals):11.3f}")
    best = {k: min(w for w, _ in v) for k, v in rows.items()}
    med = {k: float(np.median([w for w, _ in v])) for k, v in rows.items()}
    cpu = {k: min(c for _, c in v) for k, v in rows.items()}
    print(f"speed-up: {best['naive'] / best['ours']:.2f}x (best), {med['naive'] / med['ours']:.2f}x (median), "
          f"{cpu['naive'] / cpu['ours']:.2f}x (CPU)")


if __name__ == "__main__":
    main()
