"""A scikit-learn-like wrapper around the networks, the training loop and persistence.

:class:`TorchClassifier` is the public entry point for the torch models: construct it with a
network name, hyperparameters and training settings (all validated at construction, so a
typo fails at start-up), then ``fit`` / ``predict_proba`` / ``save`` / ``load``.

Saved models are a folder with two files, written atomically:

- ``weights.pt``: the network's ``state_dict`` (CPU tensors), written by ``torch.save`` and
  read back with ``torch.load(..., weights_only=True)``, which unpickles tensors and plain
  containers only, never arbitrary objects;
- ``config.json``: everything needed to rebuild the network (name, ``n_classes``,
  ``input_shape``, hyperparameters), plus the training settings, seed, augmentation and the
  :class:`~genrelab.deep.loop.TrainResult` for the record.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import NotFittedError

from genrelab.deep import loop
from genrelab.deep.augment import Augmenter
from genrelab.deep.loop import TrainResult, TrainSettings
from genrelab.deep.nets import NETS, build_net
from genrelab.io import atomic_dir, read_json, write_json

__all__ = ["TorchClassifier", "check_slices"]

_FORMAT = "genrelab.deep.TorchClassifier"
_FORMAT_VERSION = 1
_CONFIG = "config.json"
_WEIGHTS = "weights.pt"


def check_slices(S: Any, input_shape: Sequence[int], *, name: str = "S") -> None:
    """Check that ``S`` holds slices compatible with ``input_shape`` (any ``n_frames``).

    Parameters
    ----------
    S : np.ndarray or np.memmap [shape=(n, ..., n_bins, n_frames)]
    input_shape : tuple of int
        The shape of one slice the model was built for; all but the last (time) axis must
        match.

    Raises
    ------
    ValueError
        If the number of axes or any non-time size differs.
    """
    shape = getattr(S, "shape", None)
    if shape is None or len(shape) != len(input_shape) + 1 or tuple(shape[1:-1]) != tuple(input_shape[:-1]):
        want = ", ".join(["n", *map(str, input_shape[:-1]), "n_frames"])
        raise ValueError(f"{name} must have shape ({want}), got {shape}")


def _plain(obj: Any) -> Any:
    """Mappings -> dict, non-string sequences -> list, recursively (e.g. OmegaConf containers),
    so that the settings serialise to JSON exactly as given."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)):
        return [_plain(v) for v in obj]
    return obj


