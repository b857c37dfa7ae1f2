"""Classical models: scikit-learn pipelines (scaling, optional PCA, classifier) on summary vectors.

The grid-searched SVM searches on training data only, with grouped cross-validation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genrelab.config import ConfigError, require_choice

__all__ = ["SVMSettings", "SVMGridSettings", "RFSettings", "GBDTSettings", "LogRegSettings", "MLPSettings",
           "CLASSICAL_SETTINGS", "SklearnModel", "build_sklearn", "load_sklearn"]


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
    """SVM whose ``C`` and ``gamma`` are searched by track-grouped CV on the training split."""

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
    """Histogram gradient boosting."""

    max_iter: int = 200
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    pca: float | int | None = None

    def __post_init__(self) -> None:
        if self.max_iter < 1 or self.learning_rate <= 0:
            raise ConfigError("model.max_iter must be >= 1 and model.learning_rate > 0")
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
    """Multi-layer perceptron on standardised features."""

    hidden: tuple = (256, 128)
    alpha: float = 1e-3
    learning_rate_init: float = 1e-3
    max_iter: int = 300
    early_stopping: bool = True
    pca: float | int | None = None

    def __post_init__(self) -> None:
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ConfigError(f"model.hidden: a non-empty list of positive layer sizes, got {list(self.hidden)}")
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


def _estimator(name: str, s: Any, seed: int):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC

    factories: dict[str, Callable[[], Any]] = {
        # Platt-scaled probabilities (what SVC(probability=True) did before scikit-learn 1.9)
        "svm": lambda: CalibratedClassifierCV(SVC(C=s.C, kernel=s.kernel, gamma=s.gamma, random_state=seed),
                                              ensemble=False, cv=3),
        "svm_grid": lambda: CalibratedClassifierCV(SVC(kernel=s.kernel, random_state=seed), ensemble=False, cv=3),
        "rf": lambda: RandomForestClassifier(n_estimators=s.n_estimators, max_depth=s.max_depth,
                                             min_samples_leaf=s.min_samples_leaf, n_jobs=-1, random_state=seed),
        "gbdt": lambda: HistGradientBoostingClassifier(max_iter=s.max_iter, learning_rate=s.learning_rate,
                                                       max_leaf_nodes=s.max_leaf_nodes, random_state=seed),
        "logreg": lambda: LogisticRegression(C=s.C, max_iter=s.max_iter),
        "mlp": lambda: MLPClassifier(hidden_layer_sizes=tuple(s.hidden), alpha=s.alpha,
                                     learning_rate_init=s.learning_rate_init, max_iter=s.max_iter,
                                     early_stopping=s.early_stopping, random_state=seed),
    }
    return _pipeline(factories[name](), s.pca, seed)


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
        """Fit on ``train.X`` / ``train.y`` (``valid`` is not used: it stays unseen)."""
        t0 = time.perf_counter()
        pipe = _estimator(self.name, self.settings, self.seed)
        if self.name in ("svm", "svm_grid"):
            # Platt calibration folds: at most 3, fewer when a class has few examples in a fit
            n_min = int(np.bincount(train.y)[np.unique(train.y)].min())
            if self.name == "svm_grid":
                folds = min(self.settings.cv_folds, len(np.unique(train.track_id)))
                n_min = n_min * (folds - 1) // folds
            if n_min < 2:
                raise ConfigError(f"model {self.name!r}: a genre has only {n_min} training example(s) in a fit, too "
                                  "few to calibrate SVM probabilities; use more tracks, fewer cv_folds, or "
                                  "model=logreg")
            pipe.set_params(clf__cv=min(3, n_min))
        if self.name == "svm_grid":
            from sklearn.model_selection import GridSearchCV, GroupKFold

            groups = train.track_id
            n_groups = len(np.unique(groups))
            folds = min(self.settings.cv_folds, n_groups)
            grid = {"clf__estimator__C": list(self.settings.C), "clf__estimator__gamma": list(self.settings.gamma)}
            search = GridSearchCV(pipe, grid, cv=GroupKFold(n_splits=folds), scoring="accuracy", n_jobs=1,
                                  refit=True)
            search.fit(train.X, train.y, groups=groups)
            pipe = search.best_estimator_
            self.report["cv_best_accuracy"] = float(search.best_score_)
            self.report["best_C"] = float(search.best_params_["clf__estimator__C"])
            gamma = search.best_params_["clf__estimator__gamma"]
            self.report["best_gamma"] = float(gamma) if not isinstance(gamma, str) else -1.0
        else:
            pipe.fit(train.X, train.y)
        self.pipeline = pipe
        self.report["fit_seconds"] = time.perf_counter() - t0
        return self

    def predict_proba(self, features) -> np.ndarray:
        """Class probabilities (n_slices, n_classes), columns in label order 0..n_classes-1."""
        proba = self.pipeline.predict_proba(features.X)
        classes = self.pipeline.classes_
        out = np.zeros((len(proba), self.n_classes), dtype=np.float64)
        out[:, classes] = proba
        return out

    def save(self, folder: str | Path) -> None:
        """Save as ``model.joblib`` (a pickle: load only bundles you trust)."""
        import joblib

        from genrelab.io import atomic_path

        with atomic_path(Path(folder) / "model.joblib") as tmp:
            joblib.dump({"name": self.name, "seed": self.seed, "n_classes": self.n_classes,
                         "settings": self.settings, "pipeline": self.pipeline, "report": self.report}, tmp)


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
