"""Source separation: fast HPSS, Demucs stems, resumable per-track separation, SDR metrics.

Any object with a ``stems`` attribute (tuple of names) and a method
``separate(y, sr) -> dict[str, np.ndarray]`` is a *separator*; :data:`SEPARATORS` maps the
configuration names to the built-in ones and :func:`make_separator` builds one from settings.
:func:`separate_tracks` runs a separator over many tracks, writing
``<out_dir>/<track_id>/<stem>.flac`` and, last, a ``done.json`` marker, so that an interrupted
run resumes where it stopped.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from genrelab.io import load_audio, read_json, remove_temporaries, write_audio, write_json
from genrelab.progress import progress_bar

# The function ``hpss`` is not re-exported: it would shadow the submodule ``separation.hpss``.
# Use ``from genrelab.separation.hpss import hpss``.
from genrelab.separation.hpss import (
    HPSSSeparator,
    SeparationParameterError,
    hpss_batch,
    median_filter_reflect,
    resolve_device,
)
from genrelab.separation.quality import sdr, si_sdr

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from genrelab.separation.dataset import separate_dataset, separation_quality
    from genrelab.separation.demucs import (
        DEMUCS_STEMS,
        DemucsLoadError,
        DemucsSeparator,
        MissingWeightsError,
        load_demucs_model,
        required_weight_files,
    )

# Demucs (torch) and the stage functions (pandas) are imported on first use, so that
# ``genrelab.separation.hpss`` is reached without them (PEP 562 module ``__getattr__``).
_LAZY = {
    "DEMUCS_STEMS": "genrelab.separation.demucs", "DemucsLoadError": "genrelab.separation.demucs",
    "DemucsSeparator": "genrelab.separation.demucs", "MissingWeightsError": "genrelab.separation.demucs",
    "load_demucs_model": "genrelab.separation.demucs", "required_weight_files": "genrelab.separation.demucs",
    "separate_dataset": "genrelab.separation.dataset", "separation_quality": "genrelab.separation.dataset",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEMUCS_STEMS",
    "DONE_MARKER",
    "SEPARATORS",
    "DemucsLoadError",
    "DemucsSeparator",
    "HPSSSeparator",
    "MissingWeightsError",
    "SeparationParameterError",
    "Separator",
    "hpss_batch",
    "load_demucs_model",
    "make_separator",
    "median_filter_reflect",
    "required_weight_files",
    "resolve_device",
    "sdr",
    "separate_tracks",
    "si_sdr",
    "separate_dataset",
    "separation_quality",
]

logger = logging.getLogger(__name__)

DONE_MARKER = "done.json"
"""Name of the per-track completion marker, written after all of the track's stems."""


@runtime_checkable
class Separator(Protocol):
    """What :func:`separate_tracks` needs from a separator."""

    stems: tuple[str, ...]

    def separate(self, y: np.ndarray, sr: int) -> dict[str, np.ndarray]: ...


def _demucs_separator(*args: Any, **settings: Any) -> Separator:
    """:class:`~genrelab.separation.demucs.DemucsSeparator` (imports torch and demucs now)."""
    from genrelab.separation.demucs import DemucsSeparator

    return DemucsSeparator(*args, **settings)


SEPARATORS: dict[str, Callable[..., Separator]] = {
    "hpss": HPSSSeparator,
    "demucs": _demucs_separator,
}
"""Separator factories by configuration name (Demucs is imported only when it is built)."""


def make_separator(name: str, **settings: Any) -> Separator:
    """Build a separator from its registry name and settings.

    Parameters
    ----------
    name : str
        A key of :data:`SEPARATORS` (``'hpss'`` or ``'demucs'``).
    **settings
        Keyword arguments of that class (e.g. ``kernel_size=31`` for HPSS,
        ``model='htdemucs', device='auto'`` for Demucs).

    Returns
    -------
    Separator

    Raises
    ------
    ValueError
        If ``name`` is unknown (the message lists the valid names).
    TypeError
        If a setting is not accepted by that separator.
    """
    try:
        factory = SEPARATORS[name]
    except (KeyError, TypeError):
        raise SeparationParameterError(
            f"unknown separator {name!r}; valid choices: {', '.join(sorted(SEPARATORS))}"
        ) from None
    return factory(**settings)


# ---------------------------------------------------------------------------------------------
# Resumable separation of many tracks
# ---------------------------------------------------------------------------------------------


