"""GTZAN ingest: find (or download) the audio, check every file, write the index table.

GTZAN (Tzanetakis & Cook 2002) has 1000 30-s clips, 100 in each of ten genres. Two
on-disk layouts are in circulation and both are recognised automatically:

* the original (marsyas) release ``genres.tar.gz``: ``genres/<genre>/<genre>.000NN.au``;
* the Kaggle copy (``archive.zip``): ``Data/genres_original/<genre>/<genre>.000NN.wav``,
  which holds a corrupt ``jazz.00054.wav`` (it is quarantined, not a crash).

Official splits ship with the package (``genrelab/data/gtzan_splits``): the
fault-filtered, artist-conflict-free split of Kereliuk, Sturm & Larsen (2015) — 443/197/290
tracks, the 70 faulty tracks in none — and a 500/250/250 stratified split of all tracks
(which puts 101 artists in more than one split).

The artist of every track ships too (``genrelab/data/gtzan_artists.csv``), derived from
Sturm's index of GTZAN (B. L. Sturm, "An Analysis of the GTZAN Music Genre Dataset", ACM
MIRUM 2012): 919 of the 1000 tracks have a known artist; the other 81 have ``artist == ""``
and are grouped alone by the split stage. Every track is in the index, whatever the official
split: the faulty tracks get ``official_split == ""``, so ``split=official`` leaves them out
while ``split=grouped`` and ``split=kfold`` use all 1000 (grouped by artist).

This module also holds the pieces every audio dataset ingest shares (``probe_audio``,
``write_index``, ``QUARANTINE_COLUMNS``); ``genrelab.datasets.fma`` uses them. The index
columns are ``genrelab.datasets.INDEX_COLUMNS``.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from genrelab import GENRES
from genrelab.config import ConfigError, from_mapping, require_choice
from genrelab.datasets import INDEX_COLUMNS
from genrelab.download import archive_format, download, extract
from genrelab.io import DEFAULT_LIMITS, AudioDecodeError, AudioLimits, AudioProbe, atomic_path, scan_audio, write_json

__all__ = [
    "QUARANTINE_COLUMNS",
    "SPLIT_NAMES",
    "GTZAN_URLS",
    "GTZAN_MD5",
    "GTZAN_LAYOUTS",
    "GTZAN_SPLITS",
    "GtzanSettings",
    "GtzanLayoutError",
    "AudioProbe",
    "probe_audio",
    "write_index",
    "load_gtzan_split",
    "load_gtzan_artists",
    "find_gtzan_audio",
    "locate_gtzan",
    "prepare_gtzan",
]

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------
# shared by every dataset ingest
# ---------------------------------------------------------------------------------------
QUARANTINE_COLUMNS: tuple[str, ...] = ("track_id", "path", "reason")
"""Columns of ``quarantine.csv``: tracks left out, and why."""

SPLIT_NAMES: tuple[str, ...] = ("train", "valid", "test")
"""Values of ``official_split`` (besides ``""`` for a track in no official split)."""


def probe_audio(path: str | os.PathLike, limits: AudioLimits = DEFAULT_LIMITS) -> AudioProbe:
    """Check one file with the project's audio validation and measure it (:func:`genrelab.io.scan_audio`).

    The header is checked before decoding (plausible sample rate and duration), then the whole
    file is streamed: finite samples, a sane peak, at least ``limits.min_duration_s``, not
    silent, not a constant DC level. The duration is counted from the decoded samples, so a
    truncated file reports its real length.

    Parameters
    ----------
    path : str or PathLike
        Audio file.
    limits : AudioLimits
        What counts as usable (a dataset passes its known rate and clip length).

    Returns
    -------
    probe : AudioProbe
        ``duration_s`` (seconds, > 0) and ``sample_rate`` (Hz, the file's own).

    Raises
    ------
    AudioDecodeError
        If the file is missing, empty, undecodable or unusable; the message says why.
    """
    return scan_audio(path, limits)


def _unreadable(exc: Exception) -> bool:
    """Whether probing failed because of the file: it does not decode, or it killed the worker
    decoding it every time (``distributed.KilledWorker``)."""
    return isinstance(exc, AudioDecodeError) or type(exc).__name__ == "KilledWorker"


def _index_path(path: Path, out_dir: Path) -> str:
    """``path`` relative to ``out_dir`` (POSIX separators), or absolute if impossible."""
    path = Path(os.path.abspath(path))  # keeps symlinks as the user laid them out
    try:
        return Path(os.path.relpath(path, os.path.abspath(out_dir))).as_posix()
    except ValueError:  # another drive on Windows
        return path.as_posix()


def write_index(
    candidates: Sequence[Mapping[str, Any]],
    out_dir: str | os.PathLike,
    *,
    progress: bool = True,
    desc: str = "check audio",
    short_s: float | None = None,
    extra_summary: Mapping[str, int | float] | None = None,
    limits: AudioLimits = DEFAULT_LIMITS,
) -> pd.DataFrame:
    """Probe every candidate track and write ``index.csv``, ``quarantine.csv``, ``summary.json``.

    Parameters
    ----------
    candidates : sequence of mapping
        One per track: ``track_id``, ``genre``, ``artist``, ``path`` (absolute path of the
        audio file), ``official_split``; optionally ``reason`` (str) to quarantine the
        track without probing it (missing label, missing file ...).
    out_dir : str or PathLike
        Folder for the three output files (created).
    progress : bool
        Show progress over the tracks (a bar, or log lines off a terminal).
    desc : str
        Label of the bar.
    short_s : float, optional
        Count usable tracks shorter than this many seconds as ``n_short`` in the summary
        (they stay in the index with their real duration).
    extra_summary : mapping, optional
        More numbers for ``summary.json``.
    limits : AudioLimits
        The audio validation every file goes through (:func:`probe_audio`); a file that fails
        it is quarantined with the one-line reason.

    Returns
    -------
    index : pd.DataFrame [shape=(n_usable, 7)]
        ``INDEX_COLUMNS``, sorted as given; ``path`` relative to ``out_dir``.

    Notes
    -----
    ``summary.json`` holds numbers only: ``n_found`` (audio files present),
    ``n_usable``, ``n_quarantined`` (all left out, including
    pre-set reasons), per-split counts ``n_train``/``n_valid``/``n_test``/``n_unassigned``,
    ``n_short`` when ``short_s`` is given, and ``extra_summary``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    quarantined: list[dict[str, str]] = []
    from genrelab.compute import map_tracks

    n_found = sum(Path(cand["path"]).is_file() for cand in candidates)
    to_probe = [k for k, cand in enumerate(candidates) if not cand.get("reason")]
    probes: dict[int, Any] = {}
    check = functools.partial(probe_audio, limits=limits)  # picklable: runs in worker processes too
    for i, result in map_tracks(check, [Path(candidates[k]["path"]) for k in to_probe], desc=desc,
                                progress=progress):
        if isinstance(result, Exception) and not _unreadable(result):
            raise result  # a bug or a setup problem, not a bad file
        probes[to_probe[i]] = result
    for k, cand in enumerate(candidates):
        path = Path(cand["path"])
        reason = cand.get("reason")
        probe = probes.get(k)
        if not reason and isinstance(probe, Exception):
            reason = str(probe).replace(f"{path}: ", "", 1)
        if reason:
            log.warning("quarantined %s (%s): %s", cand["track_id"], path, reason)
            quarantined.append({"track_id": cand["track_id"], "path": _index_path(path, out_dir), "reason": reason})
            continue
        rows.append({
            "track_id": cand["track_id"],
            "genre": cand["genre"],
            "artist": cand.get("artist", "") or "",
            "path": _index_path(path, out_dir),
            "duration_s": round(probe.duration_s, 4),
            "sample_rate": probe.sample_rate,
            "official_split": cand.get("official_split", "") or "",
        })
    index = pd.DataFrame(rows, columns=list(INDEX_COLUMNS))
    index["sample_rate"] = index["sample_rate"].astype("int64")
    index["duration_s"] = index["duration_s"].astype("float64")
    quarantine = pd.DataFrame(quarantined, columns=list(QUARANTINE_COLUMNS))

    counts = index["official_split"].value_counts()
    summary: dict[str, int | float] = {
        "n_found": n_found,
        "n_usable": len(index),
        "n_quarantined": len(quarantine),
        **{f"n_{s}": int(counts.get(s, 0)) for s in SPLIT_NAMES},
        "n_unassigned": int(counts.get("", 0)),
    }
    if short_s is not None:
        summary["n_short"] = int((index["duration_s"] < short_s).sum())
    summary.update(extra_summary or {})

    with atomic_path(out_dir / "index.csv") as tmp:
        index.to_csv(tmp, index=False)
    with atomic_path(out_dir / "quarantine.csv") as tmp:
        quarantine.to_csv(tmp, index=False)
    write_json(out_dir / "summary.json", summary)
    log.info("%s: %d usable, %d quarantined", out_dir, len(index), len(quarantine))
    return index


# ---------------------------------------------------------------------------------------
# GTZAN specifics
# ---------------------------------------------------------------------------------------
GTZAN_URLS: tuple[str, ...] = ("http://opihi.cs.uvic.ca/sound/genres.tar.gz",)
"""Historic URL of the original release (often offline; pass mirrors in ``urls``)."""

GTZAN_MD5 = "5b3d6dddb579ab49814ab86dba69e7c7"
"""md5 of the original ``genres.tar.gz``."""

GTZAN_ARCHIVE_NAME = "genres.tar.gz"


@dataclass(frozen=True)
class GtzanLayout:
    """Where a GTZAN copy keeps its audio: ``<relative>/<genre>/<genre>.000NN<extension>``."""

    relative: tuple[str, ...]
    extension: str
    description: str


GTZAN_LAYOUTS: dict[str, GtzanLayout] = {
    "original": GtzanLayout(("genres",), ".au", "original release genres.tar.gz"),
    "kaggle": GtzanLayout(("Data", "genres_original"), ".wav", "Kaggle GTZAN copy (archive.zip)"),
}
"""Known layouts of a GTZAN copy, tried in this order."""

GTZAN_SPLITS: dict[str, str] = {
    "fault_filtered": "fault_filtered",
    "stratified": "stratified",
}
"""Official split choices (``dataset.split``) -> folder of the shipped lists. Folds are not a
dataset setting: ``split=kfold`` (``split.n_folds``, ``split.fold``) makes them from the index."""

GTZAN_ARTISTS_FILE = "gtzan_artists.csv"
"""Package data (``genrelab/data/``): ``track_id,artist`` from Sturm's GTZAN index."""


class GtzanLayoutError(FileNotFoundError):
    """Raised when no known GTZAN layout is found under a folder."""


def _track_id_from_name(name: str) -> str | None:
    m = re.fullmatch(r"([a-z]+)\.(\d{5})(?:\.[A-Za-z0-9]+)?", name)
    return f"{m.group(1)}.{m.group(2)}" if m and m.group(1) in GENRES else None


def load_gtzan_split(name: str) -> dict[str, str]:
    """Official split of GTZAN tracks, from the lists shipped with the package.

    Parameters
    ----------
    name : {"fault_filtered", "stratified"}
        See ``GTZAN_SPLITS``.

    Returns
    -------
    split : dict[str, str]
        ``track_id`` (``"blues.00000"``) -> ``"train"``, ``"valid"`` or ``"test"``. Tracks
        in no list (the 70 faulty tracks of the fault-filtered split) are absent.

    Raises
    ------
    genrelab.config.ConfigError
        If ``name`` is not a known split (the message lists them).
    ValueError
        If a shipped list is malformed or names a track twice.
    """
    check_gtzan_split("GTZAN split", name)
    folder = GTZAN_SPLITS[name]
    base = resources.files("genrelab").joinpath("data", "gtzan_splits", folder)
    out: dict[str, str] = {}
    for split in SPLIT_NAMES:
        lists = [f for f in base.iterdir() if f.name.startswith(f"{split}_") and f.name.endswith(".txt")]
        if len(lists) != 1:
            raise FileNotFoundError(f"expected one {split}_*.txt in the packaged split {folder!r}, found {len(lists)}")
        for line in lists[0].read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            tid = _track_id_from_name(line.rsplit("/", 1)[-1])
            if tid is None:
                raise ValueError(f"{lists[0].name}: cannot read a GTZAN track from line {line!r}")
            if tid in out:
                raise ValueError(f"split {name!r} lists {tid} twice ({out[tid]} and {split})")
            out[tid] = split
    return out


def check_gtzan_split(key: str, name: str) -> str:
    """Check an official split choice; ``kfold`` gets a message that says where folds are made."""
    if name == "kfold":
        raise ConfigError(f"{key}: 'kfold' is not a dataset option (any more); keep the dataset's official split "
                          "lists and choose folds with the split group: -S split=kfold "
                          "(split.n_folds, split.fold; split.fold=all runs every fold)")
    return require_choice(key, name, GTZAN_SPLITS)


def load_gtzan_artists() -> dict[str, str]:
    """Artist of every GTZAN track, from the table shipped with the package.

    Derived from Sturm's index of GTZAN; cite B. L. Sturm, "An Analysis of the GTZAN Music
    Genre Dataset", Proc. ACM Workshop MIRUM, Nara, Japan, 2012.

    Returns
    -------
    artists : dict[str, str]
        ``track_id`` (``"blues.00000"``) -> artist as written in the index
        (``"John Lee Hooker"``), ``""`` for the 81 tracks whose artist is unknown. All 1000
        tracks are present.

    Raises
    ------
    ValueError
        If the shipped table is malformed.
    """
    import csv

    text = resources.files("genrelab").joinpath("data", GTZAN_ARTISTS_FILE).read_text(encoding="utf-8")
    rows = list(csv.reader(line for line in text.splitlines() if line and not line.startswith("#")))
    if not rows or rows[0] != ["track_id", "artist"]:
        raise ValueError(f"{GTZAN_ARTISTS_FILE}: expected the header 'track_id,artist'")
    out: dict[str, str] = {}
    for row in rows[1:]:
        if len(row) != 2 or _track_id_from_name(row[0]) != row[0] or row[0] in out:
            raise ValueError(f"{GTZAN_ARTISTS_FILE}: bad or repeated row {row!r}")
        out[row[0]] = row[1].strip()
    return out


@dataclass(frozen=True)
class GtzanSettings:
    """Validated GTZAN settings (see ``prepare_gtzan`` for the meaning of each key)."""

    source: str | None = ""
    urls: tuple[str, ...] = GTZAN_URLS
    md5: str | None = GTZAN_MD5
    cache_dir: str = "~/.cache/genrelab/gtzan"
    split: str = "fault_filtered"
    expected_sample_rate: int | None = 22050
    expected_duration_s: tuple[float, ...] = (25.0, 35.0)

    def __post_init__(self) -> None:
        check_gtzan_split("dataset.split", self.split)
        if self.expected_sample_rate is not None and not 4000 <= self.expected_sample_rate <= 768_000:
            raise ConfigError(f"dataset.expected_sample_rate: a rate in Hz (22050 for GTZAN) or null for any, "
                              f"got {self.expected_sample_rate!r}")
        lo_hi = self.expected_duration_s
        if len(lo_hi) != 2 or not 0 <= lo_hi[0] <= lo_hi[1]:
            raise ConfigError(f"dataset.expected_duration_s: [shortest, longest] in seconds (GTZAN clips are 30 s: "
                              f"[25, 35]), got {list(lo_hi)!r}")
        if not self.source and not self.urls:
            raise ConfigError("dataset: set `source` to a local GTZAN copy or give at least one URL in `urls`")
        if not self.cache_dir:
            raise ConfigError("dataset.cache_dir: must name a folder for downloads and extraction")

    def limits(self) -> AudioLimits:
        """The audio validation of this dataset's files: GTZAN's known rate and clip length."""
        rates = () if self.expected_sample_rate is None else (self.expected_sample_rate,)
        return AudioLimits(sample_rates=rates, min_duration_s=float(self.expected_duration_s[0]),
                           max_duration_s=float(self.expected_duration_s[1]))

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any] | None) -> GtzanSettings:
        """Build from the ``dataset`` section of ``params.yaml`` (without ``name``).

        Raises
        ------
        genrelab.config.ConfigError
            On an unknown key, a wrong type or an impossible value.
        """
        if isinstance(settings, cls):
            return settings
        return from_mapping(cls, settings, section="dataset")


