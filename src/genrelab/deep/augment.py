"""Training-time data augmentation in the spectrogram domain.

Slices reach the networks as spectrograms (log-mel, or MFCC frames), not waveforms, so the
usual audio augmentations are approximated on the batch tensor, in torch, on whatever
device the batch is on:

================  ===========================================================================
name              what it does to each selected slice [shape=(..., n_bins, n_frames)]
================  ===========================================================================
``time_shift``    moves the content by up to ``max_fraction * n_frames`` frames, circularly
                  (``mode='roll'``) or filling the vacated frames with the slice minimum
                  (``mode='pad'``)
``pitch_shift``   moves the content by up to ``max_bins`` frequency bins (fractional, by
                  linear interpolation), filling vacated bins with the slice minimum. On
                  a mel axis a bin is a roughly constant fraction of an octave above ~1 kHz
                  and a constant number of Hz below, so this is an approximation of a pitch
                  shift; it is meaningless on MFCCs (leave it off for MFCC input)
``time_stretch``  resamples time by a rate in ``[1 - max_rate, 1 + max_rate]`` (>1 faster),
                  then crops, or pads with the slice minimum, back to ``n_frames``
``noise``         adds Gaussian noise whose standard deviation is the slice's own standard
                  deviation times ``10 ** (-snr_db / 20)``: an SNR measured on the
                  (log-)spectrogram values themselves, which makes it independent of dB vs
                  natural-log scaling
================  ===========================================================================

Each augmentation is applied to each slice independently with probability ``p``; its amount
is drawn uniformly per slice. All channels of a slice (e.g. the harmonic and percussive
variants of the two-branch input) get the same transformation. Randomness comes only from
the ``torch.Generator`` passed in, so a fixed seed gives the same augmented batch.

Why not ``torch-audiomentations``: it transforms waveforms (and pulls ``torchaudio`` in via
``torch-pitch-shift``, which does not work with this project's torch build), whereas the
features stage hands the trainer spectrograms.

Examples
--------
>>> aug = Augmenter({"time_shift": {"p": 0.5, "max_fraction": 0.2}, "noise": {"p": 0.3, "snr_db": [20, 30]}})
>>> x_aug = aug(x, generator=torch.Generator().manual_seed(0))  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch

__all__ = ["Augmenter", "TimeShift", "PitchShift", "TimeStretch", "Noise", "AUGMENTATIONS"]


def _check_p(p: float, name: str) -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}.p must be in [0, 1], got {p!r}")
    return p


def _uniform(lo: float, hi: float, n: int, g: torch.Generator) -> torch.Tensor:
    """(n,) float32 uniform in [lo, hi] on the generator's device (exactly ``lo`` if equal)."""
    u = torch.rand(n, generator=g, device=g.device, dtype=torch.float32)
    return torch.full_like(u, lo) if lo == hi else lo + (hi - lo) * u


def _selected(p: float, n: int, g: torch.Generator) -> torch.Tensor:
    """(n,) bool: which slices of the batch get this augmentation."""
    return torch.rand(n, generator=g, device=g.device) < p


def _fill_value(x: torch.Tensor) -> torch.Tensor:
    """Per-slice minimum (the 'silence' floor of a log spectrogram), shape (B, 1, ..., 1)."""
    return x.flatten(1).amin(dim=1).view(-1, *([1] * (x.ndim - 1)))


def _resample(x: torch.Tensor, pos: torch.Tensor, *, dim: int, fill: torch.Tensor) -> torch.Tensor:
    """Read ``x`` at fractional positions along ``dim`` (-1 frames, -2 bins), per slice.

    Parameters
    ----------
    x : torch.Tensor [shape=(B, ..., n_bins, n_frames)]
    pos : torch.Tensor [shape=(B, n)]
        Positions (in samples of axis ``dim``) to read; linear interpolation between
        neighbours; positions outside ``[0, size - 1]`` read ``fill``. Integer positions
        return exact copies.
    dim : {-1, -2}
    fill : torch.Tensor [shape=(B, 1, ..., 1)]

    Returns
    -------
    torch.Tensor, same shape as ``x`` except ``n`` along ``dim``.
    """
    size = x.shape[dim]
    lo = torch.floor(pos)
    frac = (pos - lo).to(x.dtype)
    lo = lo.long()
    view = [pos.shape[0]] + [1] * (x.ndim - 1)
    view[dim] = pos.shape[1]
    out_shape = list(x.shape)
    out_shape[dim] = pos.shape[1]

    def take(idx: torch.Tensor) -> torch.Tensor:
        valid = ((idx >= 0) & (idx < size)).view(view).expand(out_shape)
        vals = torch.gather(x, dim, idx.clamp(0, size - 1).view(view).expand(out_shape))
        return torch.where(valid, vals, fill.expand(out_shape))

    w = frac.view(view)
    lo_vals = take(lo)
    if not bool((frac != 0).any()):
        return lo_vals
    return lo_vals * (1 - w) + take(lo + 1) * w


