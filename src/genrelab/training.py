"""Training and evaluating model bundles.

A bundle is a folder that holds everything needed to predict without the training data:
one fitted model per seed (``seed_<k>/``), and ``bundle.json`` with the model name, the label
list, and the feature, variant, slicing, audio and separation settings it was trained with.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genrelab.config import ConfigError, from_mapping
from genrelab.evaluate import evaluate
from genrelab.features import FeatureSet, load_feature_split
from genrelab.io import atomic_dir, read_json, write_json
from genrelab.models import build_model, load_model, model_input

__all__ = ["TrainSettings", "train_bundle", "Bundle", "load_bundle", "evaluate_bundle", "UntrustedBundleError"]

BUNDLE_SECTIONS = ("features", "variant", "slicing", "audio", "separation", "model", "models")


@dataclass(frozen=True)
class TrainSettings:
    """Settings of the ``train`` section.

    Attributes
    ----------
    seeds : list of int
        One model is trained per seed; metrics give mean, std and best over seeds.
    device : {'auto', 'cpu', 'cuda'}
        Where torch models train (``auto``: CUDA when present).
    """

    seeds: tuple = (0,)
    device: str = "auto"

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ConfigError("train.seeds: needs at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"train.seeds: seeds must be distinct, got {list(self.seeds)}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"train.device: unknown choice {self.device!r}; valid choices: auto, cpu, cuda")


def _input_shape(kind: str, fs: FeatureSet) -> tuple[int, ...]:
    if kind == "vector":
        return (fs.X.shape[1],)
    if fs.S is None:
        raise ConfigError(f"model reads frames but features {fs.info['features'].get('name')!r} make none; "
                          "use features=mel or features=mfcc")
    return tuple(fs.S.shape[1:])


def train_bundle(params: dict[str, Any], features_dir: str | Path, out_dir: str | Path, *,
                 progress: bool = True) -> dict[str, Any]:
    """Fit one model per seed on the train split and save them as a bundle.

    Parameters
    ----------
    params : dict
        The composed parameters (``model``, ``train`` and the feature-related sections).
    features_dir : path
        Output of the features stage.
    out_dir : path
        Bundle folder, replaced atomically.

    Returns
    -------
    report : dict
        Training seconds and the models' own numbers (numbers only).
    """
    settings = from_mapping(TrainSettings, params.get("train", {}), section="train")
    kind = model_input(params["model"])
    train = load_feature_split(features_dir, "train")
    valid = load_feature_split(features_dir, "valid")
    labels = list(train.info["labels"])
    if len(train.meta) == 0:
        raise ConfigError("train: the train split holds no slices")
    report: dict[str, Any] = {"n_train_slices": int(len(train.meta)), "n_valid_slices": int(len(valid.meta))}
    seconds = []
    with atomic_dir(out_dir) as tmp:
        for seed in settings.seeds:
            model = build_model(params["model"], n_classes=len(labels), input_shape=_input_shape(kind, train),
                                seed=int(seed), device=settings.device)
            t0 = time.perf_counter()
            model.fit(train, valid)
            seconds.append(time.perf_counter() - t0)
            model.save(tmp / f"seed_{seed}")
            for key, value in getattr(model, "report", {}).items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    report.setdefault(key, float(value))
        write_json(tmp / "bundle.json", {
            "format": 1, "model": params["model"]["name"], "input": kind, "labels": labels,
            "seeds": list(settings.seeds),
            "split_method": train.info.get("split_method"),
            "params": {k: params[k] for k in BUNDLE_SECTIONS if k in params},
            "feature_names": train.info.get("feature_names"),
        })
    report["train_seconds_per_seed"] = float(np.mean(seconds))
    return report


@dataclass
class Bundle:
    """A loaded bundle: its description and one fitted model per seed."""

    folder: Path
    meta: dict
    models: dict[int, Any]

    @property
    def labels(self) -> list[str]:
        return list(self.meta["labels"])

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


def evaluate_bundle(bundle: Bundle, features_dir: str | Path, *, split: str = "test", n_boot: int = 1000,
                    seed: int = 0) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Evaluate every seed's model of a bundle on one split.

    Returns
    -------
    metrics : dict
        Means over seeds of every number of :func:`genrelab.evaluate.evaluate`, plus
        ``over_seeds`` (std and best of slice and track accuracy) when there are several seeds.
        Nested under ``leaky`` when the split was leaky.
    slices, tracks : pd.DataFrame
        Predictions of the first seed's model.
    """
    fs = load_feature_split(features_dir, split)
    if len(fs.meta) == 0:
        raise ConfigError(f"evaluate: the {split} split holds no slices")
    leaky = bundle.meta.get("split_method") == "leaky"
    per_seed = []
    first = None
    for s, model in bundle.models.items():
        m, slices, tracks = evaluate(model.predict_proba(fs), fs.y, fs.track_id, bundle.labels, leaky=False,
                                     n_boot=n_boot, seed=seed)
        per_seed.append(m)
        if first is None:
            first = (slices, tracks)
    metrics = _mean_dicts(per_seed)
    if len(per_seed) > 1:
        track = np.array([m["track_mean"]["accuracy"] for m in per_seed])
        sl = np.array([m["slice"]["accuracy"] for m in per_seed])
        metrics["over_seeds"] = {"n_seeds": len(per_seed),
                                 "track_accuracy_std": float(track.std(ddof=1)), "track_accuracy_best": float(track.max()),
                                 "slice_accuracy_std": float(sl.std(ddof=1)), "slice_accuracy_best": float(sl.max())}
    if leaky:
        metrics = {"leaky": metrics}
    assert first is not None
    return metrics, first[0], first[1]


def _mean_dicts(dicts: list[dict]) -> dict:
    out: dict = {}
    for key, value in dicts[0].items():
        if isinstance(value, dict):
            out[key] = _mean_dicts([d[key] for d in dicts])
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            out[key] = int(value)
        else:
            out[key] = float(np.mean([d[key] for d in dicts]))
    return out
