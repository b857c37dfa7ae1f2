"""Slicing and per-slice features: MFCC, log-mel, and the classic GTZAN descriptor table.

Every extractor maps a batch of equal-length slices to

* ``vector`` : np.ndarray [shape=(n_slices, n_features)] summary statistics, the input of the
  classical classifiers, with ``names`` (n_features,);
* ``frames`` : np.ndarray [shape=(n_slices, n_bins, n_frames)] or None, the time-frequency
  representation the deep models read.

Extractors live in the :data:`FEATURES` registry. A feature set is written per split as a few
files (``<split>/X.npy``, ``<split>/S.npy``, ``<split>/meta.csv``) plus ``info.json``, never one
file per clip.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genrelab.config import ConfigError, from_mapping, require_choice

__all__ = [
    "SliceSettings", "slice_signal", "FEATURES", "make_extractor", "MFCCFeatures", "MelFeatures",
    "ClassicFeatures", "KAGGLE_COLUMNS", "FeatureBatch", "FeatureSet", "load_feature_split",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------- slicing
@dataclass(frozen=True)
class SliceSettings:
    """Settings of the ``slicing`` section.

    Attributes
    ----------
    length_s : float > 0
        Slice length in seconds.
    overlap : float in [0, 1)
        Fraction of a slice shared with the next one.
    """

    length_s: float = 3.0
    overlap: float = 0.0

    def __post_init__(self) -> None:
        if not self.length_s > 0:
            raise ConfigError(f"slicing.length_s: must be positive, got {self.length_s}")
        if not 0 <= self.overlap < 1:
            raise ConfigError(f"slicing.overlap: must be in [0, 1), got {self.overlap}")

    def hop_s(self) -> float:
        return self.length_s * (1.0 - self.overlap)


def slice_signal(y: np.ndarray, sr: int, settings: SliceSettings) -> tuple[np.ndarray, np.ndarray]:
    """Cut a signal into equal slices; a trailing remainder shorter than a slice is dropped.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)]
        Audio (any leading channel axes).
    sr : int > 0
        Sample rate in Hz.
    settings : SliceSettings

    Returns
    -------
    slices : np.ndarray [shape=(n_slices, ..., length)]
    starts_s : np.ndarray [shape=(n_slices,)]
        Start time of each slice in seconds.

    Raises
    ------
    ValueError
        If the signal is shorter than one slice.
    """
    length = int(round(settings.length_s * sr))
    hop = max(1, int(round(settings.hop_s() * sr)))
    n = y.shape[-1]
    if n < length:
        raise ValueError(f"signal of {n / sr:.2f} s is shorter than one slice of {settings.length_s} s")
    starts = np.arange(0, n - length + 1, hop)
    slices = np.stack([y[..., s:s + length] for s in starts])
    return slices, starts / float(sr)


# ------------------------------------------------------------------------------------ extractors
@dataclass
class FeatureBatch:
    """Features of a batch of slices (see the module docstring for shapes)."""

    vector: np.ndarray
    frames: np.ndarray | None


def _stats(frames: np.ndarray, stats: tuple[str, ...]) -> np.ndarray:
    """Summary statistics over time. frames (n, bins, T) -> (n, bins * len(stats))."""
    funcs = {"mean": np.mean, "std": np.std, "var": np.var, "min": np.min, "max": np.max}
    return np.concatenate([funcs[s](frames, axis=-1) for s in stats], axis=-1)


STATS = ("mean", "std", "var", "min", "max")


@dataclass(frozen=True)
class MFCCFeatures:
    """MFCC frame sequences and their summary statistics (librosa).

    ``frames`` is (n_slices, n_mfcc * (1 + 2 * deltas), n_frames); ``vector`` holds each
    coefficient's ``stats`` over time.
    """

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

    def __call__(self, slices: np.ndarray, sr: int) -> FeatureBatch:
        import librosa

        m = librosa.feature.mfcc(y=slices, sr=sr, n_mfcc=self.n_mfcc, n_fft=self.n_fft,
                                 hop_length=self.hop_length, n_mels=self.n_mels)
        if self.deltas:
            m = np.concatenate([m, librosa.feature.delta(m), librosa.feature.delta(m, order=2)], axis=-2)
        m = m.astype(np.float32)
        return FeatureBatch(_stats(m, self.stats).astype(np.float32), m)


@dataclass(frozen=True)
class MelFeatures:
    """Log-mel spectrograms (dB, absolute reference so that slices stay independent)."""

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

    def __call__(self, slices: np.ndarray, sr: int) -> FeatureBatch:
        import librosa

        S = librosa.feature.melspectrogram(y=slices, sr=sr, n_fft=self.n_fft, hop_length=self.hop_length,
                                           n_mels=self.n_mels, fmin=self.fmin, fmax=self.fmax)
        S = librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None).astype(np.float32)
        return FeatureBatch(_stats(S, self.stats).astype(np.float32), S)


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
    """The classic descriptor set of the Kaggle GTZAN features table, per slice.

    chroma_stft, rms, spectral centroid, bandwidth, rolloff, zero-crossing rate, harmony and
    perceptr (the harmonic and percussive waveforms of an HPSS), tempo, and 20 MFCCs; mean and
    variance of each, with the table's column names (:data:`KAGGLE_COLUMNS`). No frames.
    """

    name: str = "classic"
    n_fft: int = 2048
    hop_length: int = 512

    def names(self) -> list[str]:
        return list(KAGGLE_COLUMNS)

    def __call__(self, slices: np.ndarray, sr: int) -> FeatureBatch:
        import librosa

        kw = dict(n_fft=self.n_fft, hop_length=self.hop_length)
        feats = {
            "chroma_stft": librosa.feature.chroma_stft(y=slices, sr=sr, **kw),
            "rms": librosa.feature.rms(y=slices, frame_length=self.n_fft, hop_length=self.hop_length),
            "spectral_centroid": librosa.feature.spectral_centroid(y=slices, sr=sr, **kw),
            "spectral_bandwidth": librosa.feature.spectral_bandwidth(y=slices, sr=sr, **kw),
            "rolloff": librosa.feature.spectral_rolloff(y=slices, sr=sr, **kw),
            "zero_crossing_rate": librosa.feature.zero_crossing_rate(
                slices, frame_length=self.n_fft, hop_length=self.hop_length),
        }
        harmonic, percussive = _hpss_waveforms(slices, n_fft=self.n_fft, hop_length=self.hop_length)
        onset = librosa.onset.onset_strength(y=slices, sr=sr, hop_length=self.hop_length)
        tempo = np.asarray(librosa.feature.tempo(onset_envelope=onset, sr=sr, hop_length=self.hop_length))
        tempo = tempo.reshape(len(slices))
        mfcc = librosa.feature.mfcc(y=slices, sr=sr, n_mfcc=20, **kw)
        cols: dict[str, np.ndarray] = {}
        for key, f in feats.items():
            cols[f"{key}_mean"] = f.mean(axis=(-2, -1))
            cols[f"{key}_var"] = f.var(axis=(-2, -1))
        cols["harmony_mean"], cols["harmony_var"] = harmonic.mean(axis=-1), harmonic.var(axis=-1)
        cols["perceptr_mean"], cols["perceptr_var"] = percussive.mean(axis=-1), percussive.var(axis=-1)
        cols["tempo"] = tempo
        for i in range(20):
            cols[f"mfcc{i + 1}_mean"] = mfcc[:, i].mean(axis=-1)
            cols[f"mfcc{i + 1}_var"] = mfcc[:, i].var(axis=-1)
        vector = np.stack([cols[c] for c in KAGGLE_COLUMNS], axis=-1).astype(np.float32)
        return FeatureBatch(vector, None)


def _hpss_waveforms(slices: np.ndarray, *, n_fft: int, hop_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic and percussive waveforms of each slice (fast HPSS when available)."""
    try:
        from genrelab.separation.hpss import hpss_batch
    except ImportError:  # pragma: no cover - the fast path ships with the package
        import librosa

        h, p = librosa.effects.hpss(slices, n_fft=n_fft, hop_length=hop_length)
        return h, p
    out = hpss_batch(list(slices), n_fft=n_fft, hop_length=hop_length)
    return np.stack([h for h, _ in out]), np.stack([p for _, p in out])


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
    """

    name: str = "musicnn"
    model: str | None = None
    pooling: str = "none"
    patch_hop: int | None = None
    batch_size: int = 1
    models_dir: str | None = None

    def __post_init__(self) -> None:
        require_choice("features.name", self.name, EMBEDDING_MODELS)
        require_choice("features.pooling", self.pooling, ("none", "mean", "max", "meanstd"))
        if self.model is None:
            object.__setattr__(self, "model", EMBEDDING_MODELS[self.name])
        from genrelab.embeddings.store import get_spec

        try:
            get_spec(self.model)
        except Exception as exc:
            raise ConfigError(f"features.model: {exc}") from exc

    def names(self) -> list[str]:
        from genrelab.embeddings.store import get_spec

        dim = int(get_spec(self.model).output_dim)
        stats = ["mean", "std"] if self.pooling == "meanstd" else [self.pooling if self.pooling != "none" else "patch"]
        return [f"{self.name}{i}_{s}" for s in stats for i in range(dim)]

    def load(self) -> None:
        """Load the model now, so that a missing graph stops the stage before any track."""
        self._extractor()

    def _extractor(self):
        cache = _EMBEDDERS.get(self)
        if cache is None:
            from genrelab.embeddings import EmbeddingExtractor

            cache = _EMBEDDERS[self] = EmbeddingExtractor(self.model, models_dir=self.models_dir,
                                                          patch_hop=self.patch_hop, batch_size=self.batch_size)
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
        per_channel = [ext.embed(ch, sr) for ch in np.atleast_2d(y)]
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


@dataclass(frozen=True)
class TableFeatures:
    """Rows of a published feature table imported by the prepare stage (``dataset=*_table``).

    Nothing is extracted: the rows of ``<dataset>/table.npz`` become the feature sets.
    """

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


# ---------------------------------------------------------------------------------- feature sets
@dataclass
class FeatureSet:
    """Features of one split, as the train and evaluate stages read them.

    Attributes
    ----------
    X : np.ndarray [shape=(n_slices, n_features)]
    S : np.ndarray [shape=(n_slices, n_bins, n_frames) or (n_slices, n_channels, n_bins, n_frames)] or None
        Memory-mapped when read from disk.
    meta : pd.DataFrame
        ``track_id, slice_idx, start_s, label, genre`` per slice.
    info : dict
        ``labels`` (class names), ``feature_names`` and the settings used.
    """

    X: np.ndarray
    S: np.ndarray | None
    meta: pd.DataFrame
    info: dict = field(default_factory=dict)

    @property
    def y(self) -> np.ndarray:
        return self.meta["label"].to_numpy(dtype=np.int64)

    @property
    def track_id(self) -> np.ndarray:
        return self.meta["track_id"].astype(str).to_numpy()


def load_feature_split(features_dir: str | Path, split: str, *, mmap: bool = True) -> FeatureSet:
    """Read one split written by the features stage.

    Parameters
    ----------
    features_dir : path
        The features stage's output folder.
    split : {'train', 'valid', 'test'}
    mmap : bool
        Memory-map ``S`` instead of reading it into memory.
    """
    from genrelab.io import read_json

    root = Path(features_dir)
    folder = root / split
    if not (folder / "meta.csv").is_file():
        raise FileNotFoundError(f"{folder}: no features for split {split!r}; run the 'features' stage")
    info = read_json(root / "info.json")
    meta = pd.read_csv(folder / "meta.csv", dtype={"track_id": str, "genre": str})
    X = np.load(folder / "X.npy")
    S = np.load(folder / "S.npy", mmap_mode="r" if mmap else None) if (folder / "S.npy").is_file() else None
    return FeatureSet(X=X, S=S, meta=meta, info=info)


def settings_dict(obj: Any) -> dict:
    """Plain dict of a settings dataclass (for ``info.json``)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(obj).items()}



