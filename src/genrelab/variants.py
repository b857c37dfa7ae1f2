"""Dataset variants: the full mix, or sums of separated stems, as one or more channels.

A variant names the separator whose stems it needs and how to mix them::

    normal             separator: none    channels: [[mix]]
    hpss_harmonic      separator: hpss    channels: [[harmonic]]
    demucs_percussive  separator: demucs  channels: [[drums, bass]]
    hpss_pair          separator: hpss    channels: [[harmonic], [percussive]]   (two-branch)
    oracle_percussive  separator: oracle  channels: [[drums, bass]]   (the generator's true stems)

Separation runs once per track and separator settings (its stems are kept in the per-track
store); switching between variants of one separator only re-mixes stems (a sum), so it never
re-runs separation.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genrelab.config import ConfigError
from genrelab.io import load_audio

__all__ = ["VariantSettings", "SeparationSettings", "HPSSSettings", "DemucsSettings", "SEPARATOR_STEMS", "mix_channels",
           "load_variant", "make_variant_separator", "variant_audio"]

SEPARATOR_STEMS: dict[str, tuple[str, ...]] = {
    "none": ("mix",),
    "hpss": ("mix", "harmonic", "percussive"),
    "demucs": ("mix", "drums", "bass", "vocals", "other"),
    "oracle": ("mix", "drums", "bass", "vocals", "other"),
}
"""Stems each separator makes available (``mix`` is always the original audio)."""


@dataclass(frozen=True)
class VariantSettings:
    """Settings of the ``variant`` section.

    Attributes
    ----------
    name : str
        Label of the variant (for reports).
    separator : {'none', 'hpss', 'demucs', 'oracle'}
        Which separation's stems it needs (``oracle``: the dataset's true stems).
    channels : list of list of str
        Each inner list is summed into one channel.
    """

    name: str = "normal"
    separator: str = "none"
    channels: tuple = (("mix",),)

    def __post_init__(self) -> None:
        if self.separator not in SEPARATOR_STEMS:
            raise ConfigError(f"variant.separator: unknown choice {self.separator!r}; "
                              f"valid choices: {', '.join(SEPARATOR_STEMS)}")
        if not self.channels:
            raise ConfigError("variant.channels: needs at least one channel, e.g. [[mix]]")
        valid = SEPARATOR_STEMS[self.separator]
        for ch in self.channels:
            if not isinstance(ch, (list, tuple)) or not ch:
                raise ConfigError(f"variant.channels: each channel is a non-empty list of stems, got {ch!r}")
            for stem in ch:
                if stem not in valid:
                    raise ConfigError(f"variant.channels: stem {stem!r} is not made by separator "
                                      f"{self.separator!r}; valid stems: {', '.join(valid)}")
        object.__setattr__(self, "channels", tuple(tuple(ch) for ch in self.channels))

    @property
    def n_channels(self) -> int:
        return len(self.channels)


def _check_device(key: str, device: str) -> None:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (whether CUDA is present is checked when used)."""
    if device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit()):
        return
    raise ConfigError(f"{key}: unknown device {device!r}; valid choices: auto, cpu, cuda, cuda:N")


@dataclass(frozen=True)
class HPSSSettings:
    """Settings of ``separation.hpss`` (see :class:`genrelab.separation.HPSSSeparator`).

    Attributes
    ----------
    kernel_size : int >= 1, or a pair (frames, bins)
        Median filter lengths.
    margin : float >= 1, or a pair
        Mask margins (harmonic, percussive).
    power : float > 0
        Mask exponent.
    n_fft : int >= 2
    hop_length : int in [1, n_fft // 2], or None (``n_fft // 4``)
    device : {'auto', 'cpu', 'cuda', 'cuda:N'}
    """

    kernel_size: int | list = 31
    margin: float | list = 1.0
    power: float = 2.0
    n_fft: int = 2048
    hop_length: int | None = 512
    device: str = "auto"

    def __post_init__(self) -> None:
        for key, value, least in (("kernel_size", self.kernel_size, 1), ("margin", self.margin, 1)):
            values = value if isinstance(value, list) else [value]
            if len(values) not in (1, 2) or any(isinstance(v, bool) or not isinstance(v, (int, float)) or v < least
                                                for v in values):
                raise ConfigError(f"separation.hpss.{key}: must be a number >= {least} or a pair of them, "
                                  f"got {value!r}")
        if not self.power > 0:
            raise ConfigError(f"separation.hpss.power: must be > 0, got {self.power}")
        if self.n_fft < 2:
            raise ConfigError(f"separation.hpss.n_fft: must be at least 2, got {self.n_fft}")
        if self.hop_length is not None and not 0 < self.hop_length <= self.n_fft // 2:
            raise ConfigError(f"separation.hpss.hop_length: must be in [1, n_fft // 2] = [1, {self.n_fft // 2}], "
                              f"got {self.hop_length}")
        _check_device("separation.hpss.device", self.device)