def _has_tracks(folder: Path, extension: str) -> bool:
    for genre in GENRES:
        gdir = folder / genre
        if gdir.is_dir() and any(_track_id_from_name(p.name) for p in gdir.glob(f"{genre}.*{extension}")):
            return True
    return False


def find_gtzan_audio(root: str | os.PathLike) -> tuple[Path, str]:
    """Find the genre folders of a GTZAN copy under ``root``.

    ``root`` may be the folder that holds a layout's top folder (``genres/`` or
    ``Data/``), any folder along the layout's path (``genres/``, ``Data/``,
    ``genres_original/``), or a folder one level above one of those (an archive that
    unpacks into a wrapper folder).

    Parameters
    ----------
    root : str or PathLike
        Extracted copy of GTZAN.

    Returns
    -------
    audio_dir : Path
        The folder holding ``<genre>/`` subfolders.
    layout : str
        Key of ``GTZAN_LAYOUTS``.

    Raises
    ------
    GtzanLayoutError
        If no layout matches; the message lists the layouts looked for.
    """
    root = Path(root)
    if not root.is_dir():
        raise GtzanLayoutError(f"{root}: not a folder")
    bases = [root] + sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for base in bases:
        for name, layout in GTZAN_LAYOUTS.items():
            parts = layout.relative
            for k in range(len(parts) + 1):
                cand = base.joinpath(*parts[k:])
                if cand.is_dir() and _has_tracks(cand, layout.extension):
                    log.info("GTZAN %s layout at %s", name, cand)
                    return cand, name
    expected = "; ".join(
        f"{'/'.join(lay.relative)}/<genre>/<genre>.000NN{lay.extension} ({lay.description})"
        for lay in GTZAN_LAYOUTS.values()
    )
    raise GtzanLayoutError(f"no GTZAN audio found under {root}: expected {expected}")


