"""Classical models: scikit-learn pipelines (scaling, optional PCA, classifier) on summary vectors.

Every inner validation is grouped by the outer split's unit (the ``group`` of each slice:
its artist, or its track where the artist is unknown), so that no artist's slices sit on
both sides of it:

* ``svm_grid`` searches ``C`` and ``gamma`` by stratified group k-fold on the train split;
* the SVMs' Platt-scaled probabilities are fitted on cross-fitted decision values, with
  folds grouped the same way (falling back to track groups, with a warning, when a genre has
  fewer than two groups in the training split);
* ``mlp`` and ``gbdt`` stop early on the valid split (track- and group-disjoint from train),
  or, where it is empty, on a group hold-out of the train split.

SVM class predictions (``predict``) come from the SVC itself; its calibrated probabilities
(``predict_proba``) serve the mean-probability aggregation of a track's slices only.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genrelab.config import ConfigError, require_choice

__all__ = ["SVMSettings", "SVMGridSettings", "RFSettings", "GBDTSettings", "LogRegSettings", "MLPSettings",
           "CLASSICAL_SETTINGS", "SklearnModel", "build_sklearn", "load_sklearn", "group_folds"]

log = logging.getLogger(__name__)

HOLDOUT_FRACTION = 0.1
"""Share of the train split's groups held out for early stopping when the valid split is empty."""


def _check_pca(pca: float | int | None) -> None:
    if pca is not None and not (0 < pca < 1 or (isinstance(pca, int) and pca >= 1)):
        raise ConfigError(f"model.pca: a variance fraction in (0, 1), a component count >= 1, or null; got {pca}")


@dataclass(frozen=True)
class SVMSettings:
    """RBF (or other kernel) support vector machine on standardised features."""

    C: float = 10.0
    kernel: str = "rbf"
    gamma: str | float = "scale"
    pca: float | int | None = None

    def __post_init__(self) -> None:
        if self.C <= 0:
            raise ConfigError(f"model.C: must be positive, got {self.C}")
        require_choice("model.kernel", self.kernel, ("rbf", "linear", "poly", "sigmoid"))
        _check_pca(self.pca)


@dataclass(frozen=True)
class SVMGridSettings:
    """SVM whose ``C`` and ``gamma`` are searched by group-wise CV (the outer split's unit) on the train split."""

    C: tuple = (1.0, 10.0, 100.0)
    gamma: tuple = ("scale", 0.01, 0.001)
    kernel: str = "rbf"
    cv_folds: int = 3
    pca: float | int | None = None

    def __post_init__(self) -> None:
        if not self.C or any(c <= 0 for c in self.C):
            raise ConfigError(f"model.C: a non-empty list of positive values, got {list(self.C)}")
        if self.cv_folds < 2:
            raise ConfigError(f"model.cv_folds: at least 2, got {self.cv_folds}")
        require_choice("model.kernel", self.kernel, ("rbf", "linear", "poly", "sigmoid"))
        _check_pca(self.pca)


@dataclass(frozen=True)
class RFSettings:
    """Random forest."""

    n_estimators: int = 300
    max_depth: int | None = None
    min_samples_leaf: int = 1
    pca: float | int | None = None

    def __post_init__(self) -> None:
        if self.n_estimators < 1:
            raise ConfigError(f"model.n_estimators: at least 1, got {self.n_estimators}")
        _check_pca(self.pca)


@dataclass(frozen=True)
class GBDTSettings:
    """Histogram gradient boosting.

    ``early_stopping``: ``auto`` stops early above 10000 training slices (scikit-learn's rule),
    ``true``/``false`` always/never; it scores the valid split, not a random share of slices.
    """

    max_iter: int = 200
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    early_stopping: bool | str = "auto"
    pca: float | int | None = None

    def __post_init__(self) -> None:
        if self.max_iter < 1 or self.learning_rate <= 0:
            raise ConfigError("model.max_iter must be >= 1 and model.learning_rate > 0")
        if self.early_stopping not in (True, False, "auto"):
            raise ConfigError(f"model.early_stopping: true, false or auto, got {self.early_stopping!r}")
        _check_pca(self.pca)


@dataclass(frozen=True)
class LogRegSettings:
    """Multinomial logistic regression."""

    C: float = 1.0
    max_iter: int = 2000
    pca: float | int | None = None

    def __post_init__(self) -> None:
        if self.C <= 0:
            raise ConfigError(f"model.C: must be positive, got {self.C}")
        _check_pca(self.pca)


