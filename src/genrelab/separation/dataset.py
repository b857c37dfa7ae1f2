"""The separate stage: every track's stems for one separator, kept in the per-track store.

A track's stems are one store entry (``<stem>.flac`` files, 16-bit FLAC at the pipeline's
sample rate) under the key of (the track's audio digest, the separator, the settings that
change its output, the separator's ``VERSION``). :func:`track_stems` returns that entry,
computing it only when it is missing; the separate stage maps it over the dataset, and the
features stage calls the same function for any stem the store lacks, so the store stays a
cache: deleting it changes no result, only time. Interrupting a run loses at most the tracks
in flight.

On datasets that know their true stems (the built-in synthetic one) each track's SDR and
SI-SDR against them are also kept in the store (transform ``separation_quality``).
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genrelab.compute import ComputeSettings, map_tracks
from genrelab.io import AudioDecodeError, load_audio, write_audio, write_json
from genrelab.store import (
    Entry,
    Store,
    StoreError,
    canonical_json,
    key_settings,
    store_key,
)

__all__ = ["StemsJob", "stems_job", "object_job", "track_stems", "separate_chunk", "separate_track", "separate_tracks",
           "separate_dataset", "score_track", "summarize_quality", "SEPARATED_PARTS", "TRUE_PARTS", "QUALITY_VERSION",
           "MANIFEST_COLUMNS"]

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("track_id", "key", "status", "reason")
"""Columns of the separate stage's output table (``status``: ``ok`` or ``failed``)."""

SEPARATED_PARTS: dict[str, dict[str, tuple[str, ...]]] = {
    "hpss": {"harmonic": ("harmonic",), "percussive": ("percussive",)},
    "demucs": {"harmonic": ("vocals", "other"), "percussive": ("drums", "bass")},
}
"""How each separator's stems estimate the harmonic (vocals + other) and percussive
(drums + bass) parts of a track."""

TRUE_PARTS = {"harmonic": ("vocals", "other"), "percussive": ("drums", "bass")}

QUALITY_VERSION = 1
"""Version of the per-track scores (bump when :func:`score_track` changes)."""

GPU_BATCHES_PER_TASK = 4
"""A GPU task separates this many batches, so that decoding the next clips overlaps the model
(:meth:`~genrelab.separation.demucs.DemucsSeparator.separate_stream`) for most of the task."""


def _separator_class(name: str) -> Any:
    """The class a registry name builds (its ``VERSION``, ``stems`` and ``separate_batch``)."""
    from genrelab.separation import SEPARATORS

    if name == "demucs":  # the registry holds a factory that imports torch only when called
        from genrelab.separation.demucs import DemucsSeparator

        return DemucsSeparator
    return SEPARATORS[name]


def _weight_files(name: str, settings: Mapping[str, Any]) -> list[Path]:
    """Files whose content the separator's output depends on (Demucs weights)."""
    if name != "demucs":
        return []
    from genrelab.separation.demucs import required_weight_files

    return [f.path for f in required_weight_files(settings.get("model", "htdemucs"), repo=settings.get("repo"))]


@dataclass(frozen=True)
class StemsJob:
    """What a worker needs to get one track's stems from the store, or compute them (picklable).

    Built by :func:`stems_job` (from a registry name and its settings) or by
    :func:`separate_tracks` (from a separator object).

    Attributes
    ----------
    store : Store
    transform : str
        The store's name for this separator (``'hpss'``, ``'demucs'``).
    version : int
        The separator's ``VERSION``.
    settings_key : str
        Canonical JSON of the settings that change the stems (weights' digests included).
    sr : int
        Rate the audio is decoded at and the stems are written at (Hz).
    stems : tuple of str
        Stems kept.
    build : tuple of (str, str), optional
        ``(registry name, settings JSON)`` to build the separator in a worker.
    separator : object, optional
        An already built separator (used in this process; pickled to workers otherwise).
    batch_size : int
        Tracks per ``separate_batch`` call (1 when the separator cannot batch); a task of the
        map holds one batch, :data:`GPU_BATCHES_PER_TASK` on a GPU.
    gpu : bool
        The separator runs on a CUDA device: its tasks ask the engine for a GPU.
    """

    store: Store
    transform: str
    version: int
    settings_key: str
    sr: int
    stems: tuple[str, ...]
    build: tuple[str, str] | None = None
    separator: Any = field(default=None, compare=False)
    batch_size: int = 1
    gpu: bool = False

    def key(self, audio_digest: str) -> str:
        """Store key of the stems of the audio with this content digest."""
        return store_key(self.transform, self.version, {
            "audio": audio_digest, "settings": json.loads(self.settings_key), "sr": int(self.sr),
            "mono": True, "format": "flac/PCM_16"})

    def get_separator(self):
        if self.separator is not None:
            return self.separator
        assert self.build is not None
        from genrelab.separation import cached_separator

        return cached_separator(*self.build)