def extract_dataset(
    index: pd.DataFrame,
    split_table: pd.DataFrame,
    *,
    extractor,
    variant,
    slicing: SliceSettings,
    sample_rate: int,
    dataset_dir: Path,
    separated_dir: Path,
    out_dir: Path,
    separation: dict | None = None,
    leaky_fractions: dict | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Slice every track of the split table, extract features, write one feature set per split.

    Parameters
    ----------
    index : pd.DataFrame
        Dataset index (``track_id``, ``genre``, ``path``, ``duration_s``).
    split_table : pd.DataFrame
        Output of :func:`genrelab.splits.make_split`.
    extractor : callable
        A :data:`FEATURES` entry (``extractor(slices, sr) -> FeatureBatch``).
    variant : genrelab.variants.VariantSettings
    slicing : SliceSettings
    sample_rate : int
        Rate every track is decoded and resampled to (Hz).
    dataset_dir, separated_dir : Path
        Outputs of the prepare and separate stages.
    out_dir : Path
        Output folder; replaced atomically as a whole.
    separation : dict, optional
        The ``separation`` params section (selects which settings' stems to read).
    leaky_fractions : dict, optional
        Slice fractions for a leaky split.
    seed : int
        Seed of the leaky slice assignment.

    Returns
    -------
    summary : dict
        Counts of tracks and slices per split, and of skipped tracks (numbers only).
    """
    from tqdm.auto import tqdm

    from genrelab.inference import track_features
    from genrelab.splits import assign_slices
    from genrelab.variants import load_variant

    labels = sorted(index["genre"].unique())
    label_of = {g: i for i, g in enumerate(labels)}
    if getattr(extractor, "precomputed", False):
        return _write_table_features(Path(dataset_dir) / "table.npz", split_table, labels=labels, out_dir=out_dir,
                                     leaky_fractions=leaky_fractions, seed=seed, settings=settings_dict(extractor),
                                     variant=settings_dict(variant), slicing=settings_dict(slicing))
    longest = float(index["duration_s"].max()) if len(index) else 0.0
    if slicing.length_s > longest:
        raise ConfigError(f"slicing.length_s: {slicing.length_s} s is longer than every clip "
                          f"(longest {longest:.2f} s); choose at most {longest:.2f}")
    if hasattr(extractor, "load"):
        extractor.load()  # a missing model file is a setup error, not a per-track one
    tracks = index.set_index("track_id").loc[split_table["track_id"]].reset_index()
    vectors, frames, metas, skipped = [], [], [], []
    for _, track in tqdm(tracks.iterrows(), total=len(tracks), desc="features", unit="track", disable=not progress):
        try:
            y = load_variant(track, variant, dataset_dir=dataset_dir, separated_dir=separated_dir, sr=sample_rate,
                             separation=separation)
            feats = track_features(y, sample_rate, extractor=extractor, slicing=slicing)
        except (ValueError, FileNotFoundError) as exc:  # AudioDecodeError is a ValueError
            skipped.append({"track_id": track["track_id"], "reason": str(exc)})
            log.warning("skipped %s: %s", track["track_id"], exc)
            continue
        n_slices = len(feats.vector)
        vectors.append(feats.vector)
        if feats.frames is not None:
            frames.append(feats.frames)
        metas.append(pd.DataFrame({
            "track_id": track["track_id"], "slice_idx": np.arange(n_slices), "start_s": feats.starts_s,
            "label": label_of[track["genre"]], "genre": track["genre"],
        }))
    if not metas:
        raise RuntimeError("features: every track was skipped; see the log for the reasons")
    meta = pd.concat(metas, ignore_index=True)
    X = np.concatenate(vectors).astype(np.float32)
    S = np.concatenate(frames).astype(np.float32) if frames else None
    meta["split"] = assign_slices(meta["track_id"].to_numpy(), split_table, fractions=leaky_fractions, seed=seed)
    names = extractor.names()
    if variant.n_channels > 1:
        names = [f"ch{c}_{n}" for c in range(variant.n_channels) for n in names]
    info = {"labels": labels, "feature_names": names, "sample_rate": sample_rate,
            "frames_shape": list(S.shape[1:]) if S is not None else None,
            "features": settings_dict(extractor), "variant": settings_dict(variant),
            "slicing": settings_dict(slicing), "split_method": str(split_table["method"].iloc[0])}
    summary = _write_feature_sets(out_dir, X, S, meta, info=info, skipped=skipped)
    return summary


def _write_feature_sets(out_dir: Path, X: np.ndarray, S: np.ndarray | None, meta: pd.DataFrame, *,
                        info: dict, skipped: list[dict]) -> dict[str, Any]:
    """Write ``<split>/X.npy``, ``S.npy``, ``meta.csv`` and ``info.json`` atomically as one folder."""
    from genrelab.io import atomic_dir, save_npy, write_json, write_text
    from genrelab.splits import SPLITS

    summary: dict[str, Any] = {"n_tracks_skipped": len(skipped), "n_features": int(X.shape[1])}
    with atomic_dir(out_dir) as tmp:
        for split in SPLITS:
            mask = (meta["split"] == split).to_numpy()
            (tmp / split).mkdir()
            save_npy(tmp / split / "X.npy", X[mask])
            if S is not None:
                save_npy(tmp / split / "S.npy", S[mask])
            write_text(tmp / split / "meta.csv", meta.loc[mask].drop(columns="split").to_csv(index=False))
            summary[f"n_slices_{split}"] = int(mask.sum())
            summary[f"n_tracks_{split}"] = int(meta.loc[mask, "track_id"].nunique())
        write_text(tmp / "skipped.csv", pd.DataFrame(skipped, columns=["track_id", "reason"]).to_csv(index=False))
        write_json(tmp / "info.json", {**info, "summary": summary})
    return summary


def _write_table_features(table_path: Path, split_table: pd.DataFrame, *, labels: list[str], out_dir: Path,
                          leaky_fractions: dict | None, seed: int, settings: dict, variant: dict,
                          slicing: dict) -> dict[str, Any]:
    """Feature sets from an imported table (rows of tracks in the split table)."""
    from genrelab.splits import assign_slices

    if not table_path.is_file():
        raise ConfigError(f"features=table needs a table dataset (dataset=gtzan_kaggle_table or fma_table); "
                          f"{table_path} is missing")
    t = np.load(table_path, allow_pickle=False)
    keep = np.isin(t["track_id"], split_table["track_id"].astype(str).to_numpy())
    label_of = {g: i for i, g in enumerate(labels)}
    meta = pd.DataFrame({"track_id": t["track_id"][keep], "slice_idx": t["slice_idx"][keep],
                         "start_s": 0.0, "genre": t["genre"][keep]})
    meta["label"] = meta["genre"].map(label_of).astype(int)
    meta["split"] = assign_slices(meta["track_id"].to_numpy(), split_table, fractions=leaky_fractions, seed=seed)
    info = {"labels": labels, "feature_names": [str(n) for n in t["feature_names"]], "sample_rate": None,
            "frames_shape": None, "features": settings, "variant": variant, "slicing": slicing,
            "split_method": str(split_table["method"].iloc[0])}
    return _write_feature_sets(out_dir, t["X"][keep].astype(np.float32), None,
                               meta[["track_id", "slice_idx", "start_s", "label", "genre", "split"]],
                               info=info, skipped=[])
