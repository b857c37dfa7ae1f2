"""Dataset variants: the full mix, or sums of separated stems, as one or more channels.

A variant names the separator whose stems it needs and how to mix them::

    normal             separator: none    channels: [[mix]]
    hpss_harmonic      separator: hpss    channels: [[harmonic]]
    demucs_percussive  separator: demucs  channels: [[drums, bass]]
    hpss_pair          separator: hpss    channels: [[harmonic], [percussive]]   (two-branch)
    oracle_percussive  separator: oracle  channels: [[drums, bass]]   (the generator's true stems)

Separation runs in its own stage, once per track and separator; switching between variants
of one separator only re-mixes stems (a sum), so it never re-runs separation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from genrelab.config import ConfigError
from genrelab.io import load_audio

__all__ = ["VariantSettings", "SEPARATOR_STEMS", "load_variant", "stems_root", "separation_key", "separate_dataset"]

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


def separation_key(separator: str, settings: dict | None) -> str:
    """Folder name of one separator's stems under given settings, e.g. ``hpss-1a2b3c4d``.

    The name is a hash of the settings (not random, not a time), so that stems computed under
    other settings are never mistaken for these, and switching back finds them again.
    """
    import hashlib
    import json

    blob = json.dumps(settings or {}, sort_keys=True, default=str).encode()
    return f"{separator}-{hashlib.sha1(blob).hexdigest()[:8]}"


def stems_root(variant: VariantSettings, *, dataset_dir: Path, separated_dir: Path,
               separation: dict | None = None) -> Path:
    """Folder holding ``<track_id>/<stem>.flac`` for this variant's separator.

    Parameters
    ----------
    variant : VariantSettings
    dataset_dir : Path
        Output of the prepare stage (holds the true stems for ``oracle``).
    separated_dir : Path
        Output of the separate stage.
    separation : dict, optional
        The ``separation`` section of the params (selects the settings' folder).
    """
    if variant.separator == "oracle":
        return Path(dataset_dir) / "stems"
    settings = (separation or {}).get(variant.separator, {})
    return Path(separated_dir) / separation_key(variant.separator, settings)


def separate_dataset(index: pd.DataFrame, *, separator: str, settings: dict, dataset_dir: Path,
                     separated_dir: Path, sample_rate: int, progress: bool = True) -> dict:
    """Separate every track once with ``separator``; resume where an earlier run stopped.

    Parameters
    ----------
    index : pd.DataFrame
        Dataset index.
    separator : {'none', 'oracle', 'hpss', 'demucs'}
        ``none`` and ``oracle`` need no computation.
    settings : dict
        The separator's settings (``separation.<separator>``).
    dataset_dir, separated_dir : Path
        Output of the prepare stage; this stage's (persistent) output folder.
    sample_rate : int
        Rate the stems are written at (Hz).

    Returns
    -------
    summary : dict
        Counts of computed, skipped (already done) and failed tracks.
    """
    from genrelab.datasets import resolve_path

    separated_dir = Path(separated_dir)
    separated_dir.mkdir(parents=True, exist_ok=True)
    if separator in ("none", "oracle"):
        return {"n_computed": 0, "n_skipped": 0, "n_failed": 0}
    from genrelab.separation import make_separator, separate_tracks

    out = separated_dir / separation_key(separator, settings)
    sep = make_separator(separator, **settings)
    tracks = [(str(t), resolve_path(dataset_dir, p)) for t, p in zip(index["track_id"], index["path"])]
    table = separate_tracks(tracks, out, sep, sr=sample_rate, progress=progress)
    per_track = table.groupby("track_id")["status"].first()
    return {"n_computed": int((per_track == "computed").sum()), "n_skipped": int((per_track == "skipped").sum()),
            "n_failed": int(per_track.str.startswith("failed").sum())}


def load_variant(track: pd.Series, variant: VariantSettings, *, dataset_dir: Path, separated_dir: Path,
                 sr: int, separation: dict | None = None) -> np.ndarray:
    """Audio of one track in this variant.

    Parameters
    ----------
    track : pd.Series
        A row of the dataset index (``track_id``, ``path``).
    variant : VariantSettings
    dataset_dir, separated_dir : Path
        Outputs of the prepare and separate stages.
    sr : int
        Sample rate in Hz.
    separation : dict, optional
        The ``separation`` params section (which settings' stems to read).

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
            else:
                root = stems_root(variant, dataset_dir=dataset_dir, separated_dir=separated_dir,
                                  separation=separation)
                path = root / str(track["track_id"]) / f"{name}.flac"
                if not path.is_file():
                    raise FileNotFoundError(f"{path}: stem {name!r} of track {track['track_id']} is missing; "
                                            f"re-run the 'separate' stage (dvc repro separate)")
            cache[name] = load_audio(path, sr=sr, mono=True)[0]
        return cache[name]

    channels = []
    for ch in variant.channels:
        parts = [stem(s) for s in ch]
        n = min(len(p) for p in parts)
        channels.append(np.sum([p[:n] for p in parts], axis=0))
    n = min(len(c) for c in channels)
    return np.stack([c[:n] for c in channels]).astype(np.float32)