def _archive_stem(path: Path) -> str:
    suffix = archive_format(path) or ""
    return path.name[: len(path.name) - len(suffix)] if suffix else path.name


def locate_gtzan(settings: GtzanSettings | Mapping[str, Any], *, progress: bool = True) -> tuple[Path, str]:
    """Get a GTZAN copy on disk (local folder, local archive, or download) and find its audio.

    Parameters
    ----------
    settings : GtzanSettings or mapping
        See ``prepare_gtzan``.
    progress : bool
        Show download / extraction progress.

    Returns
    -------
    audio_dir : Path
        Folder with ``<genre>/`` subfolders.
    layout : str
        Key of ``GTZAN_LAYOUTS``.

    Raises
    ------
    FileNotFoundError
        If ``source`` does not exist.
    genrelab.download.DownloadError
        If no URL works (the message says where to put a manual download).
    GtzanLayoutError
        If the copy has no recognisable layout.
    """
    s = GtzanSettings.from_dict(settings)
    cache = Path(s.cache_dir).expanduser()
    if s.source:
        src = Path(s.source).expanduser()
        if not src.exists():
            raise FileNotFoundError(
                f"GTZAN source {str(src)!r} does not exist; set `source` to the extracted folder, "
                f"genres.tar.gz or the Kaggle zip, or to '' to download"
            )
        if src.is_file():
            if archive_format(src) is None:
                raise ConfigError(f"dataset.source: {src} is a file but not a .tar.gz/.tgz/.tar/.zip archive")
            src = extract(src, cache / _archive_stem(src), progress=progress)
        return find_gtzan_audio(src)
    archive = download(list(s.urls), cache / GTZAN_ARCHIVE_NAME, md5=s.md5 or None, progress=progress)
    return find_gtzan_audio(extract(archive, cache / _archive_stem(archive), progress=progress))


