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
    summary: dict = {"n_computed": int((per_track == "computed").sum()),
                     "n_skipped": int((per_track == "skipped").sum()),
                     "n_failed": int(per_track.str.startswith("failed").sum())}
    if (Path(dataset_dir) / "stems").is_dir():
        summary["quality"] = separation_quality(index, separator=separator, dataset_dir=Path(dataset_dir),
                                                stems_dir=out, sample_rate=sample_rate, progress=progress)
    return summary


SEPARATED_PARTS: dict[str, dict[str, tuple[str, ...]]] = {
    "hpss": {"harmonic": ("harmonic",), "percussive": ("percussive",)},
    "demucs": {"harmonic": ("vocals", "other"), "percussive": ("drums", "bass")},
}
"""How each separator's stems estimate the harmonic (vocals + other) and percussive
(drums + bass) parts of a track."""

TRUE_PARTS = {"harmonic": ("vocals", "other"), "percussive": ("drums", "bass")}


def separation_quality(index: pd.DataFrame, *, separator: str, dataset_dir: Path, stems_dir: Path,
                       sample_rate: int, progress: bool = True) -> dict:
    """SDR and SI-SDR of the separated harmonic and percussive parts against the true stems.

    Only for datasets that know their true stems (``dataset_dir/stems/<track_id>/<stem>.flac``,
    the built-in synthetic one): the true harmonic part is vocals + other, the percussive part
    drums + bass.

    Returns
    -------
    quality : dict
        ``{part: {"sdr_db_mean", "sdr_db_median", "si_sdr_db_mean", "si_sdr_db_median"}}`` and
        ``n_tracks``; numbers only.
    """
    from tqdm.auto import tqdm

    from genrelab.separation.quality import sdr, si_sdr

    def mix(folder: Path, stems: tuple[str, ...]) -> np.ndarray:
        parts = [load_audio(folder / f"{s}.flac", sr=sample_rate)[0] for s in stems]
        n = min(len(p) for p in parts)
        return np.sum([p[:n] for p in parts], axis=0)

    scores: dict[str, dict[str, list[float]]] = {p: {"sdr": [], "si_sdr": []} for p in TRUE_PARTS}
    for track_id in tqdm(index["track_id"].astype(str), desc="separation quality", disable=not progress):
        truth_dir, est_dir = Path(dataset_dir) / "stems" / track_id, Path(stems_dir) / track_id
        if not (est_dir / "done.json").is_file() or not truth_dir.is_dir():
            continue
        for part, true_stems in TRUE_PARTS.items():
            ref, est = mix(truth_dir, true_stems), mix(est_dir, SEPARATED_PARTS[separator][part])
            n = min(len(ref), len(est))
            scores[part]["sdr"].append(sdr(est[:n], ref[:n]))
            scores[part]["si_sdr"].append(si_sdr(est[:n], ref[:n]))
    out: dict = {"n_tracks": len(scores["harmonic"]["sdr"])}
    for part, d in scores.items():
        out[part] = {}
        for key, values in d.items():
            v = np.asarray(values, dtype=float)
            v = v[np.isfinite(v)]
            if v.size:  # metrics hold numbers only: no NaN for an empty set
                out[part][f"{key}_db_mean"] = float(v.mean())
                out[part][f"{key}_db_median"] = float(np.median(v))
    return out


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
