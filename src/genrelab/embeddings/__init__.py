"""Pretrained audio embeddings with essentia-tensorflow, and a store for the model files.

* :mod:`~genrelab.embeddings.catalog` -- the registry of Essentia models (URLs, node names,
  patching), ``model_path``/``fetch``, and ``genrelab models list|fetch``;
* :mod:`~genrelab.embeddings.essentia_models` -- ``EmbeddingExtractor``, ``GenreHead``,
  and ``pool``;
* :mod:`~genrelab.embeddings.patching` -- Essentia's frame/patch arithmetic in numpy.

Importing this package does not import Essentia or TensorFlow: models run in a worker
subprocess unless ``isolate=False`` is asked for.
"""

from genrelab.embeddings.catalog import (
    MODELS,
    EssentiaModelSpec,
    MissingModelError,
    UnknownModelError,
    fetch,
    get_spec,
    list_models,
    model_path,
    models_command,
)
from genrelab.embeddings.essentia_models import (
    POOLINGS,
    EmbeddingExtractor,
    EssentiaWorkerError,
    GenreHead,
    pool,
)

__all__ = [
    "EmbeddingExtractor",
    "EssentiaWorkerError",
    "GenreHead",
    "POOLINGS",
    "pool",
    "MODELS",
    "MissingModelError",
    "EssentiaModelSpec",
    "UnknownModelError",
    "fetch",
    "get_spec",
    "list_models",
    "model_path",
    "models_command",
]