def _fingerprint(separator: Any, *, sr: int, mono: bool, subtype: str, stems: Sequence[str]) -> dict:
    """What must match for finished outputs to be reused (settings in the separator's repr)."""
    cls = type(separator)
    has_repr = cls.__repr__ is not object.__repr__
    return {
        "separator": f"{cls.__module__}.{cls.__qualname__}",
        "settings": repr(separator) if has_repr else None,
        "sr": int(sr),
        "mono": bool(mono),
        "subtype": subtype,
        "stems": list(stems),
    }


def _check_track_id(track_id: Any) -> str:
    if not isinstance(track_id, str) or not track_id or track_id in (".", "..") or Path(track_id).name != track_id:
        raise SeparationParameterError(
            f"track_id {track_id!r} cannot name a folder: use a non-empty string without path separators"
        )
    return track_id


def _is_done(folder: Path, stems: Sequence[str], fingerprint: dict) -> tuple[bool, str]:
    marker = folder / DONE_MARKER
    if not marker.is_file():
        return False, "no completion marker" if folder.exists() else "new"
    try:
        info = read_json(marker)
    except (OSError, ValueError) as exc:
        return False, f"unreadable marker ({exc})"
    if info.get("fingerprint") != fingerprint:
        return False, "separator settings changed"
    files = info.get("files", {})
    for stem in stems:
        if stem not in files or not (folder / files[stem]).is_file():
            return False, f"stem {stem!r} missing"
    return True, "done marker present"


def _write_track(
    folder: Path, track_id: str, source: Path, out: dict[str, np.ndarray], stems: Sequence[str],
    *, sr: int, subtype: str, fingerprint: dict,
) -> dict[str, Path]:
    missing = [s for s in stems if s not in out]
    if missing:
        raise KeyError(f"separator returned stems {sorted(out)}, missing {missing}")
    paths = {}
    for stem in stems:
        y = np.asarray(out[stem], dtype=np.float32)
        paths[stem] = folder / f"{stem}.flac"
        write_audio(paths[stem], y.T if y.ndim == 2 else y, sr, subtype=subtype)
    write_json(
        folder / DONE_MARKER,
        {"track_id": track_id, "source": str(source), "files": {s: p.name for s, p in paths.items()},
         "fingerprint": fingerprint},
    )
    return paths