@dataclass(frozen=True)
class TimeShift:
    """Shift along time by up to ``max_fraction`` of the slice length (see module doc)."""

    name: ClassVar[str] = "time_shift"
    p: float = 0.5
    max_fraction: float = 0.25
    mode: str = "roll"

    def __post_init__(self) -> None:
        _check_p(self.p, self.name)
        if not 0.0 <= float(self.max_fraction) <= 1.0:
            raise ValueError(f"{self.name}.max_fraction must be in [0, 1], got {self.max_fraction!r}")
        if self.mode not in ("roll", "pad"):
            raise ValueError(f"{self.name}.mode must be one of ['pad', 'roll'], got {self.mode!r}")

    @property
    def active(self) -> bool:
        return self.p > 0 and self.max_fraction > 0

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        b, n = x.shape[0], x.shape[-1]
        max_shift = self.max_fraction * n
        shift = torch.round(_uniform(-max_shift, max_shift, b, g)) * _selected(self.p, b, g)
        pos = torch.arange(n, device=g.device, dtype=torch.float32)[None, :] - shift[:, None]
        if self.mode == "roll":
            pos = torch.remainder(pos, n)
        return _resample(x, pos.to(x.device), dim=-1, fill=_fill_value(x))


@dataclass(frozen=True)
class PitchShift:
    """Shift along frequency bins by up to ``max_bins`` (fractional; see module doc)."""

    name: ClassVar[str] = "pitch_shift"
    p: float = 0.5
    max_bins: float = 2.0

    def __post_init__(self) -> None:
        _check_p(self.p, self.name)
        if float(self.max_bins) < 0:
            raise ValueError(f"{self.name}.max_bins must be >= 0, got {self.max_bins!r}")

    @property
    def active(self) -> bool:
        return self.p > 0 and self.max_bins > 0

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        b, n = x.shape[0], x.shape[-2]
        shift = _uniform(-float(self.max_bins), float(self.max_bins), b, g) * _selected(self.p, b, g)
        pos = torch.arange(n, device=g.device, dtype=torch.float32)[None, :] - shift[:, None]
        return _resample(x, pos.to(x.device), dim=-2, fill=_fill_value(x))


@dataclass(frozen=True)
class TimeStretch:
    """Resample time by a rate in ``[1 - max_rate, 1 + max_rate]``, crop/pad back."""

    name: ClassVar[str] = "time_stretch"
    p: float = 0.5
    max_rate: float = 0.1

    def __post_init__(self) -> None:
        _check_p(self.p, self.name)
        if not 0.0 <= float(self.max_rate) < 1.0:
            raise ValueError(f"{self.name}.max_rate must be in [0, 1), got {self.max_rate!r}")

    @property
    def active(self) -> bool:
        return self.p > 0 and self.max_rate > 0

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        b, n = x.shape[0], x.shape[-1]
        rate = 1.0 + _uniform(-float(self.max_rate), float(self.max_rate), b, g) * _selected(self.p, b, g)
        pos = torch.arange(n, device=g.device, dtype=torch.float32)[None, :] * rate[:, None]
        return _resample(x, pos.to(x.device), dim=-1, fill=_fill_value(x))


