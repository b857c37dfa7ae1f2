"""The train stage and every classifier: one registry, one interface, bundles.

* :mod:`~genrelab.models.registry` -- :data:`MODELS` (``model.name`` -> spec), ``build_model``;
* :mod:`~genrelab.models.classical` -- scikit-learn pipelines (svm, svm_grid, rf, gbdt, logreg, mlp);
* :mod:`~genrelab.models.frames` -- torch networks and HMMs on frames (:mod:`genrelab.deep`);
* :mod:`~genrelab.models.train` -- ``train_bundle`` (the stage);
* :mod:`~genrelab.models.bundle` -- ``Bundle``, ``load_bundle`` and its trust rules;
* :mod:`~genrelab.models.card` -- model cards (``genrelab card``);
* :mod:`~genrelab.models.novelty` -- out-of-distribution warnings;
* :mod:`~genrelab.models.heads` -- Essentia's pretrained genre heads (``essentia_head``, ``predict --head``).
"""

from genrelab.models.bundle import BUNDLE_SECTIONS, PICKLE_SUFFIXES, Bundle, UntrustedBundleError, load_bundle
from genrelab.models.classical import SklearnModel
from genrelab.models.frames import FrameModel
from genrelab.models.registry import MODELS, ModelSpec, build_model, load_model, model_input, register
from genrelab.models.train import TrainStageSettings, train_bundle

__all__ = [
    "BUNDLE_SECTIONS", "PICKLE_SUFFIXES", "Bundle", "FrameModel", "MODELS", "ModelSpec", "SklearnModel",
    "TrainStageSettings", "UntrustedBundleError", "build_model", "load_bundle", "load_model", "model_input",
    "register", "train_bundle",
]