DEMUCS_PRECISIONS = ("auto", "fp32", "fp16", "bf16")
"""``separation.demucs.precision`` choices (as :class:`genrelab.separation.DemucsSeparator` takes them)."""


@dataclass(frozen=True)
class DemucsSettings:
    """Settings of ``separation.demucs`` (see :class:`genrelab.separation.DemucsSeparator`).

    Attributes
    ----------
    model : str
        Bag name or model signature (``htdemucs`` ...).
    repo : str, optional
        Folder of local weights; ``None`` uses torch's hub cache.
    segment : float > 0, optional
        Seconds per chunk; ``None`` keeps the model's.
    shifts : int >= 0
    overlap : float in [0, 1)
    device : {'auto', 'cpu', 'cuda', 'cuda:N'}
    precision : {'auto', 'fp32', 'fp16', 'bf16'}
        The network's float type (``auto``: fp16 on CUDA, fp32 on the CPU).
    batch_size : int >= 1 or 'auto'
        Clips per forward pass (``auto``: from free GPU memory, 1 on the CPU).
    download : bool
        Let demucs fetch missing weights.
    progress : bool
        Demucs' own per-chunk progress bar.
    """

    model: str = "htdemucs"
    repo: str | None = None
    segment: float | None = None
    shifts: int = 0
    overlap: float = 0.25
    device: str = "auto"
    precision: str = "auto"
    batch_size: int | str = "auto"
    download: bool = False
    progress: bool = False

    def __post_init__(self) -> None:
        if not self.model:
            raise ConfigError("separation.demucs.model: must name a model, e.g. htdemucs")
        if self.segment is not None and not self.segment > 0:
            raise ConfigError(f"separation.demucs.segment: must be a positive number of seconds or null, "
                              f"got {self.segment}")
        if self.shifts < 0:
            raise ConfigError(f"separation.demucs.shifts: must be >= 0, got {self.shifts}")
        if not 0 <= self.overlap < 1:
            raise ConfigError(f"separation.demucs.overlap: must be in [0, 1), got {self.overlap}")
        if not (self.batch_size == "auto" or (isinstance(self.batch_size, int) and self.batch_size >= 1)):
            raise ConfigError(f"separation.demucs.batch_size: must be an integer >= 1 or auto, got {self.batch_size!r}")
        if self.precision not in DEMUCS_PRECISIONS:
            raise ConfigError(f"separation.demucs.precision: unknown choice {self.precision!r}; valid choices: "
                              f"{', '.join(DEMUCS_PRECISIONS)}")
        _check_device("separation.demucs.device", self.device)


SEPARATION_SETTINGS: dict[str, type] = {"hpss": HPSSSettings, "demucs": DemucsSettings}
"""Separator name -> dataclass of its settings (``separation.<name>``)."""


@dataclass(frozen=True)
class SeparationSettings:
    """Settings of the ``separation`` section: one sub-section per separator.

    Validated cheaply (no torch import, no weights loaded); the separator classes check the
    same ranges again when they are built.
    """

    hpss: dict = dataclasses.field(default_factory=dict)
    demucs: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        from genrelab.config import from_mapping

        for name, cls in SEPARATION_SETTINGS.items():
            from_mapping(cls, getattr(self, name), section=f"separation.{name}")


def mix_channels(variant: VariantSettings, stem: Callable[[str], np.ndarray]) -> np.ndarray:
    """Sum each channel's stems: the one place where a variant's channels are made.

    Parameters
    ----------
    variant : VariantSettings
    stem : callable
        ``stem(name) -> np.ndarray [shape=(n,)]``, the mono audio of one stem (``'mix'`` is
        the original audio).

    Returns
    -------
    channels : np.ndarray [shape=(n_channels, n)], float32
        Stems of unequal length are cut to the shortest.
    """
    channels = []
    for ch in variant.channels:
        parts = [stem(s) for s in ch]
        n = min(len(p) for p in parts)
        channels.append(np.sum([p[:n] for p in parts], axis=0))
    n = min(len(c) for c in channels)
    return np.stack([c[:n] for c in channels]).astype(np.float32)


