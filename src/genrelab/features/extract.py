"""The features stage: every track of the dataset sliced and its features extracted, once.

Each track's features are one entry of the per-track store (:mod:`genrelab.store`), keyed by
the track's audio digest, the variant's channels (and the key of the stems they are mixed
from), the sample rate, the slicing and the extractor's settings and ``VERSION``; the stage
computes only the entries the store lacks, then assembles the set for every track of the
dataset, whatever the split (:mod:`genrelab.features.sets`). The train and evaluate stages
join it with the split table, so changing the split never re-extracts a feature.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genrelab.compute import ComputeSettings, map_tracks
from genrelab.config import ConfigError
from genrelab.features.extractors import settings_dict
from genrelab.features.sets import FeatureWriter
from genrelab.features.slicing import SliceSettings
from genrelab.features.track import WORKER_PRELOAD as _TRACK_PRELOAD
from genrelab.features.track import TrackFeatures, track_feature_sets
from genrelab.store import (
    Entry,
    Store,
    StoreError,
    canonical_json,
    key_settings,
    store_key,
)

__all__ = ["extract_dataset", "FeaturesJob", "features_job", "track_entry", "TrackFeatures", "track_features"]

log = logging.getLogger(__name__)

WORKER_PRELOAD = _TRACK_PRELOAD
"""What local workers import before their first track: this module's map function
(:func:`features_track`) runs :mod:`~genrelab.features.track`; the job's extractor adds its own
(:func:`genrelab.cluster.preload_modules`)."""


@dataclass(frozen=True)
class FeaturesJob:
    """What a worker needs to get one track's features from the store, or compute them (picklable).

    Attributes
    ----------
    store : Store
    extractor : object
        A :data:`~genrelab.features.FEATURES` entry.
    variant : VariantSettings
    slicing : SliceSettings
    sr : int
        Hz.
    dataset_dir : str
        Output of the prepare stage (true stems of ``oracle`` variants).
    stems : StemsJob, optional
        The variant's separator, when a channel needs a separated stem.
    settings_key : str
        Canonical JSON of everything but the audio that changes the features.
    """

    store: Store
    extractor: Any
    variant: Any
    slicing: SliceSettings
    sr: int
    dataset_dir: str
    stems: Any = None
    settings_key: str = "{}"

    @property
    def transform(self) -> str:
        return str(self.extractor.name)

    @property
    def version(self) -> int:
        return int(getattr(type(self.extractor), "VERSION", 0))

    @property
    def worker_preload(self) -> tuple[str, ...]:
        """The extractor's (:func:`genrelab.cluster.preload_modules`)."""
        return tuple(getattr(self.extractor, "worker_preload", ()))

    def needed_stems(self) -> list[str]:
        return sorted({s for ch in self.variant.channels for s in ch} - {"mix"})


def _extractor_key(extractor: Any, store: Store) -> dict[str, Any]:
    """The extractor's settings that change its output (a model file by its content, not its folder)."""
    settings = key_settings(settings_dict(extractor))
    if hasattr(extractor, "embed_track"):
        from genrelab.embeddings.catalog import model_path

        settings["model_sha256"] = store.digest(model_path(extractor.model, extractor.models_dir))
    return settings


def features_job(extractor: Any, *, variant: Any, slicing: SliceSettings, sample_rate: int, dataset_dir: Path,
                 store: Store, separation: Mapping[str, Any] | None = None) -> FeaturesJob:
    """The :class:`FeaturesJob` of one features-stage configuration.

    Parameters
    ----------
    extractor : object
        From :func:`genrelab.features.make_extractor`.
    variant : VariantSettings
    slicing : SliceSettings
    sample_rate : int
        Hz.
    dataset_dir : Path
        Output of the prepare stage.
    store : Store
    separation : mapping, optional
        The ``separation`` params section (the variant's separator settings).
    """
    stems = None
    needed = {s for ch in variant.channels for s in ch} - {"mix"}
    if needed and variant.separator not in ("none", "oracle"):
        from genrelab.separation import stems_job

        stems = stems_job(variant.separator, (separation or {}).get(variant.separator), store=store,
                          sample_rate=sample_rate, load=False)
    key = {"extractor": _extractor_key(extractor, store), "channels": [list(ch) for ch in variant.channels],
           "sr": int(sample_rate)}
    if not hasattr(extractor, "embed_track"):  # embeddings cut their own patches: slicing does not matter
        key["slicing"] = key_settings(settings_dict(slicing))
    return FeaturesJob(store=store, extractor=extractor, variant=variant, slicing=slicing, sr=int(sample_rate),
                       dataset_dir=str(Path(dataset_dir).absolute()), stems=stems, settings_key=canonical_json(key))