def stems_job(separator: str, settings: Mapping[str, Any] | None, *, store: Store, sample_rate: int,
              load: bool = True) -> StemsJob:
    """The :class:`StemsJob` of a registry separator (``'hpss'``, ``'demucs'``).

    Parameters
    ----------
    separator : str
        A key of :data:`genrelab.separation.SEPARATORS`.
    settings : mapping
        Its settings (the ``separation.<separator>`` params section).
    store : Store
    sample_rate : int
        Hz.
    load : bool
        Build the separator now (Demucs: load its weights), so that missing or corrupt weights
        fail before any track; with ``False`` it is built only if a track needs computing.

    Raises
    ------
    genrelab.separation.SeparationParameterError
        Unknown separator or bad settings.
    genrelab.separation.MissingWeightsError
        Demucs weights are not on disk.
    """
    from genrelab.separation import SEPARATORS, SeparationParameterError, cached_separator, resolve_device

    if separator not in SEPARATORS:
        raise SeparationParameterError(
            f"unknown separator {separator!r}; valid choices: {', '.join(sorted(SEPARATORS))}"
        )
    cls = _separator_class(separator)
    settings = dict(settings or {})
    settings_json = canonical_json(settings)
    built = None
    weights = _weight_files(separator, settings)
    if load or any(not p.is_file() for p in weights):
        built = cached_separator(separator, settings_json)  # raises MissingWeightsError when absent
        stems = tuple(built.stems)
    else:
        from genrelab.separation.demucs import DEMUCS_STEMS

        stems = tuple(getattr(cls, "stems", ()) or DEMUCS_STEMS)
    version = int(getattr(cls, "VERSION", 0))
    device = resolve_device(settings.get("device", "auto"))
    key = key_settings(settings)
    if "precision" in key:  # 'auto' means fp16 on CUDA, fp32 on the CPU: the key holds what runs
        from genrelab.separation.demucs import resolve_precision

        key["precision"] = resolve_precision(key["precision"], device)
    if weights:
        key["weights"] = [store.digest(p) for p in weights]
    batch = getattr(built, "batch_size", settings.get("batch_size", 1))
    if not isinstance(batch, int) or batch < 1 or not callable(getattr(cls, "separate_batch", None)):
        batch = 1
    return StemsJob(store=store, transform=separator, version=version, settings_key=canonical_json(key),
                    sr=int(sample_rate), stems=stems, build=(separator, settings_json),
                    batch_size=batch, gpu=device.type == "cuda")


def _put_stems(job: StemsJob, key: str, digest: str, out: Mapping[str, np.ndarray]) -> Entry:
    missing = [s for s in job.stems if s not in out]
    if missing:
        raise KeyError(f"separator returned stems {sorted(out)}, missing {missing}")

    def write(folder: Path) -> None:
        for stem in job.stems:
            y = np.asarray(out[stem], dtype=np.float32)
            write_audio(folder / f"{stem}.flac", y.T if y.ndim == 2 else y, job.sr)

    return job.store.put(job.transform, key, write, inputs={"audio": digest, "settings": json.loads(job.settings_key),
                                                            "sr": job.sr, "version": job.version})


def _usable(entry: Entry | None, job: StemsJob) -> bool:
    return entry is not None and all(entry.has(f"{s}.flac") for s in job.stems)