@dataclass(frozen=True)
class Noise:
    """Additive Gaussian noise at an SNR in dB drawn from ``snr_db`` (a number or [lo, hi])."""

    name: ClassVar[str] = "noise"
    p: float = 0.5
    snr_db: float | tuple[float, float] = (20.0, 40.0)

    def __post_init__(self) -> None:
        _check_p(self.p, self.name)
        lo, hi = self.snr_range
        if math.isnan(lo) or math.isnan(hi) or lo > hi:
            raise ValueError(
                f"{self.name}.snr_db must be a number or [low, high] with low <= high, got {self.snr_db!r}"
            )

    @property
    def snr_range(self) -> tuple[float, float]:
        if isinstance(self.snr_db, (int, float)):
            return float(self.snr_db), float(self.snr_db)
        try:
            lo, hi = (float(v) for v in self.snr_db)
        except (TypeError, ValueError):
            raise ValueError(f"{self.name}.snr_db must be a number or [low, high], got {self.snr_db!r}") from None
        return lo, hi

    @property
    def active(self) -> bool:
        return self.p > 0 and self.snr_range[0] < math.inf

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        b = x.shape[0]
        lo, hi = self.snr_range
        snr = _uniform(lo, hi, b, g)
        scale = torch.pow(10.0, -snr / 20.0) * _selected(self.p, b, g)
        noise = torch.randn(x.shape, generator=g, device=g.device, dtype=x.dtype).to(x.device)
        std = x.flatten(1).std(dim=1)
        return x + noise * (std * scale.to(x.device)).view(-1, *([1] * (x.ndim - 1)))


AUGMENTATIONS: dict[str, type] = {cls.name: cls for cls in (TimeStretch, PitchShift, TimeShift, Noise)}
"""Augmentations by name, in the order :class:`Augmenter` applies them."""


class Augmenter:
    """Apply the configured spectrogram augmentations to a training batch.

    Parameters
    ----------
    settings : mapping
        ``{name: {option: value}}`` for names in :data:`AUGMENTATIONS` (``time_shift``,
        ``pitch_shift``, ``time_stretch``, ``noise``). A name that is absent, ``None`` or
        ``False`` is off, as is one with ``p: 0`` or a zero amount. Options and defaults:

        - ``time_shift``: ``p=0.5``, ``max_fraction=0.25`` (of ``n_frames``),
          ``mode='roll'`` (or ``'pad'``)
        - ``pitch_shift``: ``p=0.5``, ``max_bins=2.0``
        - ``time_stretch``: ``p=0.5``, ``max_rate=0.1``
        - ``noise``: ``p=0.5``, ``snr_db=[20, 40]`` (a number, or a range to draw from)

        The order of application is fixed (stretch, pitch, shift, noise) whatever the order
        of the keys.

    Raises
    ------
    ValueError
        On an unknown augmentation or option name (listing the valid ones) or a value out
        of range.

    Notes
    -----
    ``aug(x, *, generator)`` takes ``x`` [shape=(batch, ..., n_bins, n_frames)], float, and
    returns a new tensor of the same shape, dtype and device; ``x`` is not modified. Random
    numbers are drawn from ``generator`` on its own device (a CUDA generator for CUDA
    batches avoids host-device copies of the noise).
    """

    def __init__(self, settings: Mapping[str, Any] | None) -> None:
        settings = dict(settings or {})
        unknown = sorted(set(settings) - set(AUGMENTATIONS))
        if unknown:
            raise ValueError(f"unknown augmentations {unknown}; valid choices: {sorted(AUGMENTATIONS)}")
        self.transforms: list[Any] = []
        self.settings: dict[str, dict[str, Any]] = {}
        for name, cls in AUGMENTATIONS.items():
            opts = settings.get(name)
            if opts is None or opts is False:
                continue
            if not isinstance(opts, Mapping):
                raise ValueError(f"{name} must be a mapping of options, got {opts!r}")
            valid = [f.name for f in fields(cls)]
            bad = sorted(set(opts) - set(valid))
            if bad:
                raise ValueError(f"{name}: unknown options {bad}; valid: {sorted(valid)}")
            opts = {k: (tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in opts.items()}
            transform = cls(**opts)
            self.settings[name] = {f.name: getattr(transform, f.name) for f in fields(cls)}
            if transform.active:
                self.transforms.append(transform)

    @property
    def active(self) -> bool:
        """Whether any augmentation can change a batch."""
        return bool(self.transforms)

    def __call__(self, x: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
        if x.ndim < 3:
            raise ValueError(f"expected a batch of shape (batch, ..., n_bins, n_frames), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"expected a floating-point batch, got {x.dtype}")
        for transform in self.transforms:
            x = transform(x, generator)
        return x

    def __repr__(self) -> str:
        return f"Augmenter({self.settings!r})"
