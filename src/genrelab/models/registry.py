"""Model registry: every classifier, classical or deep, behind one interface.

``MODELS`` maps the ``model.name`` choice to a :class:`ModelSpec`: which input it reads
(``vector`` = the summary features ``X``; ``frames`` = the time-frequency slices ``S``), its
settings dataclass, and a builder. Every built model has

* ``fit(train, valid) -> self`` on :class:`genrelab.features.FeatureSet` objects,
* ``predict_proba(features) -> np.ndarray [shape=(n_slices, n_classes)]``,
* ``predict(features, *, proba=None) -> np.ndarray [shape=(n_slices,)]``: the model's own class of each slice
  (an SVM's SVC decision, not the argmax of its calibrated probabilities),
* ``save(folder)`` and the spec's ``load(folder)``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genrelab.config import from_mapping, require_choice
from genrelab.models.classical import CLASSICAL_SETTINGS, build_sklearn, load_sklearn
from genrelab.models.frames import FRAME_MODELS, DeepSettings, HMMSettings, build_frame_model, load_frame_model
from genrelab.models.heads import EssentiaHeadSettings, build_head, load_head

__all__ = ["ModelSpec", "MODELS", "register", "build_model", "load_model", "model_input", "model_pickles",
           "model_settings"]


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry.

    Attributes
    ----------
    name : str
    input : {'vector', 'frames'}
        Which features the model reads.
    settings : type
        Dataclass of the model's settings (the ``model`` section minus ``name``).
    build : callable
        ``build(settings, *, n_classes, input_shape, seed, device) -> model``; heavy imports
        (torch models, hmmlearn) happen inside it, so the registry itself stays cheap.
    load : callable
        ``load(folder) -> model``.
    pickles : tuple of str
        Files in the model's folder that ``load`` unpickles (loading one can run arbitrary
        code): :func:`genrelab.models.load_bundle` checks exactly these before loading.
    """

    name: str
    input: str
    settings: type
    build: Callable[..., Any]
    load: Callable[..., Any]
    pickles: tuple[str, ...] = ()


MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to :data:`MODELS` (names are unique)."""
    if spec.name in MODELS:
        raise ValueError(f"model {spec.name!r} is registered twice")
    MODELS[spec.name] = spec
    return spec


def _split_settings(settings: dict[str, Any]) -> tuple[ModelSpec, Any]:
    name = settings.get("name")
    require_choice("model.name", name, MODELS)
    spec = MODELS[name]
    rest = {k: v for k, v in settings.items() if k != "name"}
    return spec, from_mapping(spec.settings, rest, section="model")


def model_settings(settings: dict[str, Any]) -> Any:
    """Validate the ``model`` section: the choice, then that model's settings dataclass."""
    return _split_settings(settings)[1]


def build_model(settings: dict[str, Any], *, n_classes: int, input_shape: tuple[int, ...], seed: int,
                device: str = "auto"):
    """Build the model named ``settings['name']`` (validated) ready to ``fit``.

    Parameters
    ----------
    settings : dict
        The ``model`` section of ``params.yaml``.
    n_classes : int
        Number of genres.
    input_shape : tuple of int
        Shape of one example: ``(n_features,)`` for vector models, ``(n_bins, n_frames)`` or
        ``(n_channels, n_bins, n_frames)`` for frame models.
    seed : int
        Seed of every random choice in the model and its training.
    device : str
        ``'auto'`` (CUDA when present), ``'cpu'`` or ``'cuda'``; used by torch models.
    """
    spec, typed = _split_settings(settings)
    return spec.build(typed, n_classes=n_classes, input_shape=tuple(input_shape), seed=seed,
                                 device=device)


def model_input(settings: dict[str, Any]) -> str:
    """``'vector'`` or ``'frames'``: which features the configured model reads."""
    spec, _ = _split_settings(settings)
    return spec.input


def model_pickles(name: str) -> tuple[str, ...]:
    """Files (relative to a model's folder) that loading model ``name`` unpickles."""
    require_choice("model.name", name, MODELS)
    return MODELS[name].pickles


def load_model(name: str, folder: str | Path):
    """Load a model saved by its ``save(folder)``."""
    require_choice("model.name", name, MODELS)
    return MODELS[name].load(Path(folder))


for _name, _settings in CLASSICAL_SETTINGS.items():
    register(ModelSpec(_name, "vector", _settings, functools.partial(build_sklearn, name=_name), load_sklearn,
                       pickles=("model.joblib",)))
for _name in FRAME_MODELS:
    register(ModelSpec(_name, "frames", HMMSettings if _name == "hmm" else DeepSettings,
                       functools.partial(build_frame_model, name=_name), load_frame_model))
register(ModelSpec("essentia_head", "vector", EssentiaHeadSettings, build_head, load_head))