def _track_key(track: Mapping[str, Any], job: FeaturesJob) -> tuple[str, dict]:
    store = job.store
    inputs: dict[str, Any] = {"audio": store.digest(track["path"]), "settings": json.loads(job.settings_key)}
    needed = job.needed_stems()
    if job.stems is not None:
        inputs["stems"] = job.stems.key(inputs["audio"])
    elif needed:  # oracle: the dataset's true stems, by content
        truth = Path(job.dataset_dir) / "stems" / str(track["track_id"])
        inputs["stems"] = {s: store.digest(truth / f"{s}.flac") if (truth / f"{s}.flac").is_file() else None
                           for s in needed}
    return store_key(job.transform, job.version, inputs), inputs


def track_entry(track: Mapping[str, Any], job: FeaturesJob) -> tuple[Entry, str]:
    """One track's features: the store's entry, computed and stored first if it is missing.

    A stem the variant needs but the store lacks is separated here, through the same
    function as the separate stage (:func:`genrelab.separation.track_stems`).

    Parameters
    ----------
    track : mapping
        ``track_id`` and ``path`` (absolute) of the track.
    job : FeaturesJob

    Returns
    -------
    entry : Entry
        Files ``vector.npy`` [shape=(n_slices, n_features)], ``starts.npy`` [shape=(n_slices,)]
        and ``frames.npy`` [shape=(n_slices, ...)] for extractors that make frames; ``info``
        holds ``n_slices``, ``n_features`` and ``frames_shape``.
    status : {'reused', 'computed'}

    Raises
    ------
    ValueError
        The track cannot be decoded or is shorter than one slice (it is skipped).
    """
    from genrelab.variants import load_variant

    key, inputs = _track_key(track, job)
    entry = job.store.get(job.transform, key)
    if entry is not None:
        return entry, "reused"
    stem_files = None
    if job.stems is not None:
        from genrelab.separation import track_stems

        stems_entry, _ = track_stems(track["path"], job.stems)
        stem_files = {s: stems_entry.file(f"{s}.flac") for s in job.needed_stems()}
    y = load_variant(track, job.variant, dataset_dir=Path(job.dataset_dir), sr=job.sr, stem_files=stem_files)
    feats = track_features(y, job.sr, extractor=job.extractor, slicing=job.slicing)

    def write(folder: Path) -> None:
        np.save(folder / "vector.npy", np.ascontiguousarray(feats.vector, dtype=np.float32))
        np.save(folder / "starts.npy", np.asarray(feats.starts_s, dtype=np.float64))
        if feats.frames is not None:
            np.save(folder / "frames.npy", np.ascontiguousarray(feats.frames, dtype=np.float32))

    info = {"n_slices": int(len(feats.vector)), "n_features": int(feats.vector.shape[1]),
            "frames_shape": list(feats.frames.shape[1:]) if feats.frames is not None else None}
    return job.store.put(job.transform, key, write, inputs=inputs, info=info), "computed"


def features_track(track: Mapping[str, Any], job: FeaturesJob) -> dict[str, Any]:
    """:func:`track_entry` returning only small facts: the function the stage maps (picklable)."""
    entry, status = track_entry(track, job)
    return {"key": entry.key, "status": status, **entry.info}


_SKIPPED = (ValueError, FileNotFoundError)  # AudioDecodeError is a ValueError; so is a too short track


