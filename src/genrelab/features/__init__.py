"""The features stage: slicing, per-slice extractors, and the feature sets it writes.

* :mod:`~genrelab.features.slicing` -- ``SliceSettings`` and ``slice_signal``;
* :mod:`~genrelab.features.extractors` -- the :data:`FEATURES` registry (MFCC, log-mel, the
  classic GTZAN descriptors, pretrained embeddings, imported tables);
* :mod:`~genrelab.features.extract` -- ``extract_dataset`` (the stage) and ``track_features``
  (one track's slices, shared with ``genrelab predict``);
* :mod:`~genrelab.features.sets` -- ``FeatureSet`` and the files on disk.
"""

from genrelab.features.extract import TrackFeatures, extract_dataset, track_features
from genrelab.features.extractors import (
    EMBEDDING_MODELS,
    FEATURES,
    KAGGLE_COLUMNS,
    STATS,
    ClassicFeatures,
    EmbeddingFeatures,
    FeatureBatch,
    MelFeatures,
    MFCCFeatures,
    TableFeatures,
    make_extractor,
    settings_dict,
)
from genrelab.features.sets import (
    FeatureSet,
    concat_feature_sets,
    join_split,
    load_feature_split,
    load_split_sets,
    write_feature_sets,
)
from genrelab.features.slicing import SliceSettings, slice_signal

__all__ = [
    "EMBEDDING_MODELS", "FEATURES", "KAGGLE_COLUMNS", "STATS", "ClassicFeatures", "EmbeddingFeatures", "FeatureBatch",
    "FeatureSet", "MFCCFeatures", "MelFeatures", "SliceSettings", "TableFeatures", "TrackFeatures", "extract_dataset",
    "load_feature_split", "make_extractor", "settings_dict", "slice_signal", "track_features", "write_feature_sets",
    "concat_feature_sets", "join_split", "load_split_sets",
]
