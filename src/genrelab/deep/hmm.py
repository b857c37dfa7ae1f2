"""Gaussian-HMM baseline: one hidden Markov model per genre over MFCC frame sequences.

Each genre gets its own :class:`hmmlearn.hmm.GaussianHMM`, fitted (Baum-Welch) on the frame
sequences of that genre's training slices. A slice is classified by the genre whose model
gives its frame sequence the highest log-likelihood; :meth:`GaussianHMMClassifier.predict_proba`
is the softmax of those log-likelihoods.

Log-likelihoods of new slices are computed here with a vectorised forward algorithm over
batches of equal-length sequences (hmmlearn's ``score`` returns one total for all the
sequences it is given, not one per sequence); ``tests/test_hmm.py`` checks it against
hmmlearn.

Saved models hold no pickles: the HMM parameters go to ``params.npz`` (read with
``allow_pickle=False``) and the settings to ``config.json``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError
from threadpoolctl import threadpool_limits

from genrelab.io import atomic_dir, read_json, write_json
from genrelab.progress import progress_bar

__all__ = ["GaussianHMMClassifier"]

log = logging.getLogger(__name__)

_FORMAT = "genrelab.deep.GaussianHMMClassifier"
_FORMAT_VERSION = 1
# 'spherical' is left out: hmmlearn 0.3.3 stores its fitted covariances with the wrong shape
# ((K, D) instead of (K,)), so its ``covars_`` getter returns K*D matrices.
_COVARIANCE_TYPES = ("diag", "full", "tied")
_LIKELIHOODS = ("total", "per_frame")


def _covars_for_setter(full: np.ndarray, covariance_type: str) -> np.ndarray:
    """hmmlearn's ``covars_`` getter returns (K, D, D); its setter wants the type's own shape."""
    if covariance_type == "diag":
        return np.diagonal(full, axis1=1, axis2=2).copy()
    if covariance_type == "tied":
        return full[0].copy()
    return full.copy()


def _log_emissions(X: np.ndarray, means: np.ndarray, covars: np.ndarray, covariance_type: str) -> np.ndarray:
    """Gaussian log-densities of frames under each state.

    Parameters
    ----------
    X : np.ndarray [shape=(B, T, D)]
    means : np.ndarray [shape=(K, D)]
    covars : np.ndarray [shape=(K, D, D)]
    covariance_type : str

    Returns
    -------
    np.ndarray [shape=(B, T, K)]
    """
    d = X.shape[-1]
    if covariance_type == "diag":
        var = np.diagonal(covars, axis1=1, axis2=2)  # (K, D)
        prec = 1.0 / var
        quad = (X**2) @ prec.T - 2.0 * (X @ (means * prec).T) + (means**2 * prec).sum(axis=1)
        logdet = np.log(var).sum(axis=1)
    else:
        chol = np.linalg.cholesky(covars)  # (K, D, D)
        logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        flat = X.reshape(-1, d)
        quad = np.empty((flat.shape[0], len(means)))
        for k in range(len(means)):
            z = np.linalg.solve(chol[k], (flat - means[k]).T)  # (D, B*T)
            quad[:, k] = (z**2).sum(axis=0)
        quad = quad.reshape(*X.shape[:2], len(means))
    return -0.5 * (d * np.log(2.0 * np.pi) + logdet + quad)


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return np.log(np.sum(np.exp(a - m), axis=axis)) + np.squeeze(m, axis=axis)


def _forward_log_likelihood(log_e: np.ndarray, startprob: np.ndarray, transmat: np.ndarray) -> np.ndarray:
    """Log-likelihood of each sequence by the forward algorithm in the log domain.

    Parameters
    ----------
    log_e : np.ndarray [shape=(B, T, K)]
        Per-frame state log-densities.
    startprob : np.ndarray [shape=(K,)]
    transmat : np.ndarray [shape=(K, K)]

    Returns
    -------
    np.ndarray [shape=(B,)]
    """
    with np.errstate(divide="ignore"):
        log_start = np.log(startprob)
        log_trans = np.log(transmat)
    alpha = log_start[None, :] + log_e[:, 0]
    for t in range(1, log_e.shape[1]):
        alpha = _logsumexp(alpha[:, :, None] + log_trans[None], axis=1) + log_e[:, t]
    return _logsumexp(alpha, axis=1)


class GaussianHMMClassifier:
    """One Gaussian HMM per class over frame sequences; classify by highest likelihood.

    Parameters
    ----------
    n_components : int > 0
        Hidden states per class model.
    covariance_type : {'diag', 'full', 'tied'}
        Covariance of each state's Gaussian (hmmlearn's 'spherical' is not offered: in
        hmmlearn 0.3.3 its fitted covariances have the wrong shape).
    n_iter : int > 0
        Maximum Baum-Welch iterations per class model.
    seed : int
        Seeds each class model's initialisation (k-means of the states), via
        ``np.random.SeedSequence(seed)``.
    n_classes : int, optional
        Number of classes; inferred as ``max(y) + 1`` at ``fit`` when ``None``. A class with
        no training slices gets no model and probability 0.
    tol : float > 0
        Baum-Welch convergence threshold on the log-likelihood gain.
    min_covar : float > 0
        Floor on the state variances (in standardised units if ``standardize``).
    standardize : bool
        Scale every coefficient to zero mean and unit variance over the training frames
        before fitting (MFCC 0 is orders of magnitude larger than the rest).
    likelihood : {'total', 'per_frame'}
        What ``predict_proba`` takes the softmax of: the sequence log-likelihood (nearly
        one-hot probabilities for long slices) or the log-likelihood divided by the number
        of frames (softer; the same ``predict``).
    batch_size : int > 0
        Slices read from ``S`` at a time.

    Attributes
    ----------
    models_ : list of hmmlearn.hmm.GaussianHMM or None
        One per class (``None`` for a class without training slices).
    classes_ : np.ndarray [shape=(n_classes,)]

    Notes
    -----
    ``S`` is an array [shape=(n, n_mfcc, n_frames)] as produced by the features stage; slice
    ``i`` is the sequence ``S[i].T`` [shape=(n_frames, n_mfcc)]. ``fit`` holds one class's
    frames in memory at a time (float64), ``predict_proba`` one batch.
    """

    def __init__(
        self,
        *,
        n_components: int = 4,
        covariance_type: str = "diag",
        n_iter: int = 20,
        seed: int = 0,
        n_classes: int | None = None,
        tol: float = 1e-2,
        min_covar: float = 1e-3,
        standardize: bool = True,
        likelihood: str = "total",
        batch_size: int = 256,
    ) -> None:
        for name, value in (("n_components", n_components), ("n_iter", n_iter), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if covariance_type not in _COVARIANCE_TYPES:
            raise ValueError(f"covariance_type must be one of {sorted(_COVARIANCE_TYPES)}, got {covariance_type!r}")
        if likelihood not in _LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {sorted(_LIKELIHOODS)}, got {likelihood!r}")
        for name, value in (("tol", tol), ("min_covar", min_covar)):
            if not float(value) > 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        if n_classes is not None and int(n_classes) < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes!r}")
        self.n_components = int(n_components)
        self.covariance_type = covariance_type
        self.n_iter = int(n_iter)
        self.seed = int(seed)
        self.n_classes = None if n_classes is None else int(n_classes)
        self.tol = float(tol)
        self.min_covar = float(min_covar)
        self.standardize = bool(standardize)
        self.likelihood = likelihood
        self.batch_size = int(batch_size)
        self.models_: list[Any] | None = None
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    # ---------------------------------------------------------------------------------------
    def _params(self) -> dict[str, Any]:
        return {
            "n_components": self.n_components, "covariance_type": self.covariance_type, "n_iter": self.n_iter,
            "seed": self.seed, "n_classes": self.n_classes, "tol": self.tol, "min_covar": self.min_covar,
            "standardize": self.standardize, "likelihood": self.likelihood, "batch_size": self.batch_size,
        }

    @property
    def classes_(self) -> np.ndarray:
        if self.n_classes is None:
            raise NotFittedError("n_classes is not known before fit()")
        return np.arange(self.n_classes)

    def _sequences(self, S: Any, idx: np.ndarray | slice) -> np.ndarray:
        """Standardised float64 sequences [shape=(B, n_frames, n_mfcc)] of slices ``idx``."""
        X = np.asarray(S[idx], dtype=np.float64).transpose(0, 2, 1)
        if self.standardize:
            X = (X - self.mean_) / self.scale_
        return X

    def _new_model(self, seed: int) -> Any:
        from hmmlearn.hmm import GaussianHMM

        return GaussianHMM(
            n_components=self.n_components, covariance_type=self.covariance_type, n_iter=self.n_iter,
            tol=self.tol, min_covar=self.min_covar, random_state=np.random.RandomState(seed),
        )

    @staticmethod
    def _check_S(S: Any, name: str = "S") -> None:
        shape = getattr(S, "shape", None)
        if shape is None or len(shape) != 3 or min(shape[1:]) < 1:
            raise ValueError(f"{name} must have shape (n_slices, n_mfcc, n_frames), got {shape}")

    def fit(
        self, S: Any, y: np.ndarray, *, S_valid: Any | None = None, y_valid: np.ndarray | None = None,
        progress: bool = True,
    ) -> GaussianHMMClassifier:
        """Fit one HMM per class on that class's frame sequences.

        Parameters
        ----------
        S : np.ndarray or np.memmap [shape=(n, n_mfcc, n_frames)], float
            Training slices.
        y : np.ndarray [shape=(n,)], int
            Labels in ``[0, n_classes)``.
        S_valid, y_valid : ignored
            Accepted for interface compatibility with
            :class:`~genrelab.deep.estimator.TorchClassifier` (an HMM has no early stopping).
        progress : bool
            Show progress (a bar on a terminal, log lines otherwise) over classes.

        Returns
        -------
        self
        """
        self._check_S(S)
        y = np.asarray(y)
        if y.shape != (S.shape[0],) or len(y) == 0 or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y must be a non-empty int array of shape ({S.shape[0]},), got {y.shape} {y.dtype}")
        n_classes = self.n_classes if self.n_classes is not None else max(int(y.max()) + 1, 2)
        if y.min() < 0 or y.max() >= n_classes:
            raise ValueError(f"labels must be in [0, {n_classes}), got range [{y.min()}, {y.max()}]")
        n, n_mfcc, n_frames = S.shape
        if n_frames * np.bincount(y, minlength=n_classes).max() < self.n_components:
            raise ValueError(f"too few frames for n_components={self.n_components}")

        # per-coefficient statistics over all training frames, in batches
        if self.standardize:
            total = np.zeros(n_mfcc)
            total_sq = np.zeros(n_mfcc)
            for start in range(0, n, self.batch_size):
                block = np.asarray(S[start : start + self.batch_size], dtype=np.float64)
                total += block.sum(axis=(0, 2))
                total_sq += (block**2).sum(axis=(0, 2))
            count = n * n_frames
            mean = total / count
            self.mean_ = mean
            self.scale_ = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0)) + 1e-8
        else:
            self.mean_, self.scale_ = np.zeros(n_mfcc), np.ones(n_mfcc)

        seeds = np.random.SeedSequence(self.seed).generate_state(n_classes)
        models: list[Any] = []
        for c in progress_bar(range(n_classes), desc="hmm", unit="class", disable=not progress, leave=False):
            idx = np.flatnonzero(y == c)
            if len(idx) == 0:
                log.warning("class %d has no training slices; it gets no model and probability 0", c)
                models.append(None)
                continue
            X = np.concatenate(
                [
                    self._sequences(S, idx[i : i + self.batch_size]).reshape(-1, n_mfcc)
                    for i in range(0, len(idx), self.batch_size)
                ]
            )
            model = self._new_model(int(seeds[c]))
            # hmmlearn initialises the means with scikit-learn's KMeans, whose OpenMP threads
            # spin-wait badly on busy machines (10-100x slower); Baum-Welch itself is
            # single-threaded C, so one thread loses nothing.
            with threadpool_limits(limits=1):
                model.fit(X, lengths=[n_frames] * len(idx))
            if not model.monitor_.converged:
                log.info("class %d: Baum-Welch did not converge in %d iterations", c, self.n_iter)
            models.append(model)
        self.n_classes = n_classes
        self.models_ = models
        return self

    def _check_fitted(self) -> None:
        if self.models_ is None:
            raise NotFittedError("this GaussianHMMClassifier is not fitted yet; call fit() or load()")

    def log_likelihood(self, S: Any, *, progress: bool = False) -> np.ndarray:
        """Log-likelihood of each slice under each class model.

        Parameters
        ----------
        S : np.ndarray or np.memmap [shape=(n, n_mfcc, n_frames)], float
        progress : bool
            Show progress (a bar on a terminal, log lines otherwise) over batches.

        Returns
        -------
        np.ndarray [shape=(n, n_classes)], float64
            In nats, of the standardised sequence; ``-inf`` for classes without a model.
        """
        self._check_fitted()
        self._check_S(S)
        if S.shape[1] != len(self.mean_):
            raise ValueError(f"S has {S.shape[1]} coefficients, the model was fitted on {len(self.mean_)}")
        out = np.full((S.shape[0], self.n_classes), -np.inf)
        starts = range(0, S.shape[0], self.batch_size)
        for start in progress_bar(starts, desc="hmm score", unit="batch", disable=not progress, leave=False):
            X = self._sequences(S, slice(start, start + self.batch_size))
            for c, model in enumerate(self.models_):
                if model is None:
                    continue
                log_e = _log_emissions(X, model.means_, model.covars_, self.covariance_type)
                out[start : start + len(X), c] = _forward_log_likelihood(log_e, model.startprob_, model.transmat_)
        return out

    def predict_proba(self, S: Any, *, progress: bool = False) -> np.ndarray:
        """Softmax over classes of the log-likelihoods (see ``likelihood``).

        Returns
        -------
        proba : np.ndarray [shape=(n, n_classes)], float64
        """
        ll = self.log_likelihood(S, progress=progress)
        if self.likelihood == "per_frame":
            ll = ll / S.shape[2]
        ll = ll - ll.max(axis=1, keepdims=True)
        p = np.exp(ll)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, S: Any) -> np.ndarray:
        """Class with the highest log-likelihood per slice, int64 [shape=(n,)]."""
        return self.log_likelihood(S).argmax(axis=1).astype(np.int64)

    # ---------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write ``config.json`` and ``params.npz`` (no pickles) into folder ``path``."""
        self._check_fitted()
        arrays: dict[str, np.ndarray] = {"mean": self.mean_, "scale": self.scale_}
        trained = []
        for c, model in enumerate(self.models_):
            trained.append(model is not None)
            if model is None:
                continue
            arrays[f"startprob_{c}"] = model.startprob_
            arrays[f"transmat_{c}"] = model.transmat_
            arrays[f"means_{c}"] = model.means_
            arrays[f"covars_{c}"] = _covars_for_setter(model.covars_, self.covariance_type)
        arrays["trained"] = np.asarray(trained, dtype=bool)
        config = {"format": _FORMAT, "format_version": _FORMAT_VERSION, **self._params()}
        with atomic_dir(path) as tmp:
            np.savez(tmp / "params.npz", **arrays)
            write_json(tmp / "config.json", config)

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str | None = None) -> GaussianHMMClassifier:
        """Rebuild a classifier saved by :meth:`save` (``device`` is accepted and ignored)."""
        path = Path(path)
        config = read_json(path / "config.json")
        if config.pop("format", None) != _FORMAT:
            raise ValueError(f"{path} does not hold a saved GaussianHMMClassifier")
        if config.pop("format_version", None) != _FORMAT_VERSION:
            raise ValueError(f"{path}: unsupported format version")
        clf = cls(**config)
        with np.load(path / "params.npz", allow_pickle=False) as z:
            clf.mean_, clf.scale_ = z["mean"], z["scale"]
            models: list[Any] = []
            for c, trained in enumerate(z["trained"]):
                if not trained:
                    models.append(None)
                    continue
                model = clf._new_model(0)
                model.n_features = len(clf.mean_)
                model.startprob_ = z[f"startprob_{c}"]
                model.transmat_ = z[f"transmat_{c}"]
                model.means_ = z[f"means_{c}"]
                model.covars_ = z[f"covars_{c}"]
                models.append(model)
        clf.models_ = models
        return clf

    def __repr__(self) -> str:
        return "GaussianHMMClassifier(" + ", ".join(f"{k}={v!r}" for k, v in self._params().items()) + ")"
