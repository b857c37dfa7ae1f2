"""Deep (torch) and HMM models on the time-frequency slices ``S`` (see :mod:`genrelab.deep`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genrelab.config import ConfigError, require_choice

__all__ = ["DeepSettings", "HMMSettings", "FrameModel", "FRAME_MODELS", "build_frame_model", "load_frame_model"]

FRAME_MODELS = ("cnn", "crnn1d", "crnn2d", "rnn", "two_branch", "hmm")
"""Models that read frames (the ``S`` arrays)."""


@dataclass(frozen=True)
class DeepSettings:
    """Settings of a torch model: ``net`` hyperparameters, ``train`` loop settings, ``augment``.

    Validated in depth by :mod:`genrelab.deep` (unknown hyperparameters and impossible values
    raise with the valid names).
    """

    net: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    augment: dict | None = None


@dataclass(frozen=True)
class HMMSettings:
    """Per-genre Gaussian HMMs on MFCC frame sequences (hmmlearn)."""

    n_components: int = 4
    covariance_type: str = "diag"
    n_iter: int = 20
    tol: float = 0.01
    min_covar: float = 0.001
    standardize: bool = True
    likelihood: str = "total"
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.n_components < 1 or self.n_iter < 1:
            raise ConfigError("model.n_components and model.n_iter must be >= 1")
        require_choice("model.covariance_type", self.covariance_type, ("diag", "full", "tied"))
        require_choice("model.likelihood", self.likelihood, ("total", "per_frame"))


@dataclass
class FrameModel:
    """Adapter: a :mod:`genrelab.deep` estimator on the ``S`` frames of feature sets.

    Training uses the valid split for early stopping (it is track-disjoint from train and test).
    """

    name: str
    estimator: Any
    report: dict = field(default_factory=dict)
    input: str = "frames"

    def fit(self, train, valid=None) -> FrameModel:
        has_valid = valid is not None and valid.S is not None and len(valid.meta) > 0
        self.estimator.fit(train.S, train.y, S_valid=valid.S if has_valid else None,
                           y_valid=valid.y if has_valid else None)
        result = getattr(self.estimator, "result_", None)
        if result is not None:
            for key, value in result.to_dict().items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.report[key] = float(value)
        return self

    def predict(self, features, *, proba: np.ndarray | None = None) -> np.ndarray:
        """Class of each slice, shape (n_slices,): the argmax of the model's probabilities
        (``proba``: its :meth:`predict_proba` of ``features``, when already computed)."""
        proba = self.predict_proba(features) if proba is None else proba
        return np.asarray(proba).argmax(axis=1).astype(np.int64)

    def predict_proba(self, features) -> np.ndarray:
        if features.S is None:
            raise ConfigError(f"model {self.name!r} reads frames; these features have none")
        return np.asarray(self.estimator.predict_proba(features.S), dtype=np.float64)

    def save(self, folder: str | Path) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        self.estimator.save(folder)
        from genrelab.io import write_json

        write_json(Path(folder) / "adapter.json", {"name": self.name})


def build_frame_model(settings: Any, *, n_classes: int, input_shape: tuple[int, ...], seed: int,
                      device: str = "auto", name: str) -> FrameModel:
    """Build the deep or HMM model ``name`` (its hyperparameters validated by :mod:`genrelab.deep`)."""
    from dataclasses import asdict

    from genrelab.deep.registry import make_deep_model

    params = {k: v for k, v in asdict(settings).items() if v is not None}
    try:
        est = make_deep_model(name, params, n_classes=n_classes, input_shape=input_shape, seed=seed, device=device)
    except ValueError as exc:
        raise ConfigError(f"model: {exc}") from exc
    return FrameModel(name=name, estimator=est)


def load_frame_model(folder: Path) -> FrameModel:
    """Load a saved deep/HMM model (torch weights are loaded weights-only; HMMs from npz)."""
    from genrelab.deep.registry import load_deep_model
    from genrelab.io import read_json

    name = read_json(Path(folder) / "adapter.json")["name"]
    return FrameModel(name=name, estimator=load_deep_model(folder))
