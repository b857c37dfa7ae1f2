"""Deep (torch) models and the Gaussian-HMM baseline, independent of the pipeline.

- :mod:`~genrelab.deep.nets`: the networks (``cnn``, ``crnn1d``, ``crnn2d``, ``rnn``,
  ``two_branch``);
- :mod:`~genrelab.deep.loop`: the one training loop (:func:`fit`) and batched
  :func:`predict_proba`;
- :mod:`~genrelab.deep.estimator`: :class:`TorchClassifier`, fit / predict / save / load;
- :mod:`~genrelab.deep.hmm`: :class:`GaussianHMMClassifier`, one HMM per genre;
- :mod:`~genrelab.deep.augment`: spectrogram-domain training augmentation;
- :mod:`~genrelab.deep.registry`: :data:`DEEP_MODELS` and :func:`make_deep_model`.
"""

from genrelab.deep.augment import Augmenter
from genrelab.deep.estimator import TorchClassifier
from genrelab.deep.hmm import GaussianHMMClassifier
from genrelab.deep.loop import TrainResult, TrainSettings, fit, predict_proba, resolve_device
from genrelab.deep.nets import NETS, build_net
from genrelab.deep.registry import DEEP_MODELS, load_deep_model, make_deep_model

__all__ = [
    "Augmenter",
    "DEEP_MODELS",
    "GaussianHMMClassifier",
    "NETS",
    "TorchClassifier",
    "TrainResult",
    "TrainSettings",
    "build_net",
    "fit",
    "load_deep_model",
    "make_deep_model",
    "predict_proba",
    "resolve_device",
]
