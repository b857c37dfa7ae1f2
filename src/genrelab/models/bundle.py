"""Model bundles: a folder with everything needed to predict without the training data.

A bundle holds one fitted model per seed (``seed_<k>/``), or, for a k-fold run with
``split.fold=all``, one per fold and seed (``fold_<f>/seed_<k>/``); ``bundle.json`` with the
model name, the label list, its members, the feature, variant, slicing, audio and separation
settings it was trained with and its training card (:mod:`genrelab.models.card`); and
``novelty/``, what its training inputs looked like (:mod:`genrelab.models.novelty`; ``.npy`` and
JSON, no pickle).

What ships is the ensemble of every member: ``predict_proba`` averages their probabilities
(what ``genrelab predict`` and the demo use), ``predict`` takes the members' majority class.
The evaluate stage scores this very ensemble (per fold: the ensemble of that fold's seeds).
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

__all__ = ["BUNDLE_SECTIONS", "Bundle", "bundle_members", "combine_members", "load_bundle", "UntrustedBundleError", "PICKLE_SUFFIXES"]

BUNDLE_SECTIONS = ("features", "variant", "slicing", "audio", "separation", "model", "models")


def bundle_members(meta: dict) -> list[dict]:
    """``[{'path': 'fold_0/seed_1', 'fold': 0, 'seed': 1}, ...]`` of a ``bundle.json`` (``fold`` None
    outside ``split.fold=all``); bundles written before members were listed have one per seed."""
    if meta.get("members"):
        return [dict(m) for m in meta["members"]]
    return [{"path": f"seed_{s}", "fold": None, "seed": int(s)} for s in meta["seeds"]]


@dataclass
class Bundle:
    """A loaded bundle: its description and its fitted models, by member path (``seed_0``, ``fold_2/seed_0``)."""

    folder: Path
    meta: dict
    models: dict[str, Any]

    @property
    def labels(self) -> list[str]:
        return list(self.meta["labels"])

    @functools.cached_property
    def novelty(self):
        """The out-of-distribution detector (:mod:`genrelab.models.novelty`), or ``None`` if the bundle has none."""
        from genrelab.models.novelty import load_novelty

        return load_novelty(self.folder)

    @property
    def folds(self) -> list[int | None]:
        """The folds of a ``split.fold=all`` bundle, ``[None]`` otherwise."""
        return list(dict.fromkeys(m["fold"] for m in bundle_members(self.meta)))

    def members(self, *, fold: int | None = None, seed: int | None = None) -> dict[str, Any]:
        """Models of one fold and/or one seed (all of them by default)."""
        return {m["path"]: self.models[m["path"]] for m in bundle_members(self.meta)
                if (fold is None or m["fold"] == fold) and (seed is None or m["seed"] == seed)}

    def member_outputs(self, fs: FeatureSet, *, fold: int | None = None,
                       seed: int | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Each member's ``(predict_proba, predict)`` on ``fs`` (each model run once)."""
        out = {}
        for path, model in self.members(fold=fold, seed=seed).items():
            proba = model.predict_proba(fs)
            out[path] = (proba, model.predict(fs, proba=proba))
        return out

    def predict_proba(self, fs: FeatureSet, *, fold: int | None = None, seed: int | None = None) -> np.ndarray:
        """Slice probabilities (n_slices, n_classes): the mean over the members (of ``fold``/``seed``)."""
        return np.mean([m.predict_proba(fs) for m in self.members(fold=fold, seed=seed).values()], axis=0)

    def predict(self, fs: FeatureSet, *, fold: int | None = None, seed: int | None = None) -> np.ndarray:
        """Slice classes (n_slices,): see :func:`combine_members`."""
        return combine_members(list(self.member_outputs(fs, fold=fold, seed=seed).values()))[1]


def combine_members(outputs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The ensemble of members' ``(proba, pred)``: mean probability, and the majority of the members'
    own classes (ties to the higher mean probability; a single member's classes as they are).

    Parameters
    ----------
    outputs : list of (np.ndarray [shape=(n_slices, n_classes)], np.ndarray [shape=(n_slices,)])

    Returns
    -------
    proba : np.ndarray [shape=(n_slices, n_classes)]
    pred : np.ndarray [shape=(n_slices,)], int64
    """
    proba = np.mean([p for p, _ in outputs], axis=0)
    if len(outputs) == 1:
        return proba, np.asarray(outputs[0][1], dtype=np.int64)
    votes = np.zeros_like(proba)
    for _, pred in outputs:
        np.add.at(votes, (np.arange(len(votes)), pred), 1.0)
    return proba, np.argmax(votes + 1e-6 * proba, axis=1).astype(np.int64)


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
    models = {m["path"]: load_model(meta["model"], folder / m["path"]) for m in bundle_members(meta)}
    return Bundle(folder=folder, meta=meta, models=models)
