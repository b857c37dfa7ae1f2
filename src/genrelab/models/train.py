"""The train stage: fit the configured model, one per seed, on the train split; save a bundle."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genrelab.config import ConfigError, from_mapping
from genrelab.features import FeatureSet, load_feature_split
from genrelab.io import atomic_dir, write_json
from genrelab.models.bundle import BUNDLE_SECTIONS
from genrelab.models.card import training_card
from genrelab.models.novelty import NOVELTY_FOLDER, FrameSummary, TooFewTracksError, fit_novelty
from genrelab.models.registry import build_model, model_input

__all__ = ["TrainStageSettings", "train_bundle"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainStageSettings:
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


def _fit_novelty(params: dict[str, Any], train: FeatureSet, valid: FeatureSet, *, seed: int):
    """The out-of-distribution detector of the bundle, fitted on the train split (see :mod:`.novelty`)."""
    frames = FrameSummary.for_features(params.get("features", {}), (params.get("audio") or {}).get("sample_rate"))
    if frames is not None and (train.S is None or valid.S is None):
        frames = None
    has_valid = len(valid.meta) > 0
    return fit_novelty(train.X, train.track_id, S=train.S if frames else None, frames=frames, seed=seed,
                       valid=(valid.X, valid.S if frames else None, valid.track_id) if has_valid else None)


def _training_card(params: dict[str, Any], features_dir: str | Path, train: FeatureSet, valid: FeatureSet,
                   labels: list[str], pretrained: dict | None) -> dict[str, Any]:
    test = load_feature_split(features_dir, "test")
    parts = {"train": train, "valid": valid, "test": test}
    split = dict(params.get("split") or {})
    split["method"] = train.info.get("split_method") or split.get("method")  # the one used ('auto' resolved)
    return training_card({**params, "split": split}, tracks={k: int(fs.meta["track_id"].nunique()) for k, fs in parts.items()},
                         slices={k: int(len(fs.meta)) for k, fs in parts.items()}, labels=labels,
                         pretrained=pretrained)


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
    settings = from_mapping(TrainStageSettings, params.get("train", {}), section="train")
    kind = model_input(params["model"])
    train = load_feature_split(features_dir, "train")
    valid = load_feature_split(features_dir, "valid")
    labels = list(train.info["labels"])
    if len(train.meta) == 0:
        raise ConfigError("train: the train split holds no slices")
    report: dict[str, Any] = {"n_train_slices": int(len(train.meta)), "n_valid_slices": int(len(valid.meta))}
    seconds = []
    pretrained = None
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
            pretrained = getattr(model, "pretrained", None)
        novelty = "a pretrained head: no statistics of its own training data" if pretrained else "fitted"
        if pretrained is None:
            try:
                _fit_novelty(params, train, valid, seed=int(settings.seeds[0])).save(tmp / NOVELTY_FOLDER)
            except TooFewTracksError as exc:
                novelty = str(exc)
                log.warning("no out-of-distribution detector: %s", exc)
        write_json(tmp / "bundle.json", {
            "format": 1, "model": params["model"]["name"], "input": kind, "labels": labels,
            "seeds": list(settings.seeds),
            "split_method": train.info.get("split_method"),
            "params": {k: params[k] for k in BUNDLE_SECTIONS if k in params},
            "feature_names": train.info.get("feature_names"),
            "card": _training_card(params, features_dir, train, valid, labels, pretrained),
            "novelty": novelty,
        })
    report["train_seconds_per_seed"] = float(np.mean(seconds))
    return report