def extract_dataset(
    index: pd.DataFrame,
    *,
    extractor,
    variant,
    slicing: SliceSettings,
    sample_rate: int,
    dataset_dir: Path,
    out_dir: Path,
    store: Store,
    separation: dict | None = None,
    separated: pd.DataFrame | None = None,
    compute: ComputeSettings | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Features of every track of the dataset (computing only what the store lacks), as one set.

    Parameters
    ----------
    index : pd.DataFrame
        Dataset index (``track_id``, ``genre``, ``path``, ``duration_s``).
    extractor : callable
        A :data:`FEATURES` entry (``extractor(slices, sr) -> FeatureBatch``).
    variant : genrelab.variants.VariantSettings
    slicing : SliceSettings
    sample_rate : int
        Rate every track is decoded and resampled to (Hz).
    dataset_dir : Path
        Output of the prepare stage.
    out_dir : Path
        Output folder (:mod:`genrelab.features.sets`); replaced atomically as a whole.
    store : Store
        The per-track store.
    separation : dict, optional
        The ``separation`` params section (the variant's separator settings).
    separated : pd.DataFrame, optional
        The separate stage's manifest: tracks whose separation failed are skipped with its reason.
    compute : ComputeSettings, optional
        Engine settings of :func:`genrelab.compute.map_tracks`.

    Returns
    -------
    summary : dict
        ``n_tracks``, ``n_slices``, ``n_skipped``, and the tracks whose features were
        ``computed`` or ``reused`` (numbers only).
    """
    labels = sorted(index["genre"].unique())
    label_of = {g: i for i, g in enumerate(labels)}
    if getattr(extractor, "precomputed", False):
        return _write_table_features(Path(dataset_dir) / "table.npz", index, labels=labels, out_dir=Path(out_dir),
                                     settings=settings_dict(extractor), variant=settings_dict(variant),
                                     slicing=settings_dict(slicing))
    longest = float(index["duration_s"].max()) if len(index) else 0.0
    if slicing.min_duration_s() > longest and not hasattr(extractor, "embed_track"):
        raise ConfigError(f"slicing.length_s: {slicing.length_s} s is longer than every clip "
                          f"(longest {longest:.2f} s); choose at most {longest:.2f}")
    if hasattr(extractor, "load"):
        extractor.load()  # a missing model file is a setup error, not a per-track one
    from genrelab.datasets import resolve_path

    job = features_job(extractor, variant=variant, slicing=slicing, sample_rate=sample_rate,
                       dataset_dir=Path(dataset_dir), store=store, separation=separation)
    failed_separation = {}
    if separated is not None and len(separated):
        bad = separated[separated["status"].astype(str) == "failed"]
        failed_separation = dict(zip(bad["track_id"].astype(str), bad["reason"].astype(str)))
    tracks, skipped = [], []
    for row in index.itertuples(index=False):
        tid = str(row.track_id)
        if tid in failed_separation:
            skipped.append({"track_id": tid, "reason": f"separation failed: {failed_separation[tid]}"})
            continue
        tracks.append({"track_id": tid, "path": str(resolve_path(dataset_dir, row.path).absolute()),
                       "genre": str(row.genre)})
    results: list[dict | None] = [None] * len(tracks)
    counts = {"computed": 0, "reused": 0}
    fn = functools.partial(features_track, job=job)
    for i, res in map_tracks(fn, tracks, settings=compute, desc=f"features ({job.transform})", progress=progress):
        if isinstance(res, StoreError):
            raise res
        if isinstance(res, _SKIPPED):
            skipped.append({"track_id": tracks[i]["track_id"], "reason": str(res)})
            log.warning("skipped %s: %s", tracks[i]["track_id"], res)
            continue
        if isinstance(res, BaseException):
            raise res
        results[i] = res
        counts[res["status"]] += 1
    done = [(t, r) for t, r in zip(tracks, results) if r is not None]
    if not done:
        raise RuntimeError("features: every track was skipped; see the log or skipped.csv for the reasons")
    shapes = {(r["n_features"], tuple(r["frames_shape"]) if r["frames_shape"] else None) for _, r in done}
    if len(shapes) > 1:
        raise RuntimeError(f"features: tracks gave features of different shapes {sorted(shapes, key=str)}")
    n_features, frames_shape = shapes.pop()
    names = extractor.names()
    if variant.n_channels > 1:
        names = [f"ch{c}_{n}" for c in range(variant.n_channels) for n in names]
    summary = {"n_tracks": len(done), "n_slices": int(sum(r["n_slices"] for _, r in done)), "n_skipped": len(skipped),
               **counts}
    info = {"labels": labels, "feature_names": names, "sample_rate": sample_rate,
            "frames_shape": list(frames_shape) if frames_shape else None,
            "features": settings_dict(extractor), "variant": settings_dict(variant),
            # what this run computed or reused is left out: the output must not depend on the store's warmth
            "slicing": settings_dict(slicing), "summary": {k: v for k, v in summary.items() if k not in counts}}
    log.info("features (%s): %d computed, %d reused, %d skipped", job.transform, counts["computed"],
             counts["reused"], len(skipped))
    from genrelab.io import atomic_dir

    skipped.sort(key=lambda s: s["track_id"])
    with atomic_dir(out_dir) as tmp:
        writer = FeatureWriter(tmp, summary["n_slices"], n_features, frames_shape)
        try:
            for track, res in done:
                entry = _entry_again(track, res, job)
                writer.append(track["track_id"], track["genre"], label_of[track["genre"]],
                              np.load(entry.file("vector.npy")),
                              np.load(entry.file("frames.npy")) if entry.has("frames.npy") else None,
                              np.load(entry.file("starts.npy")))
        except BaseException:
            writer.abort()
            raise
        writer.close(info=info, skipped=skipped)
    return summary


def _entry_again(track: Mapping[str, Any], res: Mapping[str, Any], job: FeaturesJob) -> Entry:
    """A finished track's entry, read back for the set (recomputed if it vanished meanwhile)."""
    entry = job.store.get(job.transform, res["key"])
    if entry is None:
        log.warning("store entry %s/%s of track %s vanished; computing it again", job.transform, res["key"],
                    track["track_id"])
        entry, _ = track_entry(track, job)
    if entry.info.get("n_slices") != res["n_slices"]:
        raise RuntimeError(f"store entry {job.transform}/{entry.key} of track {track['track_id']} changed "
                           f"while the set was written ({entry.info.get('n_slices')} slices, not {res['n_slices']})")
    return entry


def _write_table_features(table_path: Path, index: pd.DataFrame, *, labels: list[str], out_dir: Path,
                          settings: dict, variant: dict, slicing: dict) -> dict[str, Any]:
    """The feature set of an imported table: its rows of the index's tracks, in the same layout."""
    from genrelab.io import atomic_dir

    if not table_path.is_file():
        raise ConfigError(f"features=table needs a table dataset (dataset=gtzan_kaggle_table or fma_table); "
                          f"{table_path} is missing")
    t = np.load(table_path, allow_pickle=False)
    track_ids = t["track_id"].astype(str)
    keep = np.flatnonzero(np.isin(track_ids, index["track_id"].astype(str).to_numpy()))
    label_of = {g: i for i, g in enumerate(labels)}
    names = [str(n) for n in t["feature_names"]]
    X = t["X"]
    summary = {"n_tracks": int(len(np.unique(track_ids[keep]))), "n_slices": int(len(keep)), "n_skipped": 0,
               "computed": 0, "reused": 0}
    info = {"labels": labels, "feature_names": names, "sample_rate": None, "frames_shape": None,
            "features": settings, "variant": variant, "slicing": slicing, "summary": summary}
    with atomic_dir(out_dir) as tmp:
        writer = FeatureWriter(tmp, len(keep), X.shape[1], None)
        try:
            start = 0
            while start < len(keep):  # one track's rows at a time, in the table's order
                tid = track_ids[keep[start]]
                stop = start
                while stop < len(keep) and track_ids[keep[stop]] == tid:
                    stop += 1
                rows = keep[start:stop]
                genre = str(t["genre"][rows[0]])
                writer.append(tid, genre, label_of[genre], X[rows], None, np.zeros(len(rows)),
                              slice_idx=t["slice_idx"][rows])
                start = stop
        except BaseException:
            writer.abort()
            raise
        writer.close(info=info, skipped=[])
    return summary


def track_features(y: np.ndarray, sr: int, *, extractor, slicing: SliceSettings,
                   batch_slices: int = 64) -> TrackFeatures:
    """Slice one track and extract per-slice features, as the features stage does.

    Parameters
    ----------
    y : np.ndarray [shape=(n_channels, n)]
        The track's variant channels (:func:`variant_audio`).
    sr : int > 0
        Sample rate in Hz.
    extractor : callable
        A :data:`genrelab.features.FEATURES` entry (:func:`genrelab.features.make_extractor`).
    slicing : SliceSettings
    batch_slices : int > 0
        Slices per extractor call (bounds memory on long recordings; extractors treat every
        slice independently, so the result does not depend on it).

    Returns
    -------
    TrackFeatures

    Raises
    ------
    ValueError
        If the signal is shorter than one slice;
        :class:`~genrelab.features.checks.NonFiniteFeaturesError` (a ``ValueError``) if a
        feature is NaN or inf.

    See Also
    --------
    genrelab.features.track.track_feature_sets : several extractors from one analysis.
    """
    (feats,) = track_feature_sets(y, sr, extractors=[extractor], slicing=slicing, batch_slices=batch_slices).values()
    return feats