def separate_tracks(
    tracks: Iterable[tuple[str, str | os.PathLike]],
    out_dir: str | os.PathLike,
    separator: Separator,
    *,
    sr: int,
    progress: bool = True,
    stems: Sequence[str] | None = None,
    mono: bool = True,
    subtype: str = "PCM_16",
) -> pd.DataFrame:
    """Separate many tracks into ``<out_dir>/<track_id>/<stem>.flac``, resuming finished work.

    Each stem is written atomically, then a ``done.json`` marker naming the stems and the
    separator's settings. A track is skipped only when its marker exists, matches the current
    settings (separator ``repr``, ``sr``, ``mono``, ``subtype``, stems) and all its stem files
    exist; a folder without a marker (an interrupted track) is recomputed. Errors on one track
    (decoding, separation, writing) are recorded and the run goes on; interrupts
    (``KeyboardInterrupt``, ``SystemExit``) propagate, leaving finished tracks reusable.

    Parameters
    ----------
    tracks : iterable of (str, path)
        ``(track_id, audio file)``; ids must be unique and usable as folder names.
    out_dir : str or PathLike
        Output folder (created).
    separator : Separator
        Any object with ``stems`` and ``separate(y, sr) -> {stem: array}``; if it also has
        ``separate_batch(ys, sr)`` and ``batch_size > 1``, tracks go through it in batches.
    sr : int > 0
        Rate in Hz at which audio is decoded, separated and written.
    progress : bool
        Show progress (a bar on a terminal, log lines otherwise) over tracks.
    stems : sequence of str, optional
        Stems to write (a subset of ``separator.stems``); default: all of them.
    mono : bool
        Decode tracks as mono ``(n,)``; else as ``(channels, n)``.
    subtype : str
        ``soundfile`` subtype of the FLAC files (16-bit PCM by default; samples are clipped
        to [-1, 1]).

    Returns
    -------
    pandas.DataFrame
        One row per track and stem: ``track_id``, ``stem``, ``path`` (str), ``status``
        (``'computed'``, ``'skipped'`` or ``'failed'``) and ``reason`` (why skipped or failed,
        else empty).

    Raises
    ------
    ValueError
        On duplicate or unusable track ids, unknown stems, or a bad ``sr``.
    """
    import pandas as pd

    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise SeparationParameterError(f"sr must be a positive integer sample rate in Hz, got {sr!r}")
    available = tuple(getattr(separator, "stems", ()))
    if not available or not callable(getattr(separator, "separate", None)):
        raise SeparationParameterError(
            f"{type(separator).__name__} is not a separator: it needs a `stems` tuple and a separate(y, sr) method"
        )
    stems = tuple(available if stems is None else stems)
    unknown = [s for s in stems if s not in available]
    if unknown or not stems:
        raise SeparationParameterError(f"stems {list(stems)} invalid for this separator; choose among {list(available)}")
    track_list = [(_check_track_id(t), Path(p)) for t, p in tracks]
    ids = [t for t, _ in track_list]
    dupes = sorted({t for t in ids if ids.count(t) > 1})
    if dupes:
        raise SeparationParameterError(f"duplicate track ids: {dupes[:10]}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for leftover in remove_temporaries(out_dir):  # of a killed run: never part of the output
        logger.info("removed %s, left by an interrupted run", leftover)
    fingerprint = _fingerprint(separator, sr=sr, mono=mono, subtype=subtype, stems=stems)
    batch_size = int(getattr(separator, "batch_size", 1) or 1)
    use_batch = batch_size > 1 and callable(getattr(separator, "separate_batch", None))

    rows: list[dict[str, Any]] = []
    counts = {"computed": 0, "skipped": 0, "failed": 0}

    def record(track_id: str, status: str, reason: str = "") -> None:
        for stem in stems:
            rows.append({"track_id": track_id, "stem": stem, "path": str(out_dir / track_id / f"{stem}.flac"),
                         "status": status, "reason": reason})
        counts[status] += 1

    def fail(track_id: str, stage: str, exc: Exception) -> None:
        reason = f"{stage}: {type(exc).__name__}: {exc}"
        logger.warning("track %s failed (%s)", track_id, reason)
        record(track_id, "failed", reason)

    def run_group(group: list[tuple[str, Path]]) -> None:
        loaded = []
        for track_id, path in group:
            # Invalidate an old marker first: a half-rewritten track must never look done.
            (out_dir / track_id / DONE_MARKER).unlink(missing_ok=True)
            try:
                y, _ = load_audio(path, sr=sr, mono=mono)
                loaded.append((track_id, path, y))
            except Exception as exc:
                fail(track_id, "decode", exc)
        outs: list[Any] | None = None
        if use_batch and len(loaded) > 1:
            try:
                outs = separator.separate_batch([y for _, _, y in loaded], sr)  # type: ignore[attr-defined]
            except Exception as exc:  # find the culprit track by track
                logger.warning("batch of %d tracks failed (%s); retrying one by one", len(loaded), exc)
        for k, (track_id, path, y) in enumerate(loaded):
            try:
                out = outs[k] if outs is not None else separator.separate(y, sr)
            except Exception as exc:
                fail(track_id, "separate", exc)
                continue
            try:
                _write_track(out_dir / track_id, track_id, path, out, stems, sr=sr, subtype=subtype,
                             fingerprint=fingerprint)
            except Exception as exc:
                fail(track_id, "write", exc)
                continue
            record(track_id, "computed")

    bar = progress_bar(total=len(track_list), desc="separating", unit="track", disable=not progress)
    try:
        pending: list[tuple[str, Path]] = []
        for track_id, path in track_list:
            done, why = _is_done(out_dir / track_id, stems, fingerprint)
            if done:
                logger.debug("skip %s: %s", track_id, why)
                record(track_id, "skipped", why)
                bar.update(1)
                continue
            if why not in ("new",):
                logger.info("recomputing %s: %s", track_id, why)
            pending.append((track_id, path))
            if len(pending) >= (batch_size if use_batch else 1):
                run_group(pending)
                bar.update(len(pending))
                pending = []
            bar.set_postfix(counts, refresh=False)
        if pending:
            run_group(pending)
            bar.update(len(pending))
    finally:
        bar.set_postfix(counts)
        bar.close()
    logger.info("separation: %d computed, %d skipped, %d failed", counts["computed"], counts["skipped"], counts["failed"])
    return pd.DataFrame(rows, columns=["track_id", "stem", "path", "status", "reason"])

