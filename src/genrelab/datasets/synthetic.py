"""The built-in deterministic synthetic genre dataset as a registry entry."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from genrelab.config import from_mapping
from genrelab.io import write_text


def prepare_synthetic(settings: Mapping[str, Any], out_dir: Path, *, progress: bool = True) -> pd.DataFrame:
    """Generate the synthetic dataset (audio, true stems, index) into ``out_dir``.

    Parameters
    ----------
    settings : mapping
        Keys of :class:`genrelab.synth.SynthSettings` (``n_tracks_per_genre``, ``duration_s``,
        ``sample_rate``, ``tracks_per_artist``, ``seed``, ``genres``).
    out_dir : Path
        Output folder.

    Returns
    -------
    index : pd.DataFrame
    """
    from genrelab.synth import SynthSettings, generate_dataset

    synth = from_mapping(SynthSettings, settings, section="dataset")
    index = generate_dataset(out_dir, synth, progress=progress, write_stems=True)
    index = index.copy()
    index["official_split"] = ""
    write_text(out_dir / "index.csv", index.to_csv(index=False))
    return index
