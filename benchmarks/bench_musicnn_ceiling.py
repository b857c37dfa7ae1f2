"""How fast could MusiCNN run on this CPU at all? The same layers in torch, and their arithmetic.

``bench_embeddings.py`` times Essentia's MusiCNN (TensorFlow 2.5, bundled with
essentia-tensorflow) per patch. This script asks whether another runtime would do much better:
it builds the layers of ``MSD_musicnn`` (the published architecture, Pons & Serra 2019:
timbral filters 7x38 and 7x67 with 204 maps, temporal filters of 128, 64 and 32 frames with
51 maps, a mid-end of three 7-frame convolutions with 64 maps, a 200-unit dense layer; random
weights, batch normalisation left out as it folds into the convolutions at inference) in
torch (oneDNN), times one patch of 187 x 96 at a time on one thread, and prints the
multiply-adds per patch, so that milliseconds per patch can be read as GFLOP/s.

A 30 s clip at Essentia's default patch hop (93 frames) has 19 patches; at ``t`` ms of CPU
per patch, ``n`` cores embed a clip in ``19 t / n`` ms, i.e. ``30 s / (19 t / n)`` times real time.

Usage::

    .venv/bin/python benchmarks/bench_musicnn_ceiling.py
"""

from __future__ import annotations

import platform
import time

import torch
import torch.nn.functional as F
from torch import nn

FRAMES, BANDS = 187, 96


class MusicnnLayers(nn.Module):
    """The layers of MSD_musicnn (shapes only)."""

    def __init__(self) -> None:
        super().__init__()
        self.timbral = nn.ModuleList([nn.Conv2d(1, 204, (7, int(f * BANDS))) for f in (0.4, 0.7)])
        self.temporal = nn.ModuleList([nn.Conv2d(1, 51, (k, 1)) for k in (128, 64, 32)])
        self.mid = nn.ModuleList([nn.Conv2d(1, 64, (7, 561)), nn.Conv2d(1, 64, (7, 64)), nn.Conv2d(1, 64, (7, 64))])
        self.dense = nn.Linear(2 * (561 + 3 * 64), 200)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (n, 1, FRAMES, BANDS)
        padded = F.pad(x, (0, 0, 3, 3))
        maps = [F.relu(conv(padded)).amax(-1) for conv in self.timbral]
        for conv in self.temporal:  # 'same' padding along time
            k = conv.kernel_size[0]
            maps.append(F.relu(conv(F.pad(x, (0, 0, (k - 1) // 2, k // 2)))).amax(-1))
        front = torch.cat(maps, 1)  # (n, 561, FRAMES)
        layers, h = [front], front
        for i, conv in enumerate(self.mid):
            out = F.relu(conv(F.pad(h.transpose(1, 2)[:, None], (0, 0, 3, 3)))).squeeze(-1)
            h = out if i == 0 else out + h
            layers.append(h)
        m = torch.cat(layers, 1)
        return self.dense(torch.cat([m.amax(-1), m.mean(-1)], 1))


def multiply_adds() -> int:
    """Multiply-adds of one patch (convolutions and the dense layer)."""
    macs = sum(204 * FRAMES * (BANDS - h + 1) * 7 * h for h in (int(0.4 * BANDS), int(0.7 * BANDS)))
    macs += sum(51 * FRAMES * BANDS * k for k in (128, 64, 32))
    macs += 64 * FRAMES * 7 * 561 + 2 * 64 * FRAMES * 7 * 64
    return macs + 2 * (561 + 3 * 64) * 200


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = MusicnnLayers().eval()
    macs = multiply_adds()
    print(f"torch {torch.__version__}, 1 thread, {platform.machine()}; MSD_musicnn layers: "
          f"{macs / 1e9:.2f} G multiply-adds per patch of {FRAMES} x {BANDS}")
    for batch in (1, 4, 19):
        x = torch.randn(batch, 1, FRAMES, BANDS)
        with torch.inference_mode():
            model(x)
            rounds = 5
            c0 = time.process_time()
            for _ in range(rounds):
                model(x)
            ms = 1000 * (time.process_time() - c0) / rounds / batch
        print(f"  batch {batch:2d}: {ms:6.1f} ms CPU per patch = {2 * macs / ms / 1e6:5.1f} GFLOP/s; "
              f"19 patches per 30 s clip on 2 cores: {30 / (19 * ms / 1000 / 2):5.0f}x real time")


if __name__ == "__main__":
    main()
