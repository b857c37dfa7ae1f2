"""FMA ingest (small / medium): metadata, audio, checks, index table.

The Free Music Archive dataset (Defferrard et al. 2017) ships as ``fma_metadata.zip``
(``fma_metadata/tracks.csv``, ``genres.csv``, ``features.csv`` ...) and one audio zip per
subset (``fma_small/000/000002.mp3`` ...). ``fma_small`` (8 000 tracks, 8 balanced
genres) is contained in ``fma_medium`` (25 000 tracks, 16 unbalanced genres); the subset
is chosen with the ``('set', 'subset')`` column of ``tracks.csv``.

``tracks.csv`` has a two-level column header plus an index line (see ``load_fma_tracks``).
Known errata of the audio: a few files hold no audio (quarantined, with the reason) and
some clips are shorter than 30 s (kept, with their measured duration; counted as
``n_short`` in ``summary.json``). Every file goes through the project's audio validation
(:func:`genrelab.io.scan_audio`: plausible header, finite samples, sane peak, at least 1 s,
not silent, not DC only); a file that fails it is quarantined with the reason.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from genrelab.config import ConfigError, from_mapping, require_choice
from genrelab.datasets.gtzan import write_index
from genrelab.download import archive_format, download, extract

__all__ = [
    "FMA_BASE_URLS",
    "FMA_SHA1",
    "FMA_SUBSETS",
    "FMA_SPLIT_NAMES",
    "FmaSettings",
    "FmaLayoutError",
    "fma_audio_path",
    "load_fma_tracks",
    "select_fma_subset",
    "locate_fma_metadata",
    "locate_fma_audio",
    "prepare_fma",
    "prepare_fma_small",
    "prepare_fma_medium",
]

log = logging.getLogger(__name__)

FMA_BASE_URLS: tuple[str, ...] = ("https://os.unil.cloud.switch.ch/fma/",)
"""Mirrors holding the FMA archives (``<base>fma_small.zip`` ...)."""

FMA_SHA1: dict[str, str] = {
    "fma_metadata.zip": "f0df49ffe5f2a6008d7dc83c6915b31835dfe733",
    "fma_small.zip": "ade154f733639d52e35e32f5593efe5be76c6d70",
    "fma_medium.zip": "c67b69ea232021025fca9231fc1c7c1a063ab50b",
}
"""SHA-1 of each archive, as published in the FMA README."""

FMA_SUBSETS: dict[str, tuple[str, ...]] = {
    "small": ("small",),
    "medium": ("small", "medium"),
}
"""Subset name -> values of ``('set', 'subset')`` it includes (small is inside medium)."""

FMA_SPLIT_NAMES: dict[str, str] = {"training": "train", "validation": "valid", "test": "test"}
"""``('set', 'split')`` values -> ``official_split`` values."""

METADATA_ARCHIVE = "fma_metadata.zip"
ARTIST_COLUMNS: tuple[tuple[str, str], ...] = (("artist", "id"), ("artist", "name"), ("album", "id"))
"""Columns tried in order for the artist (group) id; the real ``tracks.csv`` has the first."""
REQUIRED_COLUMNS: tuple[tuple[str, str], ...] = (("set", "subset"), ("set", "split"), ("track", "genre_top"))


class FmaLayoutError(FileNotFoundError):
    """Raised when FMA metadata or audio cannot be found where they were expected."""


def fma_audio_path(track_id: int) -> str:
    """Path of a track's mp3 inside an FMA audio folder: ``2 -> "000/000002.mp3"``.

    Parameters
    ----------
    track_id : int >= 0

    Returns
    -------
    relpath : str
    """
    tid = int(track_id)
    if tid < 0:
        raise ValueError(f"FMA track_id must be >= 0, got {track_id!r}")
    return f"{tid // 1000:03d}/{tid:06d}.mp3"


@dataclass(frozen=True)
class FmaSettings:
    """Validated FMA settings (see ``prepare_fma`` for the meaning of each key)."""

    metadata_source: str | None = ""
    audio_source: str | None = ""
    base_urls: tuple[str, ...] = FMA_BASE_URLS
    sha1: dict = field(default_factory=lambda: dict(FMA_SHA1))
    cache_dir: str = "~/.cache/genrelab/fma"
    short_s: float = 29.0

    def __post_init__(self) -> None:
        # user checksums override the published ones file by file ("" disables a check)
        object.__setattr__(self, "sha1", {**FMA_SHA1, **{str(k): v for k, v in self.sha1.items()}})
        if self.short_s < 0:
            raise ConfigError(f"dataset.short_s: must be a number of seconds >= 0, got {self.short_s!r}")
        if not self.cache_dir:
            raise ConfigError("dataset.cache_dir: must name a folder for downloads and extraction")
        if (not self.metadata_source or not self.audio_source) and not self.base_urls:
            raise ConfigError("dataset: give `base_urls` to download, or both `metadata_source` and `audio_source`")

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any] | None) -> FmaSettings:
        """Build from the ``dataset`` section of ``params.yaml`` (without ``name``).

        Raises
        ------
        genrelab.config.ConfigError
            On an unknown key, a wrong type or an impossible value.
        """
        if isinstance(settings, cls):
            return settings
        return from_mapping(cls, settings, section="dataset")

    def urls(self, archive: str) -> list[str]:
        """Download URLs of ``archive`` on every mirror."""
        return [b.rstrip("/") + "/" + archive for b in self.base_urls]


def _check_subset(subset: str) -> None:
    require_choice("FMA subset", subset, FMA_SUBSETS)


def load_fma_tracks(path: str | os.PathLike) -> pd.DataFrame:
    """Read FMA's ``tracks.csv``.

    The file has two header lines (column groups ``album``/``artist``/``set``/``track``
    and their fields) and a third line naming the index (``track_id,,,...``), as written
    by ``DataFrame.to_csv`` with two-level columns.

    Parameters
    ----------
    path : str or PathLike
        ``tracks.csv`` from ``fma_metadata.zip``.

    Returns
    -------
    tracks : pd.DataFrame [shape=(n_tracks, n_columns)]
        Index ``track_id`` (int); two-level columns such as ``('set', 'subset')``.

    Raises
    ------
    ValueError
        If the file is not in that format or lacks a column genre classification needs
        (``('set','subset')``, ``('set','split')``, ``('track','genre_top')``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such tracks.csv")
    try:
        tracks = pd.read_csv(path, index_col=0, header=[0, 1], low_memory=False)
    except (ValueError, IndexError, pd.errors.ParserError) as exc:
        raise ValueError(f"{path}: not FMA's tracks.csv (two header lines + 'track_id' line): {exc}") from exc
    if not isinstance(tracks.columns, pd.MultiIndex) or tracks.columns.nlevels != 2:
        raise ValueError(f"{path}: expected a two-level header (e.g. 'set','subset'); got {list(tracks.columns)[:5]}")
    missing = [c for c in REQUIRED_COLUMNS if c not in tracks.columns]
    if missing:
        raise ValueError(f"{path}: tracks.csv lacks columns {missing}; is it FMA's tracks.csv?")
    try:
        tracks.index = tracks.index.astype("int64")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: the index column must hold integer track ids: {exc}") from exc
    tracks.index.name = "track_id"
    return tracks


def _artist_column(tracks: pd.DataFrame) -> pd.Series:
    for col in ARTIST_COLUMNS:
        if col in tracks.columns:
            values = tracks[col]
            if pd.api.types.is_float_dtype(values) and values.dropna().mod(1).eq(0).all():
                values = values.astype("Int64")
            return values.astype("string").fillna("").astype(str)
    log.warning("tracks.csv has none of %s; artist left empty", ARTIST_COLUMNS)
    return pd.Series("", index=tracks.index)


def select_fma_subset(tracks: pd.DataFrame, subset: str) -> pd.DataFrame:
    """Tracks of one FMA subset, with label, artist and official split.

    Parameters
    ----------
    tracks : pd.DataFrame
        From ``load_fma_tracks``.
    subset : {"small", "medium"}
        ``medium`` includes ``small`` (see ``FMA_SUBSETS``).

    Returns
    -------
    table : pd.DataFrame [shape=(n, 4)]
        Index ``track_id`` (int, sorted); columns ``genre`` (``('track','genre_top')``,
        ``""`` where missing), ``artist`` (str; ``('artist','id')``), ``official_split``
        (``train``/``valid``/``test``, ``""`` for an unknown value).
    """
    _check_subset(subset)
    sel = tracks[tracks[("set", "subset")].astype(str).isin(FMA_SUBSETS[subset])].sort_index()
    split_raw = sel[("set", "split")].astype("string").fillna("")
    split = split_raw.map(lambda v: FMA_SPLIT_NAMES.get(v, "")).astype(str)
    odd = sorted(set(split_raw[split == ""]))
    if odd:
        log.warning("FMA: unknown ('set','split') values %s; those tracks get no official split", odd)
    out = pd.DataFrame(
        {
            "genre": sel[("track", "genre_top")].astype("string").fillna("").astype(str).values,
            "artist": _artist_column(sel).values,
            "official_split": split.values,
        },
        index=sel.index,
    )
    out.index.name = "track_id"
    return out


def _locate(source: str, archive: str, settings: FmaSettings, *, progress: bool) -> Path:
    """A folder holding the contents of ``archive``: local folder, local zip, or download."""
    cache = Path(settings.cache_dir).expanduser()
    if source:
        src = Path(source).expanduser()
        if not src.exists():
            raise FileNotFoundError(
                f"FMA source {str(src)!r} does not exist; point it at {archive} or its extracted "
                f"folder, or set it to '' to download"
            )
        if src.is_dir():
            return src
        if archive_format(src) is None:
            raise ConfigError(f"dataset: FMA source {src} is a file but not a .zip archive")
        return extract(src, cache / src.name.removesuffix(archive_format(src)), progress=progress)
    sha1 = settings.sha1.get(archive) or None
    path = download(settings.urls(archive), cache / archive, sha1=sha1, progress=progress)
    return extract(path, cache / archive.removesuffix(".zip"), progress=progress)


def locate_fma_metadata(settings: FmaSettings | Mapping[str, Any], *, progress: bool = True) -> Path:
    """Folder holding ``tracks.csv`` (local copy, local zip, or downloaded ``fma_metadata.zip``).

    Raises
    ------
    FmaLayoutError
        If no ``tracks.csv`` is found at the top or one folder down.
    """
    s = FmaSettings.from_dict(settings)
    root = _locate(s.metadata_source, METADATA_ARCHIVE, s, progress=progress)
    for cand in [root, root / "fma_metadata", *sorted(p for p in root.iterdir() if p.is_dir())]:
        if (cand / "tracks.csv").is_file():
            return cand
    raise FmaLayoutError(f"no tracks.csv under {root} (expected fma_metadata/tracks.csv from {METADATA_ARCHIVE})")


def _looks_like_audio_dir(folder: Path) -> bool:
    for sub in folder.iterdir() if folder.is_dir() else ():
        if sub.is_dir() and len(sub.name) == 3 and sub.name.isdigit():
            if any(f.stem.isdigit() and len(f.stem) == 6 for f in sub.glob("*.mp3")):
                return True
    return False


def locate_fma_audio(settings: FmaSettings | Mapping[str, Any], *, subset: str, progress: bool = True) -> Path:
    """Folder holding ``NNN/NNNNNN.mp3`` for ``subset`` (local copy, local zip, or download).

    A copy of a larger subset works too (``fma_medium`` serves ``small``).

    Raises
    ------
    FmaLayoutError
        If no folder of ``NNN/NNNNNN.mp3`` files is found.
    """
    _check_subset(subset)
    s = FmaSettings.from_dict(settings)
    archive = f"fma_{subset}.zip"
    root = _locate(s.audio_source, archive, s, progress=progress)
    names = [f"fma_{subset}", *(f"fma_{k}" for k in FMA_SUBSETS if k != subset), "fma_large", "fma_full"]
    for cand in [*(root / n for n in names), root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        if _looks_like_audio_dir(cand):
            return cand
    raise FmaLayoutError(f"no FMA audio (NNN/NNNNNN.mp3, e.g. {fma_audio_path(2)}) under {root}")


def prepare_fma(
    settings: Mapping[str, Any], out_dir: str | os.PathLike, *, subset: str, progress: bool = True
) -> pd.DataFrame:
    """Ingest an FMA subset: obtain metadata and audio, check every file, write the index table.

    Parameters
    ----------
    settings : mapping
        The ``dataset`` section of ``params.yaml``; keys (all optional):

        ``metadata_source`` : str
            Local ``fma_metadata.zip`` or its extracted folder; ``""`` downloads it.
        ``audio_source`` : str
            Local ``fma_<subset>.zip`` or its extracted folder (a larger subset's copy
            works too); ``""`` downloads it.
        ``base_urls`` : list of str
            Mirrors, tried in order; an archive's URL is ``<base>/<archive name>``
            (default ``FMA_BASE_URLS``).
        ``sha1`` : mapping
            Archive name -> SHA-1, overriding ``FMA_SHA1`` per file (``""`` skips a check).
        ``cache_dir`` : str
            Folder for downloads and extracted archives (default ``data/raw/fma``,
            relative to the working directory). Manually downloaded archives go there
            under their own names (``fma_small.zip`` ...).
        ``short_s`` : float >= 0
            Clips shorter than this many seconds are counted as ``n_short`` (default
            29.0; they stay in the index).
    out_dir : str or PathLike
        Output folder (created).
    subset : {"small", "medium"}
        Which subset (see ``FMA_SUBSETS``).
    progress : bool
        Show progress (bars on a terminal, log lines otherwise).

    Returns
    -------
    index : pd.DataFrame [shape=(n_usable, 7)]
        Columns ``genrelab.datasets.INDEX_COLUMNS``, sorted by track id:
        ``track_id`` (str, FMA's integer id as text: ``"2"``), ``genre`` (``('track','genre_top')``, e.g.
        ``"Hip-Hop"``), ``artist`` (str, ``('artist','id')``), ``path`` (relative to
        ``out_dir``, POSIX; absolute only when no relative path exists), ``duration_s``
        (float, seconds, from a full decode), ``sample_rate`` (int, Hz, the file's own),
        ``official_split`` (``train``/``valid``/``test`` from ``('set','split')``).

    Raises
    ------
    genrelab.config.ConfigError
        If ``subset`` or a setting is unknown or invalid (the message lists the choices).
    ValueError
        If ``tracks.csv`` is malformed or lists no track of the subset.
    FileNotFoundError, FmaLayoutError, genrelab.download.DownloadError
        If metadata or audio cannot be found or downloaded.

    Notes
    -----
    Writes atomically ``out_dir/index.csv``, ``out_dir/quarantine.csv`` (``track_id,
    path, reason``: missing file, empty, undecodable or unusable audio, no ``genre_top``) and
    ``out_dir/summary.json`` (numbers only: ``n_listed`` tracks of the subset in
    ``tracks.csv``, ``n_found`` audio files present, ``n_usable``, ``n_quarantined``,
    ``n_short``, per-split counts).
    """
    _check_subset(subset)
    s = FmaSettings.from_dict(settings)
    meta_dir = locate_fma_metadata(s, progress=progress)
    table = select_fma_subset(load_fma_tracks(meta_dir / "tracks.csv"), subset)
    if table.empty:
        raise ValueError(f"{meta_dir / 'tracks.csv'} lists no track of subset {subset!r}")
    audio_dir = locate_fma_audio(s, subset=subset, progress=progress)
    candidates = []
    for tid, row in table.iterrows():
        path = audio_dir / fma_audio_path(tid)
        reason = None
        if not row["genre"]:
            reason = "no ('track','genre_top') label in tracks.csv"
        elif not path.is_file():
            reason = "audio file missing"
        candidates.append({"track_id": str(tid), "genre": row["genre"], "artist": row["artist"],
                           "path": path.absolute(), "official_split": row["official_split"], "reason": reason})
    return write_index(candidates, out_dir, progress=progress, desc=f"check fma_{subset} audio",
                       short_s=float(s.short_s), extra_summary={"n_listed": len(table)})


def prepare_fma_small(
    settings: Mapping[str, Any], out_dir: str | os.PathLike, *, progress: bool = True
) -> pd.DataFrame:
    """``prepare_fma(settings, out_dir, subset="small")`` (the ``fma_small`` registry entry)."""
    return prepare_fma(settings, out_dir, subset="small", progress=progress)


def prepare_fma_medium(
    settings: Mapping[str, Any], out_dir: str | os.PathLike, *, progress: bool = True
) -> pd.DataFrame:
    """``prepare_fma(settings, out_dir, subset="medium")`` (the ``fma_medium`` registry entry)."""
    return prepare_fma(settings, out_dir, subset="medium", progress=progress)
