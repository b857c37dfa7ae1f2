"""The features stage: slicing, per-slice extractors, and the feature sets it writes.

* :mod:`~genrelab.features.slicing` -- ``SliceSettings`` and ``slice_signal``;
* :mod:`~genrelab.features.analysis` -- ``SliceAnalysis``: one STFT per slice, shared by
  every extractor;
* :mod:`~genrelab.features.extractors` -- the :data:`FEATURES` registry (MFCC, log-mel, the
  classic GTZAN descriptors, pretrained embeddings, imported tables);
* :mod:`~genrelab.features.descriptors` -- the classic descriptors, per slice;
* :mod:`~genrelab.features.reference` -- every slice extractor as plain librosa calls (the
  definitions, for tests and benchmarks);
* :mod:`~genrelab.features.track` -- ``track_feature_sets`` (one track's slices through
  several extractors) and ``file_feature_sets`` (decode, then the same);
* :mod:`~genrelab.features.extract` -- ``extract_dataset`` (the stage, over the per-track
  store) and ``track_features`` (one track's slices, shared with ``genrelab predict``);
* :mod:`~genrelab.features.sets` -- ``FeatureSet``, the files on disk (one set for every track)
  and ``load_feature_split`` (a set joined with the split table).
"""

from genrelab.features.extract import (
    FeaturesJob,
    TrackFeatures,
    extract_dataset,
    features_job,
    track_entry,
    track_features,
)
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
    FeatureWriter,
    RowSubset,
    join_split,
    load_feature_split,
    load_split_sets,
    write_feature_set,
)
from genrelab.features.slicing import SliceSettings, slice_signal
from genrelab.features.track import file_feature_sets, track_feature_sets

__all__ = [
    "EMBEDDING_MODELS", "FEATURES", "KAGGLE_COLUMNS", "STATS", "ClassicFeatures", "EmbeddingFeatures", "FeatureBatch",
    "FeatureSet", "MFCCFeatures", "MelFeatures", "SliceSettings", "TableFeatures", "TrackFeatures", "extract_dataset",
    "load_feature_split", "make_extractor", "settings_dict", "slice_signal", "track_features", "FeatureWriter",
    "RowSubset", "FeaturesJob", "features_job", "track_entry", "join_split", "load_split_sets",
    "write_feature_set", "file_feature_sets", "track_feature_sets",
]