class TorchClassifier:
    """A torch network from :data:`~genrelab.deep.nets.NETS`, trained by the one loop.

    Parameters
    ----------
    net : str
        Network name: ``'cnn'``, ``'crnn1d'``, ``'crnn2d'``, ``'rnn'`` or ``'two_branch'``.
    n_classes : int > 1
        Number of classes; labels are ``0 .. n_classes - 1``.
    input_shape : tuple of int
        Shape of one slice, ``(n_bins, n_frames)``, or ``(2, n_bins, n_frames)`` for
        ``'two_branch'``. Slices of another length are accepted.
    net_params : dict, optional
        Network hyperparameters (see the class in :mod:`genrelab.deep.nets`).
    train : TrainSettings or dict, optional
        Training settings; defaults to ``TrainSettings()``.
    device : {'auto', 'cpu', 'cuda', 'cuda:N'}
        Where to train and predict; ``'auto'`` uses CUDA when present.
    seed : int
        Seeds weight initialisation, batch order, dropout and augmentation.
    augment : dict, optional
        Training-time augmentation settings for
        :class:`~genrelab.deep.augment.Augmenter`; ``None`` for none.

    Attributes
    ----------
    model_ : torch.nn.Module
        The network (after ``fit``: with the best epoch's weights).
    result_ : TrainResult or None
        What the last ``fit`` measured.
    classes_ : np.ndarray [shape=(n_classes,)]
        ``arange(n_classes)``, as in scikit-learn.

    Raises
    ------
    ValueError
        On an unknown network, hyperparameter, training setting or augmentation (the
        message lists the valid names) or an out-of-range value.

    Examples
    --------
    >>> clf = TorchClassifier("cnn", n_classes=10, input_shape=(96, 130),
    ...                       train={"max_epochs": 20, "patience": 4}, seed=1)
    >>> clf.fit(S_train, y_train, S_valid=S_val, y_valid=y_val)  # doctest: +SKIP
    >>> proba = clf.predict_proba(S_test)  # (n_test, 10)        # doctest: +SKIP
    """

    def __init__(
        self,
        net: str,
        *,
        n_classes: int,
        input_shape: Sequence[int],
        net_params: Mapping[str, Any] | None = None,
        train: TrainSettings | Mapping[str, Any] | None = None,
        device: str = "auto",
        seed: int = 0,
        augment: Mapping[str, Any] | None = None,
    ) -> None:
        if net not in NETS:
            raise ValueError(f"unknown network {net!r}; valid choices: {sorted(NETS)}")
        self.net = net
        self.n_classes = int(n_classes)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.net_params = _plain(dict(net_params or {}))
        self.train = train if isinstance(train, TrainSettings) else TrainSettings.from_dict(_plain(train or {}))
        self.device = str(device)
        loop.resolve_device(self.device)  # validate now, resolve at use
        self.seed = int(seed)
        self.augment = None if augment is None else _plain(dict(augment))
        self._augmenter = Augmenter(self.augment)
        self.classes_ = np.arange(self.n_classes)
        self.model_ = self._build()  # validates the hyperparameters
        self.result_: TrainResult | None = None
        self._fitted = False

    def _build(self) -> torch.nn.Module:
        return loop.seeded_init(
            lambda: build_net(self.net, n_classes=self.n_classes, input_shape=self.input_shape, params=self.net_params),
            seed=self.seed,
        )

    def fit(
        self, S: Any, y: np.ndarray, *, S_valid: Any | None = None, y_valid: np.ndarray | None = None,
        progress: bool = True,
    ) -> TorchClassifier:
        """Train from a fresh, seeded initialisation.

        Parameters
        ----------
        S : np.ndarray or np.memmap [shape=(n, *input_shape[:-1], n_frames)], float
            Training slices; read one batch at a time.
        y : np.ndarray [shape=(n,)], int
            Labels in ``[0, n_classes)``.
        S_valid, y_valid : optional
            Validation slices and labels for early stopping and choosing the kept epoch;
            without them all ``max_epochs`` run and the last weights are kept.
        progress : bool
            Show progress (a bar on a terminal, log lines otherwise) over epochs.

        Returns
        -------
        self
        """
        check_slices(S, self.input_shape, name="S")
        if (S_valid is None) != (y_valid is None):
            raise ValueError("give both S_valid and y_valid, or neither")
        valid = None
        if S_valid is not None:
            check_slices(S_valid, self.input_shape, name="S_valid")
            valid = (S_valid, y_valid)
        self.model_ = self._build()
        self.result_ = loop.fit(
            self.model_, (S, y), valid, settings=self.train, device=self.device, seed=self.seed,
            augment=self._augmenter if self._augmenter.active else None, progress=progress,
        )
        self._fitted = True
        return self

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise NotFittedError("this TorchClassifier is not fitted yet; call fit() or load()")

    def predict_proba(self, S: Any, *, progress: bool = False) -> np.ndarray:
        """Class probabilities per slice.

        Parameters
        ----------
        S : np.ndarray or np.memmap [shape=(n, *input_shape[:-1], n_frames)], float
        progress : bool
            Show progress (a bar on a terminal, log lines otherwise) over batches.

        Returns
        -------
        proba : np.ndarray [shape=(n, n_classes)], float64
        """
        self._check_fitted()
        check_slices(S, self.input_shape, name="S")
        return loop.predict_proba(
            self.model_, S, batch_size=self.train.eval_batch_size, device=self.device, progress=progress
        )

    def predict(self, S: Any) -> np.ndarray:
        """Most probable class per slice, int64 [shape=(n,)]."""
        return self.predict_proba(S).argmax(axis=1).astype(np.int64)

    def config(self) -> dict[str, Any]:
        """The JSON-serialisable settings that rebuild this classifier."""
        return {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "net": self.net,
            "n_classes": self.n_classes,
            "input_shape": list(self.input_shape),
            "net_params": self.net_params,
            "train": self.train.to_dict(),
            "seed": self.seed,
            "augment": self.augment,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write ``weights.pt`` and ``config.json`` into folder ``path`` (replaced atomically)."""
        self._check_fitted()
        state = {k: v.detach().to("cpu") for k, v in self.model_.state_dict().items()}
        config = {
            **self.config(),
            "torch_version": torch.__version__,
            "result": None if self.result_ is None else self.result_.to_dict(),
        }
        with atomic_dir(path) as tmp:
            torch.save(state, tmp / _WEIGHTS)
            write_json(tmp / _CONFIG, config)

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str = "auto") -> TorchClassifier:
        """Rebuild a classifier saved by :meth:`save`.

        Parameters
        ----------
        path : str or PathLike
            The folder given to :meth:`save`.
        device : str
            Device for later predictions (the saved one is not reused: it may not exist
            here).

        Raises
        ------
        ValueError
            If the folder does not hold a saved ``TorchClassifier``.
        """
        path = Path(path)
        config = read_json(path / _CONFIG)
        if config.get("format") != _FORMAT:
            raise ValueError(f"{path} does not hold a saved TorchClassifier (format={config.get('format')!r})")
        if config.get("format_version") != _FORMAT_VERSION:
            raise ValueError(f"{path}: unsupported format_version {config.get('format_version')!r}")
        clf = cls(
            config["net"], n_classes=config["n_classes"], input_shape=config["input_shape"],
            net_params=config["net_params"], train=config["train"], device=device, seed=config["seed"],
            augment=config["augment"],
        )
        state = torch.load(path / _WEIGHTS, map_location="cpu", weights_only=True)
        clf.model_.load_state_dict(state)
        clf.model_.eval()
        if config.get("result") is not None:
            clf.result_ = TrainResult(**config["result"])
        clf._fitted = True
        return clf

    def __repr__(self) -> str:
        return (
            f"TorchClassifier({self.net!r}, n_classes={self.n_classes}, input_shape={self.input_shape}, "
            f"net_params={self.net_params}, device={self.device!r}, seed={self.seed})"
        )