def track_stems(path: str | Path, job: StemsJob) -> tuple[Entry, str]:
    """One track's stems: the store's entry, computed and stored first if it is missing.

    Parameters
    ----------
    path : str or Path
        The track's audio file.
    job : StemsJob

    Returns
    -------
    entry : Entry
        ``entry.file('<stem>.flac')`` is each stem.
    status : {'reused', 'computed'}

    Raises
    ------
    genrelab.io.AudioDecodeError
        The file cannot be decoded.
    StoreError
        The store cannot be written (full disk ...).
    """
    digest, key, entry = _stored(path, job)
    if entry is not None:
        return entry, "reused"
    out = job.get_separator().separate(_load_mono(path, sr=job.sr), job.sr)
    return _put_stems(job, key, digest, out), "computed"


def _stored(path: str | Path, job: StemsJob) -> tuple[str, str, Entry | None]:
    """A track's content digest, its key, and its stored stems (``None`` when they must be made)."""
    digest = job.store.digest(path)
    key = job.key(digest)
    entry = job.store.get(job.transform, key)
    return digest, key, entry if _usable(entry, job) else None


def separate_chunk(tracks: Sequence[Mapping[str, Any]], job: StemsJob) -> list[dict[str, Any]]:
    """Stems of a few tracks (one per call, or a batch when the separator batches); picklable.

    The function the separate stage maps over the dataset. Every track's stems end in the
    store; only small facts come back.

    Parameters
    ----------
    tracks : sequence of mapping
        ``{'track_id', 'path'}`` and optionally ``'truth'`` (folder of the true stems, for
        :func:`score_track`).
    job : StemsJob

    Returns
    -------
    list of dict
        Per track, in the order of ``tracks``: ``track_id``, ``key``, ``status``
        (``'computed'``, ``'reused'`` or ``'failed'``), ``reason`` (why it failed, else ``''``)
        and ``scores`` (or ``None``).

    Notes
    -----
    On a CUDA device (``job.gpu``) a separator with ``separate_stream`` (Demucs) decodes the
    next clips in threads while the GPU separates a batch.
    """
    results: list[dict[str, Any] | None] = [None] * len(tracks)  # in the order of ``tracks``
    pending = []  # (position, key, digest)

    def fail(i: int, key: str, stage: str, exc: Exception) -> None:
        if isinstance(exc, StoreError):
            raise exc
        reason = f"{stage}: {type(exc).__name__}: {exc}"
        log.warning("track %s failed (%s)", tracks[i]["track_id"], reason)
        results[i] = {"track_id": tracks[i]["track_id"], "key": key, "status": "failed", "reason": reason,
                      "scores": None}

    def done(i: int, entry: Entry, status: str) -> None:
        track, scores = tracks[i], None
        if track.get("truth") and job.transform in SEPARATED_PARTS:
            try:
                scores = score_track(entry, Path(track["truth"]), job)
            except StoreError:
                raise
            except Exception as exc:  # the stems are fine; only the scoring failed
                log.warning("track %s: separation score failed (%s: %s)", track["track_id"], type(exc).__name__, exc)
        results[i] = {"track_id": track["track_id"], "key": entry.key, "status": status, "reason": "",
                      "scores": scores}

    def store_out(i: int, key: str, digest: str, out: Any) -> None:
        if isinstance(out, Exception):
            fail(i, key, "decode" if isinstance(out, (AudioDecodeError, OSError)) else "separate", out)
            return
        try:
            entry = _put_stems(job, key, digest, out)
        except Exception as exc:
            fail(i, key, "write", exc)
            return
        done(i, entry, "computed")

    for i, track in enumerate(tracks):
        try:
            digest, key, entry = _stored(track["path"], job)
        except Exception as exc:
            fail(i, "", "decode", exc)
            continue
        if entry is not None:
            done(i, entry, "reused")
        else:
            pending.append((i, key, digest))
    if not pending:
        return results  # type: ignore[return-value]
    separator = job.get_separator()
    if job.gpu and callable(getattr(separator, "separate_stream", None)):
        # on a GPU: decode the next clips in threads while the model separates a batch
        load = functools.partial(_load_mono, sr=job.sr)
        for k, out in separator.separate_stream([tracks[i]["path"] for i, _, _ in pending], load, job.sr):
            store_out(*pending[k], out)
        return results  # type: ignore[return-value]
    loaded = []  # (position, key, digest, audio)
    for i, key, digest in pending:
        try:
            loaded.append((i, key, digest, _load_mono(tracks[i]["path"], sr=job.sr)))
        except Exception as exc:
            fail(i, key, "decode", exc)
    outs = None
    if len(loaded) > 1 and callable(getattr(separator, "separate_batch", None)):
        try:
            outs = separator.separate_batch([y for *_, y in loaded], job.sr)
        except Exception as exc:  # find the culprit track by track
            log.warning("batch of %d tracks failed (%s); retrying one by one", len(loaded), exc)
    for k, (i, key, digest, y) in enumerate(loaded):
        try:
            out = outs[k] if outs is not None else separator.separate(y, job.sr)
        except Exception as exc:
            fail(i, key, "separate", exc)
            continue
        store_out(i, key, digest, out)
    return results  # type: ignore[return-value]


