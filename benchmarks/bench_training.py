"""Training and inference throughput of every torch network, reading from a memmap.

Writes random slices to a temporary ``.npy``, opens it with ``mmap_mode='r'`` as the
pipeline does, trains each network for a few epochs with :func:`genrelab.deep.loop.fit` and
prints slices per second and the fraction of step time spent loading data, on the CPU and,
when present, on CUDA. Each measurement is repeated (``--repeats``), alternating with a
*minimal plain loop* (the whole array in memory as one tensor, ``X[idx]``, forward, backward,
Adam step: the least a training loop can do) on the same data, network and batch size; the
table gives the median and the range of each and the ratio of the medians (genrelab / plain:
1 or more means genrelab's loop costs nothing).

The plain loop runs twice per repeat: in this process (whose C allocator :func:`fit` has
tuned, see :mod:`genrelab.allocator`: this compares the loops alone) and in a fresh
interpreter with glibc's defaults, as a plain script runs (*plain, fresh*; its start-up is not
timed, only its epochs).

Usage::

    .venv/bin/python benchmarks/bench_training.py                       # defaults below
    .venv/bin/python benchmarks/bench_training.py --n-bins 128 --n-frames 431 --nets cnn rnn --repeats 7
    .venv/bin/python benchmarks/bench_training.py --device cuda --n-slices 4096 --json out.json
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from genrelab.deep.augment import Augmenter
from genrelab.deep.loop import TrainSettings, fit, predict_proba, seeded_init
from genrelab.deep.nets import NETS, build_net


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nets", nargs="+", default=sorted(NETS), choices=sorted(NETS))
    p.add_argument("--n-slices", type=int, default=512)
    p.add_argument("--n-bins", type=int, default=96, help="mel bands (or MFCCs)")
    p.add_argument("--n-frames", type=int, default=130, help="frames per slice (130 = 3 s at 22050 Hz, hop 512)")
    p.add_argument("--n-classes", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=2, help="the first epoch counts as warm-up only if --epochs > 1")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "all"], default="all",
                   help="'all' = CPU, plus CUDA when present")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads on the CPU (default: torch's)")
    p.add_argument("--augment", action="store_true", help="also time the default augmentations")
    p.add_argument("--repeats", type=int, default=3, help="measurements per net and device (alternating with plain)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--plain-child", default=None, help=argparse.SUPPRESS)
    return p.parse_args()


def plain_fresh(net: str, path: Path, y: np.ndarray, *, n_classes: int, batch_size: int, epochs: int, device: str,
                threads: int | None) -> tuple[float, float]:
    """:func:`plain_epochs` in a fresh interpreter (glibc's allocator defaults): (slices/s, per CPU second)."""
    import subprocess
    import sys

    job = path.with_suffix(".plain.json")
    job.write_text(json.dumps({"net": net, "path": str(path), "y": y.tolist(), "n_classes": n_classes,
                               "batch_size": batch_size, "epochs": epochs, "device": device, "threads": threads}))
    out = subprocess.run([sys.executable, __file__, "--plain-child", str(job)], capture_output=True, text=True,
                         check=True).stdout
    rate, cpu_rate = json.loads(out.strip().splitlines()[-1])
    return rate, cpu_rate


def _plain_child(job: Path) -> None:
    spec = json.loads(job.read_text())
    if spec["threads"] is not None:
        torch.set_num_threads(spec["threads"])
    X = torch.from_numpy(np.load(spec["path"]))
    model = seeded_init(functools.partial(build_net, spec["net"], n_classes=spec["n_classes"],
                                          input_shape=tuple(X.shape[1:])), seed=0)
    cpu_rates: list[float] = []
    rate = plain_epochs(model, X, torch.tensor(spec["y"]), batch_size=spec["batch_size"], epochs=spec["epochs"],
                        device=spec["device"], cpu_rates=cpu_rates)
    print(json.dumps([rate, cpu_rates[0]]))


def plain_epochs(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, *, batch_size: int, epochs: int,
                 device: str, seed: int = 0, cpu_rates: list | None = None) -> float:
    """The minimal loop: slices per second over ``epochs`` (after one warm-up epoch); the rate
    per CPU second of this process is appended to ``cpu_rates``."""
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    X, y = X.to(device), y.to(device)
    seen, elapsed, cpu = 0, 0.0, 0.0
    for epoch in range(epochs + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        perm = torch.randperm(len(X), generator=gen).to(device)
        for start in range(0, len(X), batch_size):
            idx = perm[start:start + batch_size]
            loss = torch.nn.functional.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if epoch > 0:
            elapsed += time.perf_counter() - t0
            cpu += time.process_time() - c0
            seen += len(X)
    if cpu_rates is not None:
        cpu_rates.append(seen / cpu)
    return seen / elapsed


def _fmt(rates: list[float]) -> str:
    return f"{float(np.median(rates)):7.0f} [{min(rates):.0f}-{max(rates):.0f}]"


def main() -> None:
    args = parse_args()
    if args.plain_child:
        _plain_child(Path(args.plain_child))
        return
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        raise SystemExit("CUDA requested but not available")
    rng = np.random.default_rng(0)
    y = rng.integers(0, args.n_classes, args.n_slices)
    augment = (
        Augmenter({k: {"p": 0.5} for k in ("time_shift", "pitch_shift", "time_stretch", "noise")})
        if args.augment
        else None
    )
    warmup = args.epochs > 1  # the first epoch warms up (allocator, oneDNN/cuDNN plans) and is not timed
    timed = TrainSettings(batch_size=args.batch_size, max_epochs=args.epochs - warmup, patience=None)

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
        f"{platform.processor() or platform.machine()}"
        + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "")
    )
    print(f"input: {args.n_slices} slices x ({args.n_bins} bins x {args.n_frames} frames) float32 memmap, "
          f"batch {args.batch_size}, {args.epochs} epoch(s){', augmented' if augment else ''}, "
          f"{args.repeats} repeat(s); slices/s as median [min-max]")
    header = (f"{'net':<11} {'device':<6} {'params':>8} {'train slices/s':>22} {'plain slices/s':>22} {'ratio':>6} "
              f"{'plain, fresh':>22} {'ratio':>6} {'data frac':>9} {'aug frac':>8} {'predict slices/s':>17}")
    print(header)
    print("-" * len(header))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for two in (False, True):
            shape = (
                (args.n_slices, 2, args.n_bins, args.n_frames) if two else (args.n_slices, args.n_bins, args.n_frames)
            )
            path = Path(tmp) / f"S{int(two)}.npy"
            mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
            for start in range(0, args.n_slices, 256):
                block = mm[start : start + 256]
                block[...] = rng.normal(size=block.shape).astype(np.float32)
            mm.flush()
            del mm
            files[two] = path
        for device in devices:
            for net in args.nets:
                two = net == "two_branch"
                S = np.load(files[two], mmap_mode="r")
                input_shape = S.shape[1:]
                X_mem, y_mem = torch.from_numpy(np.load(files[two])), torch.from_numpy(y)
                ours, plain, ours_cpu, plain_cpu, fresh, fresh_cpu = [], [], [], [], [], []
                for _ in range(args.repeats):
                    model = seeded_init(functools.partial(build_net, net, n_classes=args.n_classes,
                                                          input_shape=input_shape), seed=0)
                    if warmup:
                        fit(
                            model,
                            (S, y),
                            settings=TrainSettings(batch_size=args.batch_size, max_epochs=1, patience=None),
                            device=device,
                            seed=0,
                            augment=augment,
                            progress=False,
                        )
                    c0 = time.process_time()
                    result = fit(model, (S, y), settings=timed, device=device, seed=0, augment=augment, progress=False)
                    ours_cpu.append(args.n_slices * timed.max_epochs / (time.process_time() - c0))
                    ours.append(result.slices_per_second)
                    reference = seeded_init(functools.partial(build_net, net, n_classes=args.n_classes,
                                                              input_shape=input_shape), seed=0)
                    plain.append(plain_epochs(reference, X_mem, y_mem, batch_size=args.batch_size,
                                              epochs=args.epochs - warmup, device=device, cpu_rates=plain_cpu))
                    rate, cpu_rate = plain_fresh(net, files[two], y, n_classes=args.n_classes,
                                                 batch_size=args.batch_size, epochs=args.epochs - warmup,
                                                 device=device, threads=args.threads)
                    fresh.append(rate)
                    fresh_cpu.append(cpu_rate)
                t0 = time.perf_counter()
                predict_proba(model, S, batch_size=timed.eval_batch_size, device=device)
                if device == "cuda":
                    torch.cuda.synchronize()
                predict_rate = args.n_slices / (time.perf_counter() - t0)
                ratio = float(np.median(ours)) / float(np.median(plain))
                ratio_cpu = float(np.median(ours_cpu)) / float(np.median(plain_cpu))
                ratio_fresh = float(np.median(ours)) / float(np.median(fresh))
                ratio_fresh_cpu = float(np.median(ours_cpu)) / float(np.median(fresh_cpu))
                row = {
                    "net": net,
                    "device": result.device,
                    "n_parameters": result.n_parameters,
                    "train_slices_per_second": float(np.median(ours)),
                    "train_rates": ours,
                    "plain_slices_per_second": float(np.median(plain)),
                    "plain_rates": plain,
                    "ratio": ratio,
                    "train_rates_per_cpu_second": ours_cpu,
                    "plain_rates_per_cpu_second": plain_cpu,
                    "ratio_cpu": ratio_cpu,
                    "plain_fresh_slices_per_second": float(np.median(fresh)),
                    "plain_fresh_rates": fresh,
                    "plain_fresh_rates_per_cpu_second": fresh_cpu,
                    "ratio_fresh": ratio_fresh,
                    "ratio_fresh_cpu": ratio_fresh_cpu,
                    "data_fraction": result.data_fraction,
                    "augment_fraction": result.augment_fraction,
                    "predict_slices_per_second": predict_rate,
                    "input_shape": list(input_shape),
                    "batch_size": args.batch_size,
                }
                rows.append(row)
                print(f"{net:<11} {device:<6} {row['n_parameters']:>8} {_fmt(ours):>22} {_fmt(plain):>22} {ratio:6.2f} "
                      f"{_fmt(fresh):>22} {ratio_fresh:6.2f} "
                      f"{row['data_fraction']:>9.3f} {row['augment_fraction']:>8.3f} {predict_rate:>17.0f}"
                      f"   per CPU second: {_fmt(ours_cpu)} vs {_fmt(plain_cpu)} (fresh {_fmt(fresh_cpu)}), "
                      f"ratios {ratio_cpu:.2f} ({ratio_fresh_cpu:.2f})", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
