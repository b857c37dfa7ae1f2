"""Source separation: fast HPSS, Demucs stems, resumable per-track separation, SDR metrics.

Any object with a ``stems`` attribute (tuple of names) and a method
``separate(y, sr) -> dict[str, np.ndarray]`` is a *separator*; :data:`SEPARATORS` maps the
configuration names to the built-in ones and :func:`make_separator` builds one from settings.
:func:`separate_tracks` runs a separator over many tracks into the per-track store
(:mod:`genrelab.store`), so that an interrupted run resumes where it stopped and every
experiment reuses what another one separated (:mod:`genrelab.separation.dataset`).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

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
    from genrelab.separation.dataset import (
        StemsJob,
        separate_dataset,
        separate_tracks,
        stems_job,
        track_stems,
    )
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
    "StemsJob": "genrelab.separation.dataset", "separate_dataset": "genrelab.separation.dataset",
    "separate_tracks": "genrelab.separation.dataset", "stems_job": "genrelab.separation.dataset",
    "track_stems": "genrelab.separation.dataset",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEMUCS_STEMS",
    "SEPARATORS",
    "DemucsLoadError",
    "DemucsSeparator",
    "HPSSSeparator",
    "MissingWeightsError",
    "SeparationParameterError",
    "Separator",
    "StemsJob",
    "hpss_batch",
    "load_demucs_model",
    "make_separator",
    "cached_separator",
    "median_filter_reflect",
    "required_weight_files",
    "resolve_device",
    "sdr",
    "separate_tracks",
    "si_sdr",
    "separate_dataset",
    "stems_job",
    "track_stems",
]



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


def cached_separator(name: str, settings_json: str) -> Separator:
    """``make_separator(name, **json.loads(settings_json))``, built once per process and settings
    (Demucs loads its weights once per worker: :func:`genrelab.compute.worker_cached`)."""
    from genrelab.compute import worker_cached

    return worker_cached(_separator_from_json, name, settings_json)


def _separator_from_json(name: str, settings_json: str) -> Separator:
    return make_separator(name, **json.loads(settings_json))