def _load_mono(path: str | Path, *, sr: int) -> np.ndarray:
    """A track decoded to mono at ``sr`` (thread-safe)."""
    return load_audio(path, sr=sr, mono=True)[0]


def object_job(separator: Any, *, store: Store, sr: int, stems: Sequence[str] | None) -> StemsJob:
    """A job for a separator object (not built from the registry): its ``repr`` keys its settings."""
    from genrelab.separation import SeparationParameterError

    available = tuple(getattr(separator, "stems", ()))
    if not available or not callable(getattr(separator, "separate", None)):
        raise SeparationParameterError(
            f"{type(separator).__name__} is not a separator: it needs a `stems` tuple and a separate(y, sr) method")
    stems = tuple(available if stems is None else stems)
    unknown = [s for s in stems if s not in available]
    if unknown or not stems:
        raise SeparationParameterError(
            f"stems {list(stems)} invalid for this separator; choose among {list(available)}"
        )
    cls = type(separator)
    name = getattr(separator, "store_name", None) or cls.__name__.lower()
    has_repr = cls.__repr__ is not object.__repr__
    # the repr holds the settings; those that do not change the output must not split the store
    text = re.sub(r",? *(device|batch_size|progress)=('[^']*'|\w+)", "", repr(separator)) if has_repr else None
    settings = {"class": f"{cls.__module__}.{cls.__qualname__}", "repr": text}
    batch = getattr(separator, "batch_size", 1)
    if not isinstance(batch, int) or batch < 1 or not callable(getattr(separator, "separate_batch", None)):
        batch = 1
    return StemsJob(store=store, transform=name, version=int(getattr(cls, "VERSION", 0)),
                    settings_key=canonical_json(settings), sr=int(sr), stems=stems, separator=separator,
                    batch_size=batch)


def separate_tracks(tracks: Sequence[tuple[str, str | Path]], separator: Any, *, store: Store, sr: int,
                    stems: Sequence[str] | None = None, progress: bool = True,
                    compute: ComputeSettings | None = None) -> pd.DataFrame:
    """Separate many tracks into the store, computing only the tracks it does not hold yet.

    Each track's stems are one store entry, written atomically; an interrupted run keeps every
    finished track and the next run reuses them. Errors on one track (decoding, separation,
    writing) are recorded and the run goes on; interrupts propagate.

    Parameters
    ----------
    tracks : sequence of (str, path)
        ``(track_id, audio file)``; ids must be unique.
    separator : object or StemsJob
        Anything with ``stems`` and ``separate(y, sr) -> {stem: array}`` (with
        ``separate_batch(ys, sr)`` and ``batch_size > 1``, tracks go through it in batches),
        or a :class:`StemsJob`.
    store : Store
    sr : int > 0
        Rate in Hz at which audio is decoded, separated and stored.
    stems : sequence of str, optional
        Stems to keep (a subset of ``separator.stems``); default: all of them.
    progress : bool
    compute : ComputeSettings, optional
        Engine settings (:func:`genrelab.compute.map_tracks`).

    Returns
    -------
    pandas.DataFrame
        One row per track and stem: ``track_id``, ``stem``, ``path`` (the stem's file in the
        store; ``''`` when failed), ``status`` (``'computed'``, ``'reused'`` or ``'failed'``),
        ``reason`` and ``key``.

    Raises
    ------
    ValueError
        On duplicate track ids, unknown stems or a bad ``sr``.
    """
    from genrelab.separation import SeparationParameterError

    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise SeparationParameterError(f"sr must be a positive integer sample rate in Hz, got {sr!r}")
    job = separator if isinstance(separator, StemsJob) else object_job(separator, store=store, sr=sr, stems=stems)
    ids = [str(t) for t, _ in tracks]
    dupes = sorted({t for t in ids if ids.count(t) > 1})
    if dupes:
        raise SeparationParameterError(f"duplicate track ids: {dupes[:10]}")
    items = [{"track_id": str(t), "path": str(p)} for t, p in tracks]
    results = _run_chunks(items, job, compute=compute, progress=progress)
    rows = []
    for r in results:
        entry_dir = job.store.path(job.transform, r["key"]) if r["key"] and r["status"] != "failed" else None
        for stem in job.stems:
            rows.append({"track_id": r["track_id"], "stem": stem,
                         "path": str(entry_dir / f"{stem}.flac") if entry_dir else "",
                         "status": r["status"], "reason": r["reason"], "key": r["key"]})
    return pd.DataFrame(rows, columns=["track_id", "stem", "path", "status", "reason", "key"])


