"""The train stage: fit the configured model, one per seed, on the train split; save a bundle.

Under ``split=kfold`` with ``split.fold=all`` it fits one model per fold and seed, each on its
fold's train split (early stopping on its fold's valid split), so that the evaluate stage can
predict every track with the models that held it out.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genrelab.config import ConfigError, from_mapping
from genrelab.features import FeatureSet, load_split_sets
from genrelab.io import atomic_dir, write_json
from genrelab.models.bundle import BUNDLE_SECTIONS
from genrelab.models.card import training_card
from genrelab.models.novelty import NOVELTY_FOLDER, FrameSummary, TooFewTracksError, fit_novelty
from genrelab.models.registry import build_model, model_input
from genrelab.splits import SplitSettings, read_split_table, split_folds

__all__ = ["TrainStageSettings", "train_bundle"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainStageSettings:
    """Settings of the ``train`` section.

    Attributes
    ----------
    seeds : list of int
        One model is trained per seed; the bundle is their ensemble, and metrics give the
        ensemble's scores with the per-seed mean and std beside them.
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
    if fs.S is None and (fs.info.get("slicing") or {}).get("whole"):
        raise ConfigError("model reads frames but slicing.whole=true makes one summary row per track (tracks differ "
                          "in length); use slicing.whole=false with features=mel or features=mfcc")
    if fs.S is None:
        raise ConfigError(f"model reads frames but features {fs.info['features'].get('name')!r} make none; "
                          "use features=mel or features=mfcc")
    return tuple(fs.S.shape[1:])


def _fit_novelty(params: dict[str, Any], train: FeatureSet, valid: FeatureSet, *, seed: int):
    """The out-of-distribution detector of the bundle, fitted on the train split (see :mod:`.novelty`)."""
    frames = FrameSummary.for_features(params.get("features", {}), (params.get("audio") or {}).get("sample_rate"))
    if frames is not None and (train.S is None or valid.S is None):
        frames = None
    has_valid = len(valid.meta) > 0
    return fit_novelty(train.X, train.track_id, S=train.S if frames else None, frames=frames, seed=seed,
                       valid=(valid.X, valid.S if frames else None, valid.track_id) if has_valid else None)


def _training_card(params: dict[str, Any], sets: dict[str, FeatureSet], labels: list[str],
                   pretrained: dict | None) -> dict[str, Any]:
    train = sets["train"]
    split = dict(params.get("split") or {})
    split["method"] = train.info.get("split_method") or split.get("method")  # the one used ('auto' resolved)
    return training_card({**params, "split": split},
                         tracks={k: int(fs.meta["track_id"].nunique()) for k, fs in sets.items()},
                         slices={k: len(fs.meta) for k, fs in sets.items()}, labels=labels,
                         pretrained=pretrained)


def _require_finite(fs: FeatureSet, name: str) -> None:
    """Refuse NaN/inf features, naming the tracks (the features stage skips such tracks, so these
    come from a features folder made elsewhere or by an older genrelab)."""
    bad = ~np.isfinite(fs.X).all(axis=1)
    if bad.any():
        tracks = sorted(set(map(str, np.asarray(fs.meta["track_id"])[bad])))
        raise ConfigError(f"train: {int(bad.sum())} {name} slices have NaN/inf features (tracks "
                          f"{', '.join(tracks[:5])}{' ...' if len(tracks) > 5 else ''}); re-run the 'features' stage")