def _gtzan_candidates(audio_dir: Path, extension: str, split: Mapping[str, str]) -> list[dict[str, Any]]:
    artists = load_gtzan_artists()
    out = []
    for genre in GENRES:
        gdir = audio_dir / genre
        files = sorted(gdir.glob(f"{genre}.*{extension}")) if gdir.is_dir() else []
        if not files:
            log.warning("GTZAN: no %s tracks in %s", genre, gdir)
        for f in files:
            tid = _track_id_from_name(f.name)
            if tid is None or not tid.startswith(genre + "."):
                continue
            out.append({"track_id": tid, "genre": genre, "artist": artists.get(tid, ""), "path": f.absolute(),
                        "official_split": split.get(tid, "")})
    return out


def prepare_gtzan(settings: Mapping[str, Any], out_dir: str | os.PathLike, *, progress: bool = True) -> pd.DataFrame:
    """Ingest GTZAN: obtain the audio, check every file, write the index table.

    Parameters
    ----------
    settings : mapping
        The ``dataset`` section of ``params.yaml``; keys (all optional):

        ``source`` : str
            A local copy: the extracted original release, the Kaggle copy extracted, the
            original ``genres.tar.gz``, or the Kaggle zip (archives are unpacked under
            ``cache_dir``). The layout is detected (see ``GTZAN_LAYOUTS``). ``""``
            (default) downloads instead.
        ``urls`` : list of str
            Mirrors of ``genres.tar.gz``, tried in order (default ``GTZAN_URLS``).
        ``md5`` : str
            Checksum of the download (default ``GTZAN_MD5``; ``""`` skips the check).
        ``cache_dir`` : str
            Folder for the download and extracted archives (default ``data/raw/gtzan``,
            relative to the working directory). A manually downloaded archive goes to
            ``<cache_dir>/genres.tar.gz``.
        ``split`` : {"fault_filtered", "stratified"}
            Which shipped split fills ``official_split`` (default ``fault_filtered``).
            Folds are made by the split stage (``split=kfold``), not here.
        ``expected_sample_rate`` : int or None
            Every GTZAN clip is 22050 Hz (default); a file whose header says otherwise has a
            corrupted header and is quarantined. ``null`` accepts any plausible rate.
        ``expected_duration_s`` : [float, float]
            Shortest and longest clip accepted, in seconds (default ``[25, 35]``: the clips are
            30 s). Every file also goes through :func:`genrelab.io.scan_audio` (finite samples,
            sane peak, not silent, not DC only).
    out_dir : str or PathLike
        Output folder (created).
    progress : bool
        Show progress (bars on a terminal, log lines otherwise).

    Returns
    -------
    index : pd.DataFrame [shape=(n_usable, 7)]
        Columns ``INDEX_COLUMNS``, one row per readable track, sorted by genre then number:

        - ``track_id`` (str): ``"blues.00000"``;
        - ``genre`` (str): one of ``genrelab.GENRES``;
        - ``artist`` (str): from Sturm's index (:func:`load_gtzan_artists`), ``""`` for
          the 81 tracks it does not know;
        - ``path`` (str): audio file relative to ``out_dir`` (POSIX separators; absolute
          only when no relative path exists), i.e. ``out_dir / path`` opens it;
        - ``duration_s`` (float): seconds, from a full decode;
        - ``sample_rate`` (int): the file's own rate in Hz (22050 for GTZAN);
        - ``official_split`` (str): ``train``/``valid``/``test``, or ``""`` for a track in
          no list (the 70 faulty tracks of ``fault_filtered``).

    Raises
    ------
    genrelab.config.ConfigError
        If a setting is unknown or invalid (the message lists the valid choices).
    FileNotFoundError, GtzanLayoutError, genrelab.download.DownloadError
        If no GTZAN copy can be found or downloaded.

    Notes
    -----
    Writes atomically ``out_dir/index.csv`` (the table above), ``out_dir/quarantine.csv``
    (``track_id, path, reason`` of unreadable or unusable files, excluded from the index) and
    ``out_dir/summary.json`` (numbers only: ``n_found``, ``n_usable``,
    ``n_quarantined``, ``n_train``, ``n_valid``, ``n_test``, ``n_unassigned``).

    Examples
    --------
    >>> prepare_gtzan({"source": "~/data/gtzan/archive.zip"}, Path("data/gtzan"))  # doctest: +SKIP
    """
    s = GtzanSettings.from_dict(settings)
    audio_dir, layout = locate_gtzan(s, progress=progress)
    split = load_gtzan_split(s.split)
    candidates = _gtzan_candidates(audio_dir, GTZAN_LAYOUTS[layout].extension, split)
    if not candidates:
        raise GtzanLayoutError(f"no GTZAN tracks found in {audio_dir}")
    if len(candidates) != 1000:
        log.warning("GTZAN: found %d tracks in %s (the full dataset has 1000)", len(candidates), audio_dir)
    return write_index(candidates, out_dir, progress=progress, desc="check GTZAN audio", limits=s.limits())
