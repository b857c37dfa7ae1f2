"""Dataset registry: every dataset is prepared into the same on-disk layout.

``prepare_dataset(settings, out_dir)`` writes ``out_dir/index.csv`` with the columns of
:data:`INDEX_COLUMNS` (one row per usable track; ``path`` relative to ``out_dir`` or absolute)
and returns it. Datasets that know the true stems of each track (the built-in synthetic one)
also write ``out_dir/stems/<track_id>/<stem>.flac``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from genrelab.config import ConfigError, require_choice

__all__ = ["INDEX_COLUMNS", "DATASETS", "DATASET_SETTINGS", "dataset_settings", "prepare_dataset", "read_index",
           "resolve_path"]

INDEX_COLUMNS = ("track_id", "genre", "artist", "path", "duration_s", "sample_rate", "official_split")

# name -> "module:function"; imported lazily so that a dataset's optional needs stay optional.
DATASETS: dict[str, str] = {
    "synthetic": "genrelab.datasets.synthetic:prepare_synthetic",
    "gtzan": "genrelab.datasets.gtzan:prepare_gtzan",
    "fma_small": "genrelab.datasets.fma:prepare_fma_small",
    "fma_medium": "genrelab.datasets.fma:prepare_fma_medium",
    "table": "genrelab.datasets.table:prepare_table",
    "embeddings": "genrelab.datasets.embeddings:prepare_embeddings",
}


DATASET_SETTINGS: dict[str, str] = {
    "synthetic": "genrelab.synth:SynthSettings",
    "gtzan": "genrelab.datasets.gtzan:GtzanSettings",
    "fma_small": "genrelab.datasets.fma:FmaSettings",
    "fma_medium": "genrelab.datasets.fma:FmaSettings",
    "table": "genrelab.datasets.table:TableSettings",
    "embeddings": "genrelab.datasets.embeddings:EmbeddingsSettings",
}
"""Dataset name -> ``"module:Class"`` of its settings (the ``dataset`` section minus ``name``)."""


def dataset_settings(settings: Mapping[str, Any]) -> Any:
    """Validate the ``dataset`` section (the choice, then that dataset's own settings).

    Returns
    -------
    settings : dataclass
        An instance of the :data:`DATASET_SETTINGS` class of ``settings['name']``.

    Raises
    ------
    ConfigError
        On an unknown dataset (listing the valid ones) or a bad setting (naming it).
    """
    from genrelab.config import from_mapping

    name = settings.get("name")
    require_choice("dataset.name", name, DATASETS)
    return from_mapping(_resolve(DATASET_SETTINGS[name]), {k: v for k, v in settings.items() if k != "name"},
                        section="dataset")


def _resolve(target: str) -> Callable[..., pd.DataFrame]:
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def prepare_dataset(settings: Mapping[str, Any], out_dir: str | Path, *, progress: bool = True) -> pd.DataFrame:
    """Prepare the dataset named ``settings['name']`` into ``out_dir``.

    Parameters
    ----------
    settings : mapping
        The ``dataset`` section of ``params.yaml``; ``name`` selects the entry of
        :data:`DATASETS`, the other keys are that dataset's own settings.
    out_dir : path
        Output folder (the stage's DVC output).

    Returns
    -------
    index : pd.DataFrame
        Columns :data:`INDEX_COLUMNS`.
    """
    name = settings.get("name")
    require_choice("dataset.name", name, DATASETS)
    rest = {k: v for k, v in settings.items() if k != "name"}
    index = _resolve(DATASETS[name])(rest, Path(out_dir), progress=progress)
    missing = [c for c in INDEX_COLUMNS if c not in index.columns]
    if missing:
        raise RuntimeError(f"dataset {name!r} wrote an index without columns {missing}")
    return index


def read_index(dataset_dir: str | Path) -> pd.DataFrame:
    """Read ``dataset_dir/index.csv`` (track ids as strings, empty splits as '')."""
    path = Path(dataset_dir) / "index.csv"
    if not path.is_file():
        raise ConfigError(f"{path}: dataset index not found; run the 'prepare' stage first (dvc repro prepare)")
    index = pd.read_csv(path, dtype={"track_id": str, "artist": str, "genre": str, "official_split": str},
                        keep_default_na=False)
    return index


def resolve_path(dataset_dir: str | Path, path: str) -> Path:
    """Absolute path of an index ``path`` entry (which may be relative to the dataset folder)."""
    p = Path(path)
    return p if p.is_absolute() else Path(dataset_dir) / p