def load_variant(track: pd.Series | dict, variant: VariantSettings, *, dataset_dir: Path, sr: int,
                 stem_files: dict[str, Path] | None = None) -> np.ndarray:
    """Audio of one track in this variant.

    Parameters
    ----------
    track : pd.Series or dict
        A row of the dataset index (``track_id``, ``path``).
    variant : VariantSettings
    dataset_dir : Path
        Output of the prepare stage (``path`` may be relative to it; the true stems of
        ``oracle`` variants are ``stems/<track_id>/<stem>.flac`` there).
    sr : int
        Sample rate in Hz.
    stem_files : dict, optional
        ``{stem: file}`` of the separated stems (from the per-track store, see
        :func:`genrelab.separation.track_stems`); needed when a channel uses a stem other
        than ``mix`` and the separator is not ``oracle``.

    Returns
    -------
    y : np.ndarray [shape=(n_channels, n)], float32
    """
    from genrelab.datasets import resolve_path

    cache: dict[str, np.ndarray] = {}

    def stem(name: str) -> np.ndarray:
        if name not in cache:
            if name == "mix":
                path = resolve_path(dataset_dir, track["path"])
            elif variant.separator == "oracle":
                path = Path(dataset_dir) / "stems" / str(track["track_id"]) / f"{name}.flac"
                if not path.is_file():
                    raise FileNotFoundError(f"{path}: true stem {name!r} of track {track['track_id']} is missing; "
                                            f"variant {variant.name!r} needs a dataset with true stems (synthetic)")
            else:
                if not stem_files or name not in stem_files:
                    raise FileNotFoundError(f"stem {name!r} of track {track['track_id']} was not given; "
                                            "get it from the store (genrelab.separation.track_stems)")
                path = Path(stem_files[name])
            cache[name] = load_audio(path, sr=sr, mono=True)[0]
        return cache[name]

    return mix_channels(variant, stem)


def make_variant_separator(variant: VariantSettings, separation: dict[str, Any] | None):
    """The separator a variant needs, built from the ``separation`` section (cached).

    Parameters
    ----------
    variant : VariantSettings
    separation : dict, optional
        The ``separation`` params section; ``separation[variant.separator]`` are the settings
        the separate stage used.

    Returns
    -------
    separator : object with ``separate(y, sr) -> dict[str, np.ndarray]``, or None
        ``None`` for ``separator: none`` (the mix needs no separation).

    Raises
    ------
    ConfigError
        For ``oracle`` variants: their stems are the synthetic generator's ground truth, which
        a new recording does not have.
    """
    if variant.separator == "none":
        return None
    if variant.separator == "oracle":
        raise ConfigError(
            f"variant {variant.name!r} reads the generator's true stems (separator: oracle), which exist only for "
            "the synthetic dataset; a model trained on it cannot classify new audio. Train on a variant with "
            "separator none, hpss or demucs (e.g. dvc exp run -S variant=normal)")
    from genrelab.separation import cached_separator

    settings = dict((separation or {}).get(variant.separator) or {})
    return cached_separator(variant.separator, json.dumps(settings, sort_keys=True, default=str))


def variant_audio(y: np.ndarray, sr: int, variant: VariantSettings, *, separator=None) -> np.ndarray:
    """The channels of ``variant`` for one mono signal.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono audio at ``sr``.
    sr : int > 0
        Sample rate in Hz.
    variant : VariantSettings
    separator : object, optional
        From :func:`make_variant_separator`; required when a channel uses a stem other than
        ``mix``.

    Returns
    -------
    channels : np.ndarray [shape=(n_channels, n)], float32
        Each channel is the sum of its stems (as :func:`genrelab.variants.load_variant`).
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"y must be mono with shape (n,), got shape {y.shape}; mix it down first")
    stems: dict[str, np.ndarray] = {"mix": y}
    needed = {s for ch in variant.channels for s in ch} - {"mix"}
    if needed:
        if separator is None:
            raise ValueError(f"variant {variant.name!r} needs stems {sorted(needed)}; pass its separator "
                             "(make_variant_separator(variant, params['separation']))")
        out = separator.separate(y, sr)
        missing = sorted(needed - set(out))
        if missing:
            raise ValueError(f"separator {type(separator).__name__} returned stems {sorted(out)}, "
                             f"not {missing} that variant {variant.name!r} needs")
        stems.update({k: np.asarray(v, dtype=np.float32) for k, v in out.items()})
    return mix_channels(variant, stems.__getitem__)