@dataclass(frozen=True)
class MLPSettings:
    """Multi-layer perceptron on standardised features.

    With ``early_stopping`` it keeps the epoch with the best accuracy on the valid split and
    stops after ``n_iter_no_change`` epochs without an improvement of ``tol``.
    """

    hidden: tuple = (256, 128)
    alpha: float = 1e-3
    learning_rate_init: float = 1e-3
    max_iter: int = 300
    early_stopping: bool = True
    n_iter_no_change: int = 10
    tol: float = 1e-4
    pca: float | int | None = None

    def __post_init__(self) -> None:
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ConfigError(f"model.hidden: a non-empty list of positive layer sizes, got {list(self.hidden)}")
        if self.max_iter < 1 or self.n_iter_no_change < 1:
            raise ConfigError("model.max_iter and model.n_iter_no_change must be >= 1")
        _check_pca(self.pca)


def _pipeline(clf, pca, seed: int):
    from sklearn.decomposition import PCA
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    steps: list[tuple[str, Any]] = [("scale", StandardScaler())]
    if pca is not None:
        steps.append(("pca", PCA(n_components=pca, random_state=seed)))
    steps.append(("clf", clf))
    return Pipeline(steps)


def _classifier(name: str, s: Any, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC

    factories: dict[str, Callable[[], Any]] = {
        "svm": lambda: SVC(C=s.C, kernel=s.kernel, gamma=s.gamma),
        "svm_grid": lambda: SVC(kernel=s.kernel),
        "rf": lambda: RandomForestClassifier(n_estimators=s.n_estimators, max_depth=s.max_depth,
                                             min_samples_leaf=s.min_samples_leaf, n_jobs=-1, random_state=seed),
        "gbdt": lambda: HistGradientBoostingClassifier(max_iter=s.max_iter, learning_rate=s.learning_rate,
                                                       max_leaf_nodes=s.max_leaf_nodes, random_state=seed),
        "logreg": lambda: LogisticRegression(C=s.C, max_iter=s.max_iter),
        # early stopping on our own validation set (_fit_mlp), never on a random share of slices
        "mlp": lambda: MLPClassifier(hidden_layer_sizes=tuple(s.hidden), alpha=s.alpha,
                                     learning_rate_init=s.learning_rate_init, max_iter=s.max_iter,
                                     early_stopping=False, random_state=seed),
    }
    return factories[name]()


def group_folds(y: np.ndarray, groups: np.ndarray, n_splits: int, *, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified group k-fold indices: no group on both sides of any fold.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Class of each row.
    groups : np.ndarray [shape=(n,)]
        Group of each row (artist, or track).
    n_splits : int >= 2
    seed : int

    Returns
    -------
    folds : list of (train_idx, test_idx)
        Test parts partition the rows.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    with warnings.catch_warnings():  # "least populated class has only k members": expected on small data
        warnings.simplefilter("ignore", UserWarning)
        cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        return [(tr, te) for tr, te in cv.split(np.zeros(len(y)), y, groups)]


def _groups_per_class(y: np.ndarray, groups: np.ndarray) -> int:
    """Fewest distinct groups any present class has."""
    import pandas as pd

    return int(pd.DataFrame({"y": y, "g": groups}).groupby("y")["g"].nunique().min())


def _calibration_groups(name: str, y: np.ndarray, groups: np.ndarray, tracks: np.ndarray) -> tuple[np.ndarray, int]:
    """Groups and fold count of the SVM's probability calibration (at most 3 folds)."""
    if _groups_per_class(y, groups) < 2 and _groups_per_class(y, tracks) >= 2:
        log.warning("model %r: a genre has a single group (artist) in the training split, so its probability "
                    "calibration is grouped by track instead", name)
        groups = tracks
    n = min(3, _groups_per_class(y, groups))
    if n < 2:
        raise ConfigError(f"model {name!r}: a genre has only one track in the training split, too few to "
                          "calibrate SVM probabilities on held-out tracks; use more tracks or model=logreg")
    return groups, n


def _validation_rows(train, valid, seed: int) -> tuple[np.ndarray, Any]:
    """Rows of ``train`` to fit on, and the validation set: the valid split, else a group hold-out."""
    if valid is not None and len(valid.meta) > 0:
        return np.arange(len(train.meta)), valid
    from sklearn.model_selection import GroupShuffleSplit

    groups = train.groups
    if len(np.unique(groups)) < 2:
        raise ConfigError("early stopping needs a valid split or at least two groups in the train split")
    fit_idx, val_idx = next(GroupShuffleSplit(n_splits=1, test_size=HOLDOUT_FRACTION, random_state=seed)
                            .split(train.X, train.y, groups))
    return fit_idx, train.take(val_idx)


def _fit_mlp(clf, X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray, *, classes: np.ndarray,
             max_iter: int, n_iter_no_change: int, tol: float) -> dict[str, float]:
    """Epochs of ``partial_fit`` while the validation accuracy improves; keep the best epoch's weights."""
    best_score, best, stale, epoch = -np.inf, None, 0, 0
    for epoch in range(1, max_iter + 1):
        clf.partial_fit(X, y, classes=classes)
        score = float(clf.score(X_val, y_val))
        stale = stale + 1 if score < best_score + tol else 0
        if score > best_score:
            best_score, best = score, (copy.deepcopy(clf.coefs_), copy.deepcopy(clf.intercepts_), epoch)
        if stale >= n_iter_no_change:
            break
    assert best is not None
    clf.coefs_, clf.intercepts_ = best[0], best[1]
    return {"early_stopping_best_epoch": float(best[2]), "early_stopping_epochs": float(epoch),
            "early_stopping_valid_accuracy": best_score}


@dataclass
class SklearnModel:
    """A scikit-learn pipeline on summary feature vectors.

    Attributes
    ----------
    name : str
        Registry name.
    settings : dataclass
        Its validated settings.
    seed : int
    pipeline : sklearn Pipeline
    report : dict
        Numbers about the fit (seconds, best CV score and parameters of a grid search).
    """

    name: str
    settings: Any
    seed: int
    n_classes: int
    pipeline: Any = None
    report: dict = field(default_factory=dict)
    input: str = "vector"

    def fit(self, train, valid=None) -> SklearnModel:
        """Fit on ``train.X`` / ``train.y``; inner validation grouped by ``train.groups``.

        ``valid`` is used only by early stopping (``mlp``, ``gbdt``); it never trains a weight.
        """
        t0 = time.perf_counter()
        X, y, groups = train.X, train.y, train.groups
        if self.name in ("svm", "svm_grid"):
            self.pipeline = self._fit_svm(X, y, groups, train.track_id)
        elif self.name == "mlp" and self.settings.early_stopping or self.name == "gbdt" and (
                self.settings.early_stopping is True
                or self.settings.early_stopping == "auto" and len(y) > 10000):
            self.pipeline = self._fit_early_stopping(train, valid)
        else:
            self.pipeline = _pipeline(_classifier(self.name, self.settings, self.seed), self.settings.pca,
                                      self.seed).fit(X, y)
        self.report["fit_seconds"] = time.perf_counter() - t0
        return self

    def _fit_svm(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray, tracks: np.ndarray):
        """Scaler (+ PCA) + SVC, Platt-calibrated on cross-fitted decision values; C/gamma searched for svm_grid."""
        from sklearn.calibration import CalibratedClassifierCV

        svc = _classifier(self.name, self.settings, self.seed)
        if self.name == "svm_grid":
            from sklearn.model_selection import GridSearchCV

            folds = min(self.settings.cv_folds, len(np.unique(groups)))
            search = GridSearchCV(_pipeline(svc, self.settings.pca, self.seed),
                                  {"clf__C": list(self.settings.C), "clf__gamma": list(self.settings.gamma)},
                                  cv=group_folds(y, groups, folds, seed=self.seed), scoring="accuracy", n_jobs=1,
                                  refit=False)
            search.fit(X, y)
            svc.set_params(C=search.best_params_["clf__C"], gamma=search.best_params_["clf__gamma"])
            self.report["cv_best_accuracy"] = float(search.best_score_)
            self.report["cv_folds"] = float(folds)
            self.report["best_C"] = float(search.best_params_["clf__C"])
            gamma = search.best_params_["clf__gamma"]
            self.report["best_gamma"] = float(gamma) if not isinstance(gamma, str) else -1.0
        cal_groups, n_cal = _calibration_groups(self.name, y, groups, tracks)
        # ensemble=False: one SVC fitted on all rows (it predicts the classes) + a sigmoid fitted on
        # decision values of SVCs that did not see the row's group (it maps scores to probabilities)
        calibrated = CalibratedClassifierCV(svc, method="sigmoid", ensemble=False,
                                            cv=group_folds(y, cal_groups, n_cal, seed=self.seed))
        return _pipeline(calibrated, self.settings.pca, self.seed).fit(X, y)

    def _fit_early_stopping(self, train, valid):
        """Fit the scaler (+ PCA) on train, then the classifier with early stopping on the validation set."""
        from sklearn.pipeline import Pipeline

        fit_idx, val = _validation_rows(train, valid, self.seed)
        clf = _classifier(self.name, self.settings, self.seed)
        pre = _pipeline(clf, self.settings.pca, self.seed)[:-1]
        Xt = pre.fit_transform(train.X[fit_idx])
        Xv = pre.transform(val.X)
        y, yv = train.y[fit_idx], val.y
        if self.name == "mlp":
            self.report.update(_fit_mlp(clf, Xt, y, Xv, yv, classes=np.unique(y), max_iter=self.settings.max_iter,
                                        n_iter_no_change=self.settings.n_iter_no_change, tol=self.settings.tol))
        else:
            clf.set_params(early_stopping=True)
            clf.fit(Xt, y, X_val=Xv, y_val=yv)
            self.report["early_stopping_epochs"] = float(clf.n_iter_)
        return Pipeline([*pre.steps, ("clf", clf)])

    def predict(self, features, *, proba: np.ndarray | None = None) -> np.ndarray:
        """Class of each slice, shape (n_slices,): the classifier's own prediction.

        For the SVMs this is the SVC's (fitted on every training row), not the argmax of the
        calibrated probabilities, which can disagree with it. The other classifiers predict
        the argmax of their probabilities: ``proba`` (this model's :meth:`predict_proba` of
        ``features``, when already computed) saves computing them again.
        """
        X = features.X
        if self.name in ("svm", "svm_grid"):
            svc = self.pipeline[-1].calibrated_classifiers_[0].estimator
            return np.asarray(svc.predict(self.pipeline[:-1].transform(X)), dtype=np.int64)
        if proba is not None:
            return np.asarray(proba).argmax(axis=1).astype(np.int64)
        return np.asarray(self.pipeline.predict(X), dtype=np.int64)

    def predict_proba(self, features) -> np.ndarray:
        """Class probabilities (n_slices, n_classes), columns in label order 0..n_classes-1."""
        proba = self.pipeline.predict_proba(features.X)
        classes = self.pipeline.classes_
        out = np.zeros((len(proba), self.n_classes), dtype=np.float64)
        out[:, classes] = proba
        return out

    def save(self, folder: str | Path) -> None:
        """Save as ``model.joblib`` (a pickle: load only bundles you trust).

        Identical fits give byte-identical files: timings (``*_seconds``) stay out of the file.
        """
        import joblib

        from genrelab.io import atomic_path

        report = {k: v for k, v in self.report.items() if not k.endswith("_seconds")}
        with atomic_path(Path(folder) / "model.joblib") as tmp:
            joblib.dump({"name": self.name, "seed": self.seed, "n_classes": self.n_classes,
                         "settings": self.settings, "pipeline": self.pipeline, "report": report}, tmp)


def build_sklearn(settings: Any, *, n_classes: int, input_shape: tuple[int, ...], seed: int,
                  device: str = "auto", name: str) -> SklearnModel:
    return SklearnModel(name=name, settings=settings, seed=seed, n_classes=n_classes)


def load_sklearn(folder: Path) -> SklearnModel:
    """Load ``model.joblib``. It is a pickle: only load bundles you made or trust."""
    import joblib

    d = joblib.load(Path(folder) / "model.joblib")
    return SklearnModel(name=d["name"], settings=d["settings"], seed=d["seed"], n_classes=d["n_classes"],
                        pipeline=d["pipeline"], report=d["report"])


CLASSICAL_SETTINGS: dict[str, type] = {"svm": SVMSettings, "svm_grid": SVMGridSettings, "rf": RFSettings,
                                       "gbdt": GBDTSettings, "logreg": LogRegSettings, "mlp": MLPSettings}
"""Settings class of every classical model, by ``model.name``."""
