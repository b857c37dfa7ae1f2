"""Model bundles: a folder with everything needed to predict without the training data.

A bundle holds one fitted model per seed (``seed_<k>/``), ``bundle.json`` with the model
name, the label list, the feature, variant, slicing, audio and separation settings it was
trained with and its training card (:mod:`genrelab.models.card`), and ``novelty/``, what its
training inputs looked like (:mod:`genrelab.models.novelty`; ``.npy`` and JSON, no pickle).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genrelab.features import FeatureSet
from genrelab.io import read_json
from genrelab.models.registry import load_model

__all__ = ["BUNDLE_SECTIONS", "Bundle", "load_bundle", "UntrustedBundleError", "PICKLE_SUFFIXES"]

BUNDLE_SECTIONS = ("features", "variant", "slicing", "audio", "separation", "model", "models")


@dataclass
class Bundle:
    """A loaded bundle: its description and one fitted model per seed."""

    folder: Path
    meta: dict
    models: dict[int, Any]

    @property
    def labels(self) -> list[str]:
        return list(self.meta["labels"])

    @functools.cached_property
    def novelty(self):
        """The out-of-distribution detector (:mod:`genrelab.models.novelty`), or ``None`` if the bundle has none."""
        from genrelab.models.novelty import load_novelty

        return load_novelty(self.folder)

    def predict_proba(self, fs: FeatureSet, seed: int | None = None) -> np.ndarray:
        """Slice probabilities (n_slices, n_classes); mean over seeds unless ``seed`` is given."""
        if seed is not None:
            return self.models[seed].predict_proba(fs)
        return np.mean([m.predict_proba(fs) for m in self.models.values()], axis=0)


PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")
"""Model files that are pickles: loading one can run arbitrary code."""


class UntrustedBundleError(PermissionError):
    """A bundle holds pickled models and lies outside this repository's ``data/`` folder."""


def _trusted_location(folder: Path) -> bool:
    """Whether ``folder`` lies under ``data/`` of this repository or of the DVC project in the cwd."""
    roots = {Path(__file__).resolve().parents[2], Path.cwd().resolve()}  # editable checkout; dvc repro's cwd
    real = folder.resolve()
    return any((r / "dvc.yaml").is_file() and real.is_relative_to(r / "data") for r in roots)


def load_bundle(folder: str | Path, *, trust: bool = False) -> Bundle:
    """Load a bundle written by :func:`train_bundle` (see each model's ``load`` for safety notes).

    Parameters
    ----------
    folder : path
        The bundle folder.
    trust : bool
        Allow pickled models (scikit-learn ``model.joblib``) from a folder outside this
        repository's ``data/``. Unpickling runs code chosen by whoever wrote the file, so only
        set it for bundles you made or trust. Bundles under ``data/`` (the train stage's own
        output) and pickle-free bundles (torch weights, npz) load without it.

    Raises
    ------
    FileNotFoundError
        If ``folder`` holds no ``bundle.json``.
    UntrustedBundleError
        If the bundle holds pickles, lies outside ``data/`` and ``trust`` is false.
    """
    folder = Path(folder)
    if not (folder / "bundle.json").is_file():
        raise FileNotFoundError(f"{folder}: not a model bundle (no bundle.json); run the 'train' stage first")
    pickles = sorted({p.name for p in folder.rglob("*") if p.suffix in PICKLE_SUFFIXES})
    if pickles and not trust and not _trusted_location(folder):
        raise UntrustedBundleError(
            f"{folder}: this bundle holds pickled models ({', '.join(pickles)}) and lies outside this "
            "repository's data/ folder; unpickling a file can run arbitrary code. Load it only if you made it or "
            "trust its source: pass trust=True (command line: --trust)")
    meta = read_json(folder / "bundle.json")
    models = {int(s): load_model(meta["model"], folder / f"seed_{s}") for s in meta["seeds"]}
    return Bundle(folder=folder, meta=meta, models=models)
