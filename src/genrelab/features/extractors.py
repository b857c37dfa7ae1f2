"""Per-slice feature extractors: MFCC, log-mel, the classic GTZAN descriptors, embeddings.

Every extractor maps a batch of equal-length slices to

* ``vector`` : np.ndarray [shape=(n_slices, n_features)] summary statistics, the input of the
  classical classifiers, with ``names`` (n_features,);
* ``frames`` : np.ndarray [shape=(n_slices, n_bins, n_frames)] or None, the time-frequency
  representation the deep models read.

Each slice's features depend on that slice alone (dB clipping, tuning and onset envelopes are
per slice), never on the other slices of a batch or on the batch size. Extractors read their
spectra from a shared :class:`~genrelab.features.analysis.SliceAnalysis`
(``extractor.extract(analysis)``), so that one STFT per slice serves every extractor and
descriptor; ``extractor(slices, sr)`` makes a fresh analysis. All of them frame slices as
``librosa.stft(..., center=True, pad_mode='reflect')`` (see :mod:`~genrelab.features.analysis`);
:mod:`~genrelab.features.reference` writes each one as plain librosa calls on one slice.

Extractors live in the :data:`FEATURES` registry and are built by :func:`make_extractor`. Each
class has a ``VERSION``: the per-track store keys results on it, so it is raised whenever the
numbers an extractor returns change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from genrelab.config import ConfigError, from_mapping, require_choice
from genrelab.features.analysis import SliceAnalysis

__all__ = ["FeatureBatch", "STATS", "MFCCFeatures", "MelFeatures", "KAGGLE_COLUMNS", "ClassicFeatures",
           "EMBEDDING_MODELS", "EmbeddingFeatures", "TableFeatures", "FEATURES", "make_extractor", "settings_dict"]


@dataclass
class FeatureBatch:
    """Features of a batch of slices (see the module docstring for shapes)."""

    vector: np.ndarray
    frames: np.ndarray | None


STATS = ("mean", "std", "var", "min", "max")


def _stats(frames: np.ndarray, stats: tuple[str, ...], *, axis: int = -1) -> np.ndarray:
    """Summary statistics over time. frames (n, bins, T) -> (n, bins * len(stats)), float32."""
    funcs = {"mean": np.mean, "std": np.std, "var": np.var, "min": np.min, "max": np.max}
    return np.concatenate([funcs[s](frames, axis=axis) for s in stats], axis=-1).astype(np.float32)


def _dct(db: np.ndarray, n: int) -> np.ndarray:
    """First ``n`` orthonormal DCT-II coefficients along the last axis (librosa's MFCC)."""
    import scipy.fft

    return scipy.fft.dct(db, type=2, norm="ortho", axis=-1)[..., :n]


@dataclass(frozen=True)
class MFCCFeatures:
    """MFCC frame sequences and their summary statistics.

    ``librosa.feature.mfcc(y=slice, sr=sr, n_mfcc=..., n_mels=..., n_fft=..., hop_length=...,
    pad_mode='reflect')`` of each slice (log-mel clipped 80 dB below the slice's own maximum).
    ``frames`` is (n_slices, n_mfcc * (1 + 2 * deltas), n_frames); ``vector`` holds each
    coefficient's ``stats`` over time.
    """

    VERSION: ClassVar[int] = 4  # 2: per-slice dB reference, reflect-padded frames; 3: banded mel projection;
    # 4: power as re * re + im * im
    name: str = "mfcc"
    n_mfcc: int = 20
    n_mels: int = 128
    n_fft: int = 2048
    hop_length: int = 512
    deltas: bool = False
    stats: tuple = ("mean", "std")

    def __post_init__(self) -> None:
        for key in ("n_mfcc", "n_mels", "n_fft", "hop_length"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"features.{key}: must be positive, got {getattr(self, key)}")
        if self.n_mfcc > self.n_mels:
            raise ConfigError(f"features.n_mfcc: {self.n_mfcc} exceeds n_mels={self.n_mels}")
        for s in self.stats:
            require_choice("features.stats", s, STATS)

    def names(self) -> list[str]:
        rows = [f"mfcc{i + 1}" for i in range(self.n_mfcc)]
        if self.deltas:
            rows += [f"dmfcc{i + 1}" for i in range(self.n_mfcc)] + [f"ddmfcc{i + 1}" for i in range(self.n_mfcc)]
        return [f"{r}_{s}" for s in self.stats for r in rows]

    def extract(self, analysis: SliceAnalysis) -> FeatureBatch:
        db = analysis.mel_db(self.n_fft, self.hop_length, self.n_mels, 0.0, None, 80.0)
        m = np.ascontiguousarray(_dct(db, self.n_mfcc).transpose(0, 2, 1))
        if self.deltas:
            import librosa

            m = np.concatenate([m, librosa.feature.delta(m), librosa.feature.delta(m, order=2)], axis=-2)
        return FeatureBatch(_stats(m, self.stats), m)

    @property
    def worker_preload(self) -> tuple[str, ...]:
        """What a fresh worker imports before its first slice (:func:`genrelab.cluster.preload_modules`)."""
        return ("librosa.feature.utils",) if self.deltas else ()  # deltas: Savitzky-Golay filters of scipy.signal

    def __call__(self, slices: np.ndarray, sr: int) -> FeatureBatch:
        return self.extract(SliceAnalysis(slices, sr))


@dataclass(frozen=True)
class MelFeatures:
    """Log-mel spectrograms (dB re 1, no clipping, so that slices stay independent).

    ``librosa.power_to_db(librosa.feature.melspectrogram(y=slice, ..., pad_mode='reflect'),
    ref=1.0, amin=1e-10, top_db=None)``.
    """

    VERSION: ClassVar[int] = 4  # 2: reflect-padded frames; 3: banded mel projection; 4: power as re * re + im * im
    name: str = "mel"
    n_mels: int = 96
    n_fft: int = 2048
    hop_length: int = 512
    fmin: float = 0.0
    fmax: float | None = None
    stats: tuple = ("mean", "std")

    def __post_init__(self) -> None:
        for key in ("n_mels", "n_fft", "hop_length"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"features.{key}: must be positive, got {getattr(self, key)}")
        for s in self.stats:
            require_choice("features.stats", s, STATS)

    def names(self) -> list[str]:
        return [f"mel{i + 1}_{s}" for s in self.stats for i in range(self.n_mels)]

    def extract(self, analysis: SliceAnalysis) -> FeatureBatch:
        db = analysis.mel_db(self.n_fft, self.hop_length, self.n_mels, self.fmin, self.fmax, None)
        return FeatureBatch(_stats(db, self.stats, axis=1), np.ascontiguousarray(db.transpose(0, 2, 1)))

    def __call__(self, slices: np.ndarray, sr: int) -> FeatureBatch:
        return self.extract(SliceAnalysis(slices, sr))


KAGGLE_COLUMNS: tuple[str, ...] = (
    "chroma_stft_mean", "chroma_stft_var", "rms_mean", "rms_var", "spectral_centroid_mean",
    "spectral_centroid_var", "spectral_bandwidth_mean", "spectral_bandwidth_var", "rolloff_mean",
    "rolloff_var", "zero_crossing_rate_mean", "zero_crossing_rate_var", "harmony_mean", "harmony_var",
    "perceptr_mean", "perceptr_var", "tempo",
    *[f"mfcc{i}_{s}" for i in range(1, 21) for s in ("mean", "var")],
)
"""Feature columns of the widely used Kaggle GTZAN table (``features_30_sec.csv`` without
``filename``, ``length`` and ``label``), in its order."""


@dataclass(frozen=True)
class ClassicFeatures:
    """The classic descriptor set of the Kaggle GTZAN features tables, per slice.

    chroma_stft, rms, spectral centroid, bandwidth, rolloff, zero-crossing rate, harmony and
    perceptr (the harmonic and percussive waveforms of an HPSS), tempo, and 20 MFCCs; mean and
    variance of each, with the tables' column names (:data:`KAGGLE_COLUMNS`). No frames.

    The definitions are those that produced the Kaggle tables (librosa before 0.10, hence
    reflect-padded frames); on a whole 30 s GTZAN clip (``slicing.whole=true``) every column
    equals ``features_30_sec.csv`` to float rounding:

    * ``tempo``: the global tempo of ``librosa.beat.beat_track(y=slice, sr=sr)``, i.e.
      ``librosa.feature.tempo`` of the onset envelope aggregated with the *median* over mel
      bands (the plain ``onset_strength`` mean doubles or halves it on about 30 % of GTZAN);
    * ``harmony``/``perceptr``: ``librosa.effects.hpss`` with its inverse STFT
      ``hop_length * (n_frames - 1)`` samples long, zero-padded to the slice (librosa < 0.10);
    * the rest: ``librosa.feature.*`` with ``n_fft`` / ``hop_length`` (frame length ``n_fft``
      for rms and zero-crossing rate) and the tuning of ``chroma_stft`` estimated per slice.

    See :mod:`~genrelab.features.descriptors` for each computation.
    """

    VERSION: ClassVar[int] = 4  # 2: per-slice tuning/onsets, beat_track tempo, Kaggle framing and HPSS;
    # 3: banded mel projection; 4: power as re * re + im * im
    worker_preload: ClassVar[tuple[str, ...]] = ("librosa.filters", "librosa.core.pitch",
                                                 "genrelab.features.descriptors")
    """What a fresh worker imports before its first slice (:func:`genrelab.cluster.preload_modules`)."""
    name: str = "classic"
    n_fft: int = 2048
    hop_length: int = 512

    def __post_init__(self) -> None:
        for key in ("n_fft", "hop_length"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"features.{key}: must be positive, got {getattr(self, key)}")

    def names(self) -> list[str]:
        return list(KAGGLE_COLUMNS)

    def extract(self, analysis: SliceAnalysis) -> FeatureBatch:
        from genrelab.features import descriptors as d

        a, n_fft, hop = analysis, self.n_fft, self.hop_length
        cols: dict[str, np.ndarray] = {}

        def add(key: str, values: np.ndarray) -> None:
            axes = tuple(range(1, values.ndim))
            cols[f"{key}_mean"] = values.mean(axis=axes, dtype=np.float64)
            cols[f"{key}_var"] = values.var(axis=axes, dtype=np.float64)

        add("chroma_stft", d.chroma(a, n_fft, hop))
        add("rms", d.rms(a, n_fft, hop))
        centroid, bandwidth = d.spectral_shape(a, n_fft, hop)
        add("spectral_centroid", centroid)
        add("spectral_bandwidth", bandwidth)
        add("rolloff", d.rolloff(a, n_fft, hop))
        add("zero_crossing_rate", d.zero_crossing_rate(a, n_fft, hop))
        harmonic, percussive = d.hpss_waveforms(a, n_fft, hop)
        add("harmony", harmonic)
        add("perceptr", percussive)
        del harmonic, percussive
        cols["tempo"] = d.tempo(d.onset_envelope(a, n_fft, hop), a.sr, hop)
        mfcc = _dct(a.mel_db(n_fft, hop, 128, 0.0, None, 80.0), 20)  # (n, frames, 20)
        means, variances = mfcc.mean(axis=1, dtype=np.float64), mfcc.var(axis=1, dtype=np.float64)
        for i in range(20):
            cols[f"mfcc{i + 1}_mean"], cols[f"mfcc{i + 1}_var"] = means[:, i], variances[:, i]
        return FeatureBatch(np.stack([cols[c] for c in KAGGLE_COLUMNS], axis=-1).astype(np.float32), None)

    def __call__(self, slices: np.ndarray, sr: int) -> FeatureBatch:
        return self.extract(SliceAnalysis(slices, sr))


EMBEDDING_MODELS = {"musicnn": "msd-musicnn-1", "vggish": "audioset-vggish-3",
                    "effnet_discogs": "discogs-effnet-bs64-1"}
"""Default Essentia model of each embedding feature (``features.model`` picks another)."""


@dataclass(frozen=True)
class EmbeddingFeatures:
    """Pretrained embeddings (essentia-tensorflow) at each model's own rate and patching.

    The model's patches replace the slices: ``pooling: none`` keeps one row per patch (the
    classifier votes over a track's patches), ``mean``/``max``/``meanstd`` pool each track into
    one row. One model is loaded per process, in a worker subprocess, so TensorFlow never
    shares a process with torch. ``models_dir`` comes from the ``models.dir`` parameter.

    ``output`` chooses the layer: ``embedding`` (the model's registered embedding, e.g.
    MusiCNN's 200-d penultimate layer) or ``taggram`` (its tag activations, e.g. the 50 MSD
    tags of MusiCNN, for models that have a tag output).
    """

    VERSION: ClassVar[int] = 1  # bump when the output changes: the store recomputes it
    name: str = "musicnn"
    model: str | None = None
    pooling: str = "none"
    patch_hop: int | None = None
    batch_size: int = 1
    output: str = "embedding"
    models_dir: str | None = None

    def __post_init__(self) -> None:
        require_choice("features.name", self.name, EMBEDDING_MODELS)
        require_choice("features.pooling", self.pooling, ("none", "mean", "max", "meanstd"))
        require_choice("features.output", self.output, ("embedding", "taggram"))
        if self.model is None:
            object.__setattr__(self, "model", EMBEDDING_MODELS[self.name])
        from genrelab.embeddings.catalog import MODELS, get_spec

        try:
            spec = get_spec(self.model)
        except Exception as exc:
            raise ConfigError(f"features.model: {exc}") from exc
        if self.output == "taggram" and (spec.tags_node is None or not spec.tags_dim):
            tagged = sorted(n for n, m in MODELS.items() if m.kind == "embedding" and m.tags_node and m.tags_dim)
            raise ConfigError(f"features.output: {self.model!r} has no tag output, so 'taggram' is not available; "
                              f"use output=embedding, or a model with tags: {', '.join(tagged)}")

    def _node(self) -> str | None:
        """The graph output to read (``None``: the model's registered embedding)."""
        from genrelab.embeddings.catalog import get_spec

        return get_spec(self.model).tags_node if self.output == "taggram" else None

    def names(self) -> list[str]:
        from genrelab.embeddings.catalog import get_spec

        spec = get_spec(self.model)
        stats = ["mean", "std"] if self.pooling == "meanstd" else [self.pooling if self.pooling != "none" else "patch"]
        if self.output == "taggram":
            tags = ([t.replace(" ", "_") for t in spec.classes] if len(spec.classes) == spec.tags_dim
                    else [f"tag{i}" for i in range(spec.tags_dim)])
            return [f"{self.name}_{t}_{s}" for s in stats for t in tags]
        return [f"{self.name}{i}_{s}" for s in stats for i in range(int(spec.output_dim))]

    def load(self) -> None:
        """Load the model now, so that a missing graph stops the stage before any track."""
        self._extractor()

    def _extractor(self):
        cache = _EMBEDDERS.get(self)
        if cache is None:
            from genrelab.embeddings import EmbeddingExtractor

            # One single-threaded model worker per core (one inside a compute task, where the
            # cores are shared out already): two 1-thread TensorFlow sessions beat one 2-thread one.
            cache = _EMBEDDERS[self] = EmbeddingExtractor(self.model, models_dir=self.models_dir, output=self._node(),
                                                          patch_hop=self.patch_hop, batch_size=self.batch_size,
                                                          n_workers=_model_workers(), n_threads=1)
        return cache

    def embed_track(self, y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of one track's channels.

        Parameters
        ----------
        y : np.ndarray [shape=(n_channels, n)]
        sr : int

        Returns
        -------
        vector : np.ndarray [shape=(n_rows, n_channels * dim)]
            One row per patch, or one pooled row.
        starts_s : np.ndarray [shape=(n_rows,)]
        """
        from genrelab.embeddings import pool

        ext = self._extractor()
        per_channel = ext.embed_many([(ch, sr) for ch in np.atleast_2d(y)])
        n = min(len(e) for e, _ in per_channel)
        if n == 0:
            raise ValueError("too short for one embedding patch")
        emb = np.concatenate([e[:n] for e, _ in per_channel], axis=1)
        starts = per_channel[0][1][:n]
        if self.pooling != "none":
            dim = per_channel[0][0].shape[1]
            emb = np.concatenate([pool(emb[:, c * dim:(c + 1) * dim], self.pooling) for c in range(len(per_channel))])
            return emb[None].astype(np.float32), np.zeros(1)
        return emb.astype(np.float32), np.asarray(starts, dtype=float)


_EMBEDDERS: dict[EmbeddingFeatures, Any] = {}


def _model_workers() -> int:
    """Embedding model processes to start: one per core, or one inside a compute task."""
    from genrelab import cluster, compute

    return 1 if compute._in_worker() else cluster.local_cpus()


@dataclass(frozen=True)
class TableFeatures:
    """Rows of a published feature table imported by the prepare stage (``dataset=*_table``).

    Nothing is extracted: the rows of ``<dataset>/table.npz`` become the feature sets.
    """

    VERSION: ClassVar[int] = 1
    name: str = "table"
    precomputed: bool = True

    def names(self) -> list[str]:  # pragma: no cover - read from the table
        return []

FEATURES: dict[str, type] = {"mfcc": MFCCFeatures, "mel": MelFeatures, "classic": ClassicFeatures,
                             "musicnn": EmbeddingFeatures, "vggish": EmbeddingFeatures,
                             "effnet_discogs": EmbeddingFeatures, "table": TableFeatures}
"""Feature extractors by name (the ``features.name`` choices)."""


def make_extractor(settings: dict[str, Any], *, models_dir: str | None = None):
    """Build the extractor named ``settings['name']`` from the ``features`` section.

    Parameters
    ----------
    settings : dict
        The ``features`` section.
    models_dir : str, optional
        Folder of pretrained model files (the ``models.dir`` parameter), for embeddings.
    """
    name = settings.get("name")
    require_choice("features.name", name, FEATURES)
    if FEATURES[name] is EmbeddingFeatures:
        settings = {**settings, "models_dir": models_dir}
    return from_mapping(FEATURES[name], settings, section="features")


def features_settings(settings: dict[str, Any]):
    """Validate the ``features`` section without loading anything (see :func:`make_extractor`)."""
    return make_extractor(settings)


def settings_dict(obj: Any) -> dict:
    """Plain dict of a settings dataclass (for ``info.json``)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(obj).items()}
