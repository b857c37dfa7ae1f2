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
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genrelab.features import FeatureSet
from genrelab.io import read_json
from genrelab.models.registry import load_model, model_pickles

__all__ = ["BUNDLE_SECTIONS", "Bundle", "bundle_members", "combine_members", "load_bundle", "UntrustedBundleError",
           "PICKLE_SUFFIXES", "repository_root", "untrusted_reason"]

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
    """A bundle holds pickled models and is not the train stage's own output in this repository."""


def repository_root() -> Path | None:
    """The repository genrelab itself runs from (an editable checkout: ``<root>/src/genrelab``), or None.

    Only this repository's ``data/`` is trusted; the working directory is never consulted, so
    running ``genrelab predict`` inside someone else's repository does not trust their files.
    """
    import genrelab

    root = Path(genrelab.__file__).resolve().parents[2]
    return root if (root / "dvc.yaml").is_file() and (root / "src" / "genrelab").is_dir() else None


def untrusted_reason(folder: str | Path, files: list[Path]) -> str | None:
    """Why the pickles ``files`` of bundle ``folder`` are not trusted, or None if they are.

    Trusted means: the bundle lies in ``data/`` of :func:`repository_root`, no symbolic link
    outside ``data/`` leads into it, and every file that will be unpickled resolves (links
    followed) to a file inside the bundle itself (or in the repository's own DVC cache, where
    DVC's link cache types point).

    Parameters
    ----------
    folder : path
        The bundle folder as given.
    files : list of Path
        The exact files that loading will unpickle (under ``folder``).
    """
    root = repository_root()
    if root is None:
        return ("genrelab does not run from a repository checkout (no dvc.yaml beside its src/), so no bundle "
                "folder is trusted")
    data = root / "data"
    real = Path(folder).resolve()
    if not real.is_relative_to(data):
        return f"it lies outside {data}, the train stage's output folder of the repository genrelab runs from"
    given = Path(os.path.abspath(folder))
    for part in [*reversed(given.parents), given]:
        link_outside = part.is_symlink() and not (part.parent.resolve() / part.name).is_relative_to(data)
        if link_outside and part.resolve().is_relative_to(data):
            return f"{part} is a symbolic link from outside {data} into it"
    cache = (root / ".dvc" / "cache").resolve()
    for f in files:
        target = f.resolve()
        if not (target.is_relative_to(real) or target.is_relative_to(cache)):
            return f"{f} is a symbolic link out of the bundle (to {target})"
    return None


_MEMBER_PATH = re.compile(r"(fold_[0-9]+/)?seed_[0-9]+")


def _bundle_meta(folder: Path) -> dict:
    """Read and check ``bundle.json`` (seeds and member paths name folders: only ``[fold_<k>/]seed_<k>``)."""
    from genrelab.config import ConfigError
    from genrelab.models.registry import MODELS

    try:
        meta = read_json(folder / "bundle.json")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{folder}/bundle.json: unreadable ({exc}); re-run the 'train' stage") from exc
    seeds = meta.get("seeds") if isinstance(meta, dict) else None
    if not isinstance(seeds, list) or not seeds or not all(type(s) is int for s in seeds):
        raise ConfigError(f"{folder}/bundle.json: 'seeds' must be a list of integers, got {seeds!r}")
    if meta.get("model") not in MODELS:
        raise ConfigError(f"{folder}/bundle.json: unknown model {meta.get('model')!r}; valid: {', '.join(MODELS)}")
    if not isinstance(meta.get("labels"), list):
        raise ConfigError(f"{folder}/bundle.json: 'labels' must be a list of genre names")
    members = meta.get("members")
    if members is not None and (not isinstance(members, list) or not all(
            isinstance(m, dict) and isinstance(m.get("path"), str) and _MEMBER_PATH.fullmatch(m["path"])
            for m in members)):  # member paths name folders: nothing may point outside the bundle
        raise ConfigError(f"{folder}/bundle.json: 'members' must list paths like seed_0 or fold_1/seed_0")
    return meta


def load_bundle(folder: str | Path, *, trust: bool = False) -> Bundle:
    """Load a bundle written by :func:`train_bundle` (see each model's ``load`` for safety notes).

    Parameters
    ----------
    folder : path
        The bundle folder.
    trust : bool
        Allow pickled models (scikit-learn ``model.joblib``) that are not the train stage's own
        output in this repository (see :func:`untrusted_reason`). Unpickling runs code chosen
        by whoever wrote the file, so only set it for bundles you made or trust. Bundles under
        ``data/`` of the repository genrelab runs from, and pickle-free bundles (torch weights
        loaded weights-only, npz), load without it.

    Raises
    ------
    FileNotFoundError
        If ``folder`` holds no ``bundle.json``.
    genrelab.config.ConfigError
        If ``bundle.json`` is unreadable or malformed.
    UntrustedBundleError
        If the bundle's model files are pickles, they are not trusted, and ``trust`` is false.
    """
    folder = Path(folder)
    if not (folder / "bundle.json").is_file():
        raise FileNotFoundError(f"{folder}: not a model bundle (no bundle.json); run the 'train' stage first")
    meta = _bundle_meta(folder)
    names = model_pickles(meta["model"])
    pickles = [folder / m["path"] / name for m in bundle_members(meta) for name in names]
    reason = None if trust or not pickles else untrusted_reason(folder, pickles)
    if reason is not None:
        raise UntrustedBundleError(
            f"{folder}: this bundle holds pickled models ({', '.join(sorted(set(names)))}) and {reason}; "
            "unpickling a file can run arbitrary code. Load it only if you made it or trust its source: pass "
            "trust=True (command line: --trust)")
    models = {m["path"]: load_model(meta["model"], folder / m["path"]) for m in bundle_members(meta)}
    return Bundle(folder=folder, meta=meta, models=models)
