"""Seconds per clip and real-time factor of every separator, on CPU and (when present) CUDA.

Rows: HPSS with librosa, genrelab's fast HPSS, Demucs with a tiny randomly initialised
HTDemucs built and saved locally (measures the pipeline: resampling, chunking, I/O-free model
calls; its stems are meaningless), and the real ``htdemucs`` when its weights are already in
the torch hub cache (or ``--repo``). The real-time factor (RTF) is wall-clock processing seconds
per second of audio: below 1 is faster than real time. CPU seconds (all threads) are printed
too: on a shared machine they are steadier than wall-clock time.

``--throughput N`` measures instead what the issue on scaling asks: N clips of ``--seconds``
(30 s) decoded from files and separated by a randomly initialised HTDemucs of the released
``htdemucs`` size (HTDemucs defaults with ``bottom_channels=512``: 41.5 M parameters; the
released model has about 42 M), once with a naive loop (decode, then ``demucs.apply.apply_model``
one clip at a time, float32, ``shifts=0`` as genrelab's default) and once with genrelab
(:meth:`DemucsSeparator.separate_stream`: batches sized from free GPU memory, mixed precision,
decoding ahead in threads). It prints the wall time and the speed in multiples of real time
(audio seconds per wall second), and the relative L2 distance between the two outputs.

Usage::

    python benchmarks/bench_separation.py                  # 30 s clip, CPU (+ CUDA if available)
    python benchmarks/bench_separation.py --seconds 10 --repeats 3 --repo /data/demucs_weights
    python benchmarks/bench_separation.py --throughput 100 --device cuda        # the GPU figure
    python benchmarks/bench_separation.py --throughput 3 --device cpu           # what a CPU does
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

from genrelab.separation import (
    DemucsSeparator,
    HPSSSeparator,
    MissingWeightsError,
    required_weight_files,
)
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


def save_released_size_demucs(folder: Path, *, signature: str = "42000000", seed: int = 0) -> Path:
    """Save a random HTDemucs of the released ``htdemucs`` size in demucs' format; return the file."""
    from omegaconf import OmegaConf

    from genrelab.separation.demucs import _import_demucs

    dm = _import_demucs()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = dm.model_classes[2](sources=["drums", "bass", "other", "vocals"], bottom_channels=512, segment=7.8)
    package = dm.states.serialize_model(model, OmegaConf.create({}), half=False)
    dm.states.save_with_checksum(package, Path(folder) / f"{signature}.th")
    return next(Path(folder).glob(f"{signature}-*.th"))


