"""Seconds per 30 s clip to embed with MusiCNN: a naive loop versus ``EmbeddingExtractor``.

*Naive*: what a first script does -- for every clip, resample it to 16 kHz and call a fresh
``TensorflowPredictMusiCNN(graphFilename=...)``, which loads the graph and starts a
TensorFlow session each time (Essentia's default batch of 64 patches). *Ours*: one
:class:`~genrelab.embeddings.EmbeddingExtractor` as the features stage builds it (the graph
loaded once in each of ``--workers`` worker processes, one per core by default, each with
one TensorFlow thread; batches of 1 patch, the fastest on the CPU) embeds all clips with
``embed_stream``, which decodes and resamples the next clips while the workers run the
model. Both produce the same embeddings (checked on every clip, to float rounding) with the
same patch hop. The extractor's one-off start-up is printed separately and is not part of its
per-clip time. With ``--audio DIR`` the clips are real files, decoded inside both timings.

Wall-clock times on a shared machine move with the other jobs on it; the CPU seconds (of
this process plus the worker) are printed too, and the rounds alternate naive and ours so
that both see the same load. Each round's per-clip time is the mean over all clips; the
table gives the best and the median round.

Usage::

    .venv/bin/python benchmarks/bench_embeddings.py                      # 20 synthetic 30 s clips
    .venv/bin/python benchmarks/bench_embeddings.py --audio ../shared/audio/gtzan_au --clips 10
    .venv/bin/python benchmarks/bench_embeddings.py --rounds 3 --patch-hop 187 --workers 1 --threads 2
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
    p.add_argument(
        "--workers", type=int, default=os.cpu_count(), help="extractor worker processes (default: one per core)"
    )
    p.add_argument("--threads", type=int, default=1, help="TensorFlow threads per extractor worker (0: all cores)")
    p.add_argument(
        "--audio", type=Path, default=None, help="folder of audio files to decode (default: synthetic clips)"
    )
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
    if args.audio is not None:
        from genrelab.io import load_audio

        paths = sorted(p for p in args.audio.iterdir() if p.is_file() and p.suffix != ".txt")
        paths = (paths * (args.clips // max(1, len(paths)) + 1))[:args.clips]
        if not paths:
            raise SystemExit(f"{args.audio}: no audio files")

        def source():
            for path in paths:
                yield load_audio(path, sr=args.sr)[0]
        clip_seconds = float(np.mean([len(load_audio(p, sr=args.sr)[0]) / args.sr for p in paths]))
    else:
        clips = synthetic_clips(args.clips, args.seconds, args.sr, args.seed)

        def source():
            yield from clips
        clip_seconds = args.seconds

    def naive() -> list[np.ndarray]:
        out = []
        for y in source():
            y16 = librosa.resample(y, orig_sr=args.sr, target_sr=16000, res_type="soxr_hq")
            model = es.TensorflowPredictMusiCNN(graphFilename=str(args.graph), output=args.output,
                                                patchHopSize=args.patch_hop)
            out.append(np.asarray(model(y16)))
        return out

    t0 = time.perf_counter()
    extractor = EmbeddingExtractor("msd-musicnn-frozen", graph_path=args.graph, output=args.output,
                                   patch_hop=args.patch_hop, batch_size=args.batch_size,
                                   isolate=not args.in_process, n_threads=args.threads or None,
                                   n_workers=args.workers)
    startup = time.perf_counter() - t0
    workers = [] if args.in_process else [b._proc.pid for b in extractor._backends]

    def ours() -> list[np.ndarray]:
        return [e for _, e, _ in extractor.embed_stream((i, y, args.sr) for i, y in enumerate(source()))]

    def timed(fn, pids):
        c0, w0 = cpu_seconds(), [cpu_seconds(p) for p in pids]
        t = time.perf_counter()
        out = fn()
        wall = time.perf_counter() - t
        cpu = cpu_seconds() - c0 + sum(cpu_seconds(p) - w for p, w in zip(pids, w0))
        return out, wall / args.clips, cpu / args.clips

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
    print(f"{args.clips} clips x {clip_seconds:.2f} s at {args.sr} Hz -> 16 kHz "
          f"({'decoded from ' + str(args.audio) if args.audio else 'synthetic, in memory'}); {n_patches} patches/clip "
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
          f"{cpu['naive'] / cpu['ours']:.2f}x (CPU); ours runs at {clip_seconds / med['ours']:.0f}x real time "
          f"(median; best {clip_seconds / best['ours']:.0f}x)")


if __name__ == "__main__":
    main()
