"""Benchmark genrelab's HPSS against ``librosa.effects.hpss`` on a 30 s clip.

Prints the wall-clock and CPU time of each (best of ``--repeats`` interleaved runs, after one
warm-up that also loads the compiled median kernel), the speed-ups, and the largest differences
between the outputs: waveform (relative to the input peak) and STFT magnitude (relative
Frobenius). On a shared machine wall-clock times swing with the load; the CPU-time ratio is
the steadier figure (librosa's HPSS is single-threaded).

Usage::

    python benchmarks/bench_hpss.py                    # a GTZAN excerpt from /work/shared/audio, else synthetic
    python benchmarks/bench_hpss.py --file song.wav --seconds 30 --repeats 5 --device cuda
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import librosa
import numpy as np
import torch

from genrelab.io import load_audio
from genrelab.separation.hpss import hpss

SR = 22050
DEFAULT_FILES = [
    Path("/work/shared/audio/gtzan_au/rock.00000.au"),
    Path("/work/shared/audio/gtzan_au/jazz.00000.au"),
]


def synthetic_clip(seconds: float, *, seed: int = 0) -> np.ndarray:
    """Chords plus drum-like noise bursts, float32 at 22050 Hz."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    y = sum(0.15 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 440.0))
    env = np.exp(-np.arange(2000) / 300.0)
    for start in range(0, n - 2000, SR // 4):
        y[start : start + 2000] += 0.5 * env * rng.standard_normal(2000)
    return y.astype(np.float32)


def pick_clip(path: Path | None, seconds: float) -> tuple[np.ndarray, str]:
    candidates = [path] if path is not None else DEFAULT_FILES
    for p in candidates:
        if p is not None and p.is_file():
            y, _ = load_audio(p, sr=SR, duration=seconds)
            return y, str(p)
    return synthetic_clip(seconds), "synthetic (chords + noise bursts)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, default=None, help="audio file (default: a GTZAN excerpt, else synthetic)")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--kernel-size", type=int, default=31)
    parser.add_argument("--margin", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    y, source = pick_clip(args.file, args.seconds)
    settings = {"kernel_size": args.kernel_size, "margin": args.margin, "n_fft": 2048, "hop_length": 512}
    print(f"input: {source}, {len(y) / SR:.2f} s at {SR} Hz; settings {settings}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")

    hpss(y, device=args.device, **settings)  # warm-up (compiled kernel, CUDA context)
    librosa.effects.hpss(y, **settings)
    t_lib, t_ours, c_lib, c_ours = [], [], [], []
    for _ in range(args.repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        h_ref, p_ref = librosa.effects.hpss(y, **settings)
        t_lib.append(time.perf_counter() - t0)
        c_lib.append(time.process_time() - c0)
        c0, t0 = time.process_time(), time.perf_counter()
        h, p = hpss(y, device=args.device, **settings)  # returns numpy: includes the device sync
        t_ours.append(time.perf_counter() - t0)
        c_ours.append(time.process_time() - c0)

    peak = float(np.abs(y).max())
    wave = max(np.abs(h - h_ref).max(), np.abs(p - p_ref).max()) / peak

    def spec_err(a: np.ndarray, b: np.ndarray) -> float:
        sa, sb = np.abs(librosa.stft(a)), np.abs(librosa.stft(b))
        return float(np.linalg.norm(sa - sb) / np.linalg.norm(sb))

    spec = max(spec_err(h, h_ref), spec_err(p, p_ref))
    best_lib, best_ours = min(t_lib), min(t_ours)
    print(f"librosa.effects.hpss : {best_lib * 1000:8.1f} ms wall (median {np.median(t_lib) * 1000:.1f}), "
          f"{min(c_lib) * 1000:.1f} ms CPU")
    print(f"genrelab hpss        : {best_ours * 1000:8.1f} ms wall (median {np.median(t_ours) * 1000:.1f}), "
          f"{min(c_ours) * 1000:.1f} ms CPU")
    print(
        f"speed-up             : {best_lib / best_ours:8.1f}x wall "
        f"(medians {np.median(t_lib) / np.median(t_ours):.1f}x), "
        f"{min(c_lib) / min(c_ours):.1f}x CPU time"
    )
    print(f"max |waveform diff| / input peak : {wave:.2e}")
    print(f"relative STFT-magnitude diff     : {spec:.2e}")


if __name__ == "__main__":
    main()
