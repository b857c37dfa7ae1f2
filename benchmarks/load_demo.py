"""Bounded load test of the web demo (``genrelab demo``) on 127.0.0.1.

Starts the demo server in its own process, holds ``--idle`` connections open that never send a
request (slow or stuck clients), and meanwhile sends ``--rounds`` rounds of ``--clients``
simultaneous uploads of one ``--seconds`` clip. Prints the answers (HTTP 200 out of all uploads,
and the other statuses), p50/p95/max latency of an upload, the server's resident memory (before,
peak while loaded, after) and thread count, and how many idle connections the server closed
(its socket timeout).

Usage::

    python benchmarks/load_demo.py                       # a tiny bundle trained on the fly
    python benchmarks/load_demo.py --model data/model --clients 50 --rounds 3 --idle 50 --seconds 30

Everything stays on 127.0.0.1; the run is bounded by ``--clients * --rounds`` uploads.
"""

from __future__ import annotations

import argparse
import http.client
import io
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22050


def tiny_bundle(folder: Path) -> Path:
    """Train a small MFCC + logistic-regression bundle on the built-in synthetic dataset."""
    from genrelab.features import SliceSettings, extract_dataset, make_extractor
    from genrelab.models import train_bundle
    from genrelab.synth import SynthSettings, generate_dataset
    from genrelab.variants import VariantSettings

    genres = ("classical", "disco", "metal", "reggae")
    index = generate_dataset(folder / "dataset", SynthSettings(n_tracks_per_genre=4, duration_s=6.0, genres=genres,
                                                               tracks_per_artist=1), progress=False, write_stems=False)
    split = index.assign(split=np.tile(["train", "train", "valid", "test"], len(genres)), method="grouped")
    features = {"name": "mfcc", "n_mfcc": 20, "n_mels": 128, "n_fft": 2048, "hop_length": 512, "deltas": False,
                "stats": ["mean", "std"]}
    variant = {"name": "normal", "separator": "none", "channels": [["mix"]]}
    extract_dataset(index, split, extractor=make_extractor(features),
                    variant=VariantSettings(name="normal", separator="none", channels=(("mix",),)),
                    slicing=SliceSettings(3.0), sample_rate=SR, dataset_dir=folder / "dataset",
                    separated_dir=folder / "separated", out_dir=folder / "features", progress=False)
    params = {"features": features, "variant": variant, "slicing": {"length_s": 3.0, "overlap": 0.0},
              "audio": {"sample_rate": SR}, "separation": {}, "model": {"name": "logreg", "C": 1.0},
              "train": {"seeds": [0]}}
    train_bundle(params, folder / "features", folder / "model", progress=False)
    return folder / "model"


def clip_bytes(seconds: float) -> bytes:
    from genrelab.synth import SynthSettings, render_track

    y = render_track("metal", seed=1, track_index=3, settings=SynthSettings(duration_s=seconds))["mix"]
    buf = io.BytesIO()
    sf.write(buf, y, SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (kB) and Threads of a process, from /proc."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "Threads"):
            out[key] = int(value.split()[0])
    return out


def upload(host: str, port: int, body: bytes) -> tuple[int, float]:
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=600)
    try:
        conn.request("POST", "/api/predict?name=clip.wav", body=body,
                     headers={"Content-Type": "audio/wav", "Content-Length": str(len(body))})
        r = conn.getresponse()
        r.read()
        return r.status, time.perf_counter() - t0
    except OSError as exc:  # a reset or refused connection: no answer
        return -1 if not isinstance(exc, TimeoutError) else -2, time.perf_counter() - t0
    finally:
        conn.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model bundle (default: train a tiny one in a temporary folder)")
    p.add_argument("--clients", type=int, default=50, help="simultaneous uploads per round (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=3, help="rounds (default: %(default)s)")
    p.add_argument("--idle", type=int, default=50, help="idle connections held open meanwhile (default: %(default)s)")
    p.add_argument("--seconds", type=float, default=30.0, help="length of the uploaded clip (default: %(default)s)")
    p.add_argument("--workers", type=int, help="the server's --workers (default: its own)")
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="genrelab-load-") as tmp:
        model = Path(args.model) if args.model else tiny_bundle(Path(tmp))
        body = clip_bytes(args.seconds)
        cmd = [sys.executable, "-m", "genrelab.cli", "demo", "--model", str(model), "--trust", "--port", "0"]
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            line = server.stdout.readline()
            m = re.search(r"http://([\d.]+):(\d+)/", line)
            if not m:
                print(f"the server did not start: {line!r}", file=sys.stderr)
                return 1
            host, port = m.group(1), int(m.group(2))
            before = proc_status(server.pid)
            idle = [socket.create_connection((host, port), timeout=5) for _ in range(args.idle)]
            peak = dict(before)
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    s = proc_status(server.pid)
                    peak["VmRSS"] = max(peak["VmRSS"], s["VmRSS"])
                    peak["Threads"] = max(peak["Threads"], s["Threads"])
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            results: list[tuple[int, float]] = []
            t0 = time.perf_counter()
            for r in range(args.rounds):
                with ThreadPoolExecutor(args.clients) as pool:
                    got = list(pool.map(lambda _: upload(host, port, body), range(args.clients)))
                results += got
                ok = sum(s == 200 for s, _ in got)
                print(f"round {r + 1}: {ok}/{len(got)} answered 200 in {max(t for _, t in got):.1f} s", flush=True)
            wall = time.perf_counter() - t0
            stop.set()
            sampler.join()
            closed = 0
            for s in idle:
                s.settimeout(0.01)
                try:
                    closed += s.recv(1) == b""
                except (TimeoutError, BlockingIOError):
                    pass
                except OSError:
                    closed += 1
                s.close()
            time.sleep(0.5)
            after = proc_status(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)

    lat = np.array([t for _, t in results])
    statuses = {}
    for s, _ in results:
        statuses[s] = statuses.get(s, 0) + 1
    n = len(results)
    print(f"answers: {statuses.get(200, 0)}/{n} (HTTP 200); all statuses {dict(sorted(statuses.items()))} "
          "(-1 = connection reset/refused)")
    print(
        f"latency of an upload ({args.seconds:g} s clip, {len(body) / 1e6:.2f} MB): "
        f"p50 {np.percentile(lat, 50):.2f} s, "
        f"p95 {np.percentile(lat, 95):.2f} s, max {lat.max():.2f} s; {n} uploads in {wall:.1f} s"
    )
    print(
        f"server memory (RSS): {before['VmRSS'] / 1024:.0f} MB before, {peak['VmRSS'] / 1024:.0f} MB peak under load, "
        f"{after['VmRSS'] / 1024:.0f} MB after (high-water {after['VmHWM'] / 1024:.0f} MB); threads: "
        f"{before['Threads']} before, {peak['Threads']} peak, {after['Threads']} after"
    )
    print(f"idle connections: {args.idle} held open by the client, {closed} closed by the server (socket timeout)")
    return 0 if statuses.get(200, 0) == n else 1


if __name__ == "__main__":
    sys.exit(main())
