"""Deep and sequence models by name, as configured in ``conf/model/<name>.yaml``.

Every entry of :data:`DEEP_MODELS` is a factory
``(params, *, n_classes, input_shape, seed, device) -> estimator`` returning an object with
``fit(S, y, *, S_valid=None, y_valid=None)``, ``predict_proba(S)``, ``predict(S)``,
``save(dir)`` and a classmethod ``load(dir)``.

``params`` is the model's config section without its ``name``:

- torch models (``cnn``, ``crnn1d``, ``crnn2d``, ``rnn``, ``two_branch``): up to three
  sub-sections, ``net`` (network hyperparameters, see :mod:`genrelab.deep.nets`),
  ``train`` (:class:`~genrelab.deep.loop.TrainSettings` fields) and ``augment``
  (:class:`~genrelab.deep.augment.Augmenter` settings, or null);
- ``hmm``: the options of :class:`~genrelab.deep.hmm.GaussianHMMClassifier`, flat.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from genrelab.deep.estimator import TorchClassifier
from genrelab.deep.hmm import GaussianHMMClassifier
from genrelab.io import read_json

__all__ = ["DEEP_MODELS", "make_deep_model", "load_deep_model"]

Factory = Callable[..., Any]

_TORCH_SECTIONS = ("net", "train", "augment")


def _strip_name(params: Mapping[str, Any] | None, name: str) -> dict[str, Any]:
    params = dict(params or {})
    given = params.pop("name", name)
    if given != name:
        raise ValueError(f"params are for model {given!r}, not {name!r}")
    return params


def _torch_factory(net: str) -> Factory:
    def factory(
        params: Mapping[str, Any] | None, *, n_classes: int, input_shape: Sequence[int], seed: int, device: str = "auto"
    ) -> TorchClassifier:
        p = _strip_name(params, net)
        unknown = sorted(set(p) - set(_TORCH_SECTIONS))
        if unknown:
            raise ValueError(f"{net}: unknown config sections {unknown}; valid: {list(_TORCH_SECTIONS)}")
        return TorchClassifier(
            net, n_classes=n_classes, input_shape=input_shape, net_params=p.get("net"), train=p.get("train"),
            augment=p.get("augment"), device=device, seed=seed,
        )

    factory.__name__ = f"make_{net}"
    factory.__doc__ = f"Build a :class:`TorchClassifier` with network {net!r} from its config section."
    return factory


def _hmm_factory(
    params: Mapping[str, Any] | None, *, n_classes: int, input_shape: Sequence[int], seed: int, device: str = "auto"
) -> GaussianHMMClassifier:
    """Build a :class:`GaussianHMMClassifier` (``device`` is ignored: hmmlearn runs on the CPU)."""
    p = _strip_name(params, "hmm")
    if len(tuple(input_shape)) != 2:
        raise ValueError(f"hmm: input_shape must be (n_mfcc, n_frames), got {tuple(input_shape)}")
    valid = sorted(set(inspect.signature(GaussianHMMClassifier).parameters) - {"seed", "n_classes"})
    unknown = sorted(set(p) - set(valid))
    if unknown:
        raise ValueError(f"hmm: unknown options {unknown}; valid: {valid}")
    return GaussianHMMClassifier(**p, seed=seed, n_classes=n_classes)


DEEP_MODELS: dict[str, Factory] = {
    "cnn": _torch_factory("cnn"),
    "crnn1d": _torch_factory("crnn1d"),
    "crnn2d": _torch_factory("crnn2d"),
    "rnn": _torch_factory("rnn"),
    "two_branch": _torch_factory("two_branch"),
    "hmm": _hmm_factory,
}
"""Factories ``(params, *, n_classes, input_shape, seed, device) -> estimator`` by name."""

_LOADERS = {
    "genrelab.deep.TorchClassifier": TorchClassifier,
    "genrelab.deep.GaussianHMMClassifier": GaussianHMMClassifier,
}


def make_deep_model(
    name: str, params: Mapping[str, Any] | None = None, *, n_classes: int, input_shape: Sequence[int], seed: int,
    device: str = "auto",
) -> Any:
    """Build the deep or sequence model ``name`` from its config section.

    Parameters
    ----------
    name : str
        A key of :data:`DEEP_MODELS`.
    params : mapping, optional
        The model's config section (a ``name`` key, if present, must equal ``name``).
    n_classes : int > 1
        Number of classes.
    input_shape : tuple of int
        Shape of one slice: ``(n_bins, n_frames)``, or ``(2, n_bins, n_frames)`` for
        ``two_branch``.
    seed : int
        Seed for everything random in the model.
    device : {'auto', 'cpu', 'cuda', 'cuda:N'}
        Torch device (ignored by ``hmm``).

    Returns
    -------
    estimator
        Unfitted; see the module doc for its interface.

    Raises
    ------
    ValueError
        On an unknown model name (listing the valid choices) or invalid params.
    """
    if name not in DEEP_MODELS:
        raise ValueError(f"unknown deep model {name!r}; valid choices: {sorted(DEEP_MODELS)}")
    return DEEP_MODELS[name](params, n_classes=n_classes, input_shape=input_shape, seed=seed, device=device)


def load_deep_model(path: str | os.PathLike, *, device: str = "auto") -> Any:
    """Load any model saved by a :data:`DEEP_MODELS` estimator's ``save`` (by its ``config.json``)."""
    fmt = read_json(os.path.join(path, "config.json")).get("format")
    if fmt not in _LOADERS:
        raise ValueError(f"{path} does not hold a saved deep model (format={fmt!r}); known: {sorted(_LOADERS)}")
    return _LOADERS[fmt].load(path, device=device)