def separate_track(track: Mapping[str, Any], job: StemsJob) -> dict[str, Any]:
    """:func:`separate_chunk` of one track (the function mapped when tracks are not batched)."""
    return separate_chunk([track], job)[0]


def _run_chunks(items: list[dict[str, Any]], job: StemsJob, *, compute: ComputeSettings | None,
                progress: bool) -> list[dict[str, Any]]:
    """Map the separation over the tracks (in batches when the separator batches); results in track order."""
    task = job.batch_size * (GPU_BATCHES_PER_TASK if job.gpu else 1)  # tracks per task
    batched = task > 1
    fn = functools.partial(separate_chunk if batched else separate_track, job=job)
    results: list[dict[str, Any] | None] = [None] * len(items)
    counts = {"computed": 0, "reused": 0, "failed": 0}
    for i, res in map_tracks(fn, items, settings=compute, desc=f"separating ({job.transform})", progress=progress,
                             resources={"GPU": 1} if job.gpu else None, batch_size=task if batched else None):
        if isinstance(res, StoreError):
            raise res
        if isinstance(res, BaseException):  # not a per-track error (a worker died ...): report the track
            reason = f"{type(res).__name__}: {res}"
            log.warning("track %s failed (%s)", items[i]["track_id"], reason)
            res = {"track_id": items[i]["track_id"], "key": "", "status": "failed", "reason": reason, "scores": None}
        counts[res["status"]] += 1
        results[i] = res
    log.info("separation (%s): %d computed, %d reused, %d failed", job.transform, counts["computed"],
             counts["reused"], counts["failed"])
    return [r for r in results if r is not None]


def separate_dataset(index: pd.DataFrame, *, separator: str, settings: Mapping[str, Any] | None,
                     dataset_dir: Path, store: Store, sample_rate: int, compute: ComputeSettings | None = None,
                     progress: bool = True) -> tuple[pd.DataFrame, dict]:
    """Fill the store with every track's stems for ``separator``; compute only what is missing.

    Parameters
    ----------
    index : pd.DataFrame
        Dataset index (``track_id``, ``path``).
    separator : {'none', 'oracle', 'hpss', 'demucs'}
        ``none`` and ``oracle`` need no computation.
    settings : mapping
        The separator's settings (``separation.<separator>``).
    dataset_dir : Path
        Output of the prepare stage (``stems/<track_id>/`` holds true stems where known).
    store : Store
    sample_rate : int
        Rate the stems are kept at (Hz).
    compute : ComputeSettings, optional

    Returns
    -------
    manifest : pd.DataFrame
        :data:`MANIFEST_COLUMNS`: each track's store key and ``ok``/``failed`` (the stage's
        DVC output; it does not depend on what the store held before).
    summary : dict
        ``n_tracks`` (tracks with stems: the headline), counts of ``computed``, ``reused`` and
        ``failed`` tracks, and ``quality`` (SDR and SI-SDR against true stems) where the dataset
        knows them; numbers only.
    """
    from genrelab.datasets import resolve_path

    if separator in ("none", "oracle"):
        return pd.DataFrame(columns=list(MANIFEST_COLUMNS)), {"n_tracks": int(len(index)), "computed": 0, "reused": 0,
                                                              "failed": 0}
    job = stems_job(separator, settings, store=store, sample_rate=sample_rate)
    truth_root = Path(dataset_dir) / "stems"
    items = []
    for tid, path in zip(index["track_id"].astype(str), index["path"]):
        truth = truth_root / tid
        items.append({"track_id": tid, "path": str(resolve_path(dataset_dir, path).absolute()),
                      "truth": str(truth.absolute()) if truth.is_dir() else None})
    results = _run_chunks(items, job, compute=compute, progress=progress)
    manifest = pd.DataFrame([{"track_id": r["track_id"], "key": r["key"],
                              "status": "failed" if r["status"] == "failed" else "ok", "reason": r["reason"]}
                             for r in results], columns=list(MANIFEST_COLUMNS))
    summary: dict[str, Any] = {s: sum(r["status"] == s for r in results) for s in ("computed", "reused", "failed")}
    summary = {"n_tracks": summary["computed"] + summary["reused"], **summary}  # tracks with stems
    scores = [r["scores"] for r in results if r["scores"]]
    if scores:
        summary["quality"] = summarize_quality(scores)
    return manifest, summary