def throughput(n_clips: int, seconds: float, *, device: str, precision: str, batch_size: str,
               decode_threads: int) -> None:
    """Naive apply_model loop vs genrelab on ``n_clips`` clips decoded from files (see the docstring)."""

    import julius

    from genrelab.io import load_audio, write_audio

    def load(path: Path) -> np.ndarray:
        return load_audio(path, sr=SR, mono=False)[0]

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        save_released_size_demucs(tmp)
        n_files = min(n_clips, 8)
        files = []
        for k in range(n_files):  # distinct audio, cycled: decoding is real work each time
            files.append(tmp / f"clip{k}.wav")
            write_audio(files[-1], test_clip(seconds, seed=k).T, SR, subtype="PCM_16")
        paths = [files[k % n_files] for k in range(n_clips)]
        warm = tmp / "warm.wav"  # on the CPU a short warm-up clip (one 7.8 s chunk) is enough
        write_audio(warm, test_clip(min(seconds, 8.0), seed=99).T, SR, subtype="PCM_16")
        audio_s = n_clips * seconds
        bs: int | str = batch_size if batch_size == "auto" else int(batch_size)
        sep = DemucsSeparator("42000000", repo=tmp, device=device, progress=False, precision=precision,
                              batch_size=bs)
        dev = sep.device
        n_params = sum(p.numel() for p in sep.model.parameters())
        print(f"throughput: {n_clips} clips of {seconds:.0f} s (stereo, {SR} Hz, decoded from WAV), HTDemucs "
              f"{n_params / 1e6:.1f} M parameters (random weights, released size), device {dev}"
              + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else
                 f" ({torch.get_num_threads()} torch threads)"), flush=True)
        apply_model = sep._dm.apply.apply_model
        model = sep.model

        def naive_one(path: Path) -> torch.Tensor:
            y = torch.from_numpy(load(path)).to(dev)
            x = julius.resample_frac(y, SR, sep.samplerate)
            ref = x.mean(0)
            x = (x - ref.mean()) / ref.std()
            with torch.inference_mode():
                out = apply_model(model, x[None], shifts=0, split=True, overlap=0.25, device=dev, progress=False)[0]
            out = out * ref.std() + ref.mean()
            return julius.resample_frac(out, sep.samplerate, SR).cpu()

        def sync() -> None:
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)

        warmup = [paths[0]] if dev.type == "cuda" else [warm]  # cuDNN autotuning wants the real shapes
        naive_one(warmup[0])  # warm-up (cuDNN autotuning, allocator)
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        first_naive = None
        for path in paths:
            out = naive_one(path)
            first_naive = out if first_naive is None else first_naive
        sync()
        naive_s, naive_cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"  naive apply_model loop     {naive_s:8.1f} s wall ({naive_cpu:7.1f} s CPU)  "
              f"{audio_s / naive_s:8.1f}x real time  ({naive_s / n_clips:.2f} s/clip)", flush=True)

        list(sep.separate_stream(warmup * (2 if dev.type == "cuda" else 1), load, SR))  # warm-up
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        first = None
        failed = 0
        for index, stems in sep.separate_stream(paths, load, SR, decode_threads=decode_threads):
            if isinstance(stems, Exception):
                failed += 1
            elif index == 0:
                first = stems
        sync()
        ours_s, ours_cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"  genrelab separate_stream   {ours_s:8.1f} s wall ({ours_cpu:7.1f} s CPU)  "
              f"{audio_s / ours_s:8.1f}x real time  ({ours_s / n_clips:.2f} s/clip)   batch_size={sep.batch_size}, "
              f"precision={sep.precision}, decode_threads={decode_threads}, failed={failed}", flush=True)
        index = {s: i for i, s in enumerate(model.sources)}
        ref = np.stack([first_naive[index[s]].numpy() for s in sep.stems])
        est = np.stack([first[s] for s in sep.stems])
        err = float(np.linalg.norm(est - ref) / np.linalg.norm(ref))
        print(f"  speed-up {naive_s / ours_s:.2f}x; relative L2 of genrelab vs naive (clip 0): {err:.2e}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="clip length")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--repo", type=Path, default=None, help="folder with real Demucs weights (default: hub cache)")
    parser.add_argument("--model", default="htdemucs", help="real Demucs model to time when its weights exist")
    parser.add_argument("--mono", action="store_true", help="time mono input (stems averaged back to mono)")
    parser.add_argument("--throughput", type=int, default=0, metavar="N",
                        help="instead: naive loop vs genrelab on N clips with a released-size random HTDemucs")
    parser.add_argument("--device", default="auto", help="--throughput: auto, cpu, cuda or cuda:N")
    parser.add_argument("--precision", default="auto", help="--throughput: auto, fp32, fp16 or bf16")
    parser.add_argument("--batch-size", default="auto", help="--throughput: clips per forward pass, or auto")
    parser.add_argument("--decode-threads", type=int, default=2, help="--throughput: decoding threads")
    args = parser.parse_args(argv)
    if args.throughput:
        if not torch.cuda.is_available():
            print("no CUDA device on this machine: CPU figures only")
        throughput(args.throughput, args.seconds, device=args.device, precision=args.precision,
                   batch_size=args.batch_size, decode_threads=args.decode_threads)
        return

    stereo = test_clip(args.seconds)
    y = stereo.mean(axis=0) if args.mono else stereo
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"clip: {args.seconds:.1f} s at {SR} Hz, {'mono' if args.mono else 'stereo'}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads; devices: {', '.join(devices)}")
    rows: list[tuple[str, str, float]] = []

    def run(name: str, device: str, fn: Callable[[], object]) -> None:
        seconds, cpu = timed(fn, args.repeats, cuda=device == "cuda")
        rows.append((name, device, seconds))
        print(
            f"  {name:<28} {device:<5} {seconds:8.2f} s wall ({cpu:7.2f} s CPU)   RTF {seconds / args.seconds:7.4f}   "
            f"{args.seconds / seconds:8.1f}x real time",
            flush=True,
        )

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