def train_bundle(params: dict[str, Any], features_dir: str | Path, out_dir: str | Path, *,
                 split_table: str | Path | pd.DataFrame | None, progress: bool = True) -> dict[str, Any]:
    """Fit one model per seed (per fold and seed under ``split.fold=all``) and save them as a bundle.

    Parameters
    ----------
    params : dict
        The composed parameters (``model``, ``train``, ``split`` and the feature-related sections).
    features_dir : path
        Output of the features stage.
    out_dir : path
        Bundle folder, replaced atomically.
    split_table : path or pd.DataFrame
        ``data/split.csv``: which tracks of the features stage's set are train and valid, every
        slice's group (the unit inner validation is grouped by) and, under ``split.fold=all``,
        each track's fold. ``split.fractions`` and ``seed`` assign a leaky split's slices.

    Returns
    -------
    report : dict
        Training set sizes and the models' own numbers (numbers only; under ``fold=all`` the
        first fold's; timings go to the log).
    """
    settings = from_mapping(TrainStageSettings, params.get("train", {}), section="train")
    split = from_mapping(SplitSettings, params.get("split", {}), section="split")
    table = None if split_table is None else read_split_table(split_table)
    if table is None:  # the features stage's set holds every track: the table says which train
        raise ConfigError("train: needs the split table (--split data/split.csv) to pick the train tracks")
    folds = split_folds(table, split)
    kind = model_input(params["model"])
    report: dict[str, Any] = {}
    seconds = []
    members = []
    labels: list[str] = []
    info: dict = {}
    pretrained = None
    first: dict[str, FeatureSet] = {}
    with atomic_dir(out_dir) as tmp:
        for fold, fold_table in folds:
            sets = load_split_sets(features_dir, fold_table, fractions=split.fractions, seed=int(params.get("seed", 0)))
            train, valid = sets["train"], sets["valid"]
            labels, info = list(train.info["labels"]), train.info
            where = f" (fold {fold})" if fold is not None else ""
            if len(train.meta) == 0:
                raise ConfigError(f"train: the train split{where} holds no slices")
            for name, fs in (("train", train), ("valid", valid)):
                _require_finite(fs, f"{name}{where}")
            if fold in (None, 0):
                first = sets
                report.update({"n_train_tracks": int(train.meta["track_id"].nunique()),
                               "n_train_slices": len(train.meta), "n_valid_slices": len(valid.meta)})
            for seed in settings.seeds:
                model = build_model(params["model"], n_classes=len(labels), input_shape=_input_shape(kind, train),
                                    seed=int(seed), device=settings.device)
                t0 = time.perf_counter()
                model.fit(train, valid)
                seconds.append(time.perf_counter() - t0)
                path = f"seed_{seed}" if fold is None else f"fold_{fold}/seed_{seed}"
                model.save(tmp / path)
                members.append({"path": path, "fold": fold, "seed": int(seed)})
                for key, value in getattr(model, "report", {}).items():
                    if isinstance(value, bool) or not isinstance(value, (int, float)):
                        continue
                    if key.endswith("_seconds"):   # a timing: the log's, not a property of the experiment
                        log.info("%s (seed %s): %s = %.2f", params["model"]["name"], seed, key, value)
                    else:
                        report.setdefault(key, float(value))
                pretrained = getattr(model, "pretrained", None)
        # the out-of-distribution detector and the card describe the (first fold's) training data
        novelty = "a pretrained head: no statistics of its own training data" if pretrained else "fitted"
        if pretrained is None:
            try:
                _fit_novelty(params, first["train"], first["valid"], seed=int(settings.seeds[0])).save(
                    tmp / NOVELTY_FOLDER)
            except TooFewTracksError as exc:
                novelty = str(exc)
                log.warning("no out-of-distribution detector: %s", exc)
        write_json(tmp / "bundle.json", {
            "format": 1, "model": params["model"]["name"], "input": kind, "labels": labels,
            "seeds": list(settings.seeds), "members": members,
            "folds": [f for f, _ in folds] if split.all_folds else None,
            "split_method": info.get("split_method"),
            "params": {k: params[k] for k in BUNDLE_SECTIONS if k in params},
            "feature_names": info.get("feature_names"),
            "card": _training_card(params, first, labels, pretrained),
            "novelty": novelty,
        })
    log.info("trained %s: %.1f s per seed (%d seed%s)", params["model"]["name"], float(np.mean(seconds)),
             len(seconds), "" if len(seconds) == 1 else "s")   # a timing is no property of the experiment
    return report