# ---------------------------------------------------------------------------------------------
# Quality against the true stems
# ---------------------------------------------------------------------------------------------


def score_track(entry: Entry, truth_dir: Path, job: StemsJob) -> dict[str, dict[str, float]]:
    """SDR and SI-SDR of one track's separated harmonic and percussive parts (kept in the store).

    The true harmonic part is vocals + other, the percussive part drums + bass
    (``truth_dir/<stem>.flac``); the estimates are the sums of :data:`SEPARATED_PARTS`.

    Returns
    -------
    scores : dict
        ``{part: {'sdr': dB, 'si_sdr': dB}}``.
    """
    store = job.store
    truth = {s: store.digest(truth_dir / f"{s}.flac") for part in TRUE_PARTS.values() for s in part}
    parts = SEPARATED_PARTS[job.transform]
    key = store_key("separation_quality", QUALITY_VERSION, {"stems": entry.key, "truth": truth, "parts": parts,
                                                            "sr": job.sr})
    cached = store.get("separation_quality", key)
    if cached is not None:
        return json.loads(cached.file("scores.json").read_text())
    from genrelab.separation.quality import sdr, si_sdr

    def mix(files: list[Path]) -> np.ndarray:
        ys = [load_audio(f, sr=job.sr)[0] for f in files]
        n = min(len(y) for y in ys)
        return np.sum([y[:n] for y in ys], axis=0)

    scores: dict[str, dict[str, float]] = {}
    for part, true_stems in TRUE_PARTS.items():
        ref = mix([truth_dir / f"{s}.flac" for s in true_stems])
        est = mix([entry.file(f"{s}.flac") for s in parts[part]])
        n = min(len(ref), len(est))
        scores[part] = {"sdr": sdr(est[:n], ref[:n]), "si_sdr": si_sdr(est[:n], ref[:n])}
    store.put("separation_quality", key, lambda d: write_json(d / "scores.json", scores),
              inputs={"stems": entry.key, "truth": truth})
    return scores


def summarize_quality(scores: Sequence[Mapping[str, Mapping[str, float]]]) -> dict:
    """Means and medians of per-track scores (finite ones).

    Returns
    -------
    quality : dict
        ``{part: {'sdr_db_mean', 'sdr_db_median', 'si_sdr_db_mean', 'si_sdr_db_median'}}`` and
        ``n_tracks``; numbers only.
    """
    out: dict = {"n_tracks": len(scores)}
    for part in TRUE_PARTS:
        out[part] = {}
        for key in ("sdr", "si_sdr"):
            v = np.asarray([s[part][key] for s in scores if part in s], dtype=float)
            v = v[np.isfinite(v)]
            if v.size:  # metrics hold numbers only: no NaN for an empty set
                out[part][f"{key}_db_mean"] = float(v.mean())
                out[part][f"{key}_db_median"] = float(np.median(v))
    return out
