"""Resumable, checksum-verified downloads from mirror lists, and safe archive extraction.

Only the standard library is used (``urllib``), so a fresh environment can fetch data
before anything else is installed.

Typical use::

    archive = download(["https://mirror-a/x.zip", "https://mirror-b/x.zip"],
                       Path("data/raw/x.zip"), sha1="f0df49ff...")
    root = extract(archive, Path("data/raw/x"))

``download`` writes into ``<dest>.part`` and renames it onto ``dest`` only after the
checksum matches, so ``dest`` is either absent or complete. An interrupted transfer
(dropped connection, killed process) resumes from the ``.part`` file with an HTTP
``Range`` request; a transfer larger than ``max_bytes`` is refused. ``extract`` refuses
archive entries that would land outside the target and archives beyond :class:`ExtractLimits`
(total size, compression ratio, entry count: zip and tar bombs), and unpacks into a
temporary folder that replaces the target only when complete; a marker keyed on the
archive's sha256 makes a second call with the same content return at once.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import posixpath
import re
import socket
import stat
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from genrelab import __version__
from genrelab.io import atomic_dir
from genrelab.progress import progress_bar

__all__ = [
    "DownloadError",
    "ExtractLimits",
    "MAX_DOWNLOAD_BYTES",
    "ExtractError",
    "ChecksumError",
    "CHECKSUM_ALGORITHMS",
    "ARCHIVE_FORMATS",
    "download",
    "extract",
    "file_digest",
    "verify_checksum",
    "archive_format",
]

log = logging.getLogger(__name__)

USER_AGENT = f"genrelab/{__version__} (+https://github.com/; research data download)"
CHUNK_BYTES = 1 << 20
EXTRACTED_MARKER = ".genrelab_extracted.json"

MAX_DOWNLOAD_BYTES = 32 * 2**30
"""Largest download accepted by default (32 GiB: fma_medium.zip is 22 GiB)."""

CHECKSUM_ALGORITHMS: dict[str, int] = {"sha1": 40, "md5": 32, "sha256": 64}
"""Supported checksum algorithms and the length of their hex digest."""


class DownloadError(RuntimeError):
    """Raised when no URL delivered a file with the expected checksum."""


class ChecksumError(DownloadError):
    """Raised when a file on disk does not have the expected checksum."""


class ExtractError(ValueError):
    """Raised when an archive is unsafe (entries escaping the target, a bomb) or unreadable."""


@dataclass(frozen=True)
class ExtractLimits:
    """What :func:`extract` accepts, checked on the archive's listing before anything is written.

    Attributes
    ----------
    max_bytes : int
        Largest total size of the extracted entries (default 64 GiB; GTZAN is 1.3 GB,
        fma_medium 23 GB).
    max_entries : int
        Most entries (default 250 000; fma_full holds about 107 000 files).
    max_ratio : float
        Largest ratio of extracted size to archive size (default 200; audio archives are close
        to 1, FMA's metadata zip about 8), checked once the extracted size passes
        ``ratio_floor`` bytes, so small archives of text are never refused for it.
    ratio_floor : int
        See ``max_ratio`` (default 64 MiB).
    """

    max_bytes: int = 64 * 2**30
    max_entries: int = 250_000
    max_ratio: float = 200.0
    ratio_floor: int = 64 * 2**20


class _Budget:
    """Running totals of an archive's listing against :class:`ExtractLimits` (stops a bomb early)."""

    def __init__(self, archive: Path, limits: ExtractLimits) -> None:
        self.archive, self.limits = archive, limits
        self.size = max(archive.stat().st_size, 1)
        self.entries = self.total = 0

    def add(self, nbytes: int) -> None:
        lim = self.limits
        self.entries += 1
        self.total += max(int(nbytes), 0)
        if self.entries > lim.max_entries:
            raise ExtractError(f"{self.archive}: refusing to extract more than {lim.max_entries} entries "
                               "(an archive bomb?); raise ExtractLimits.max_entries if it is genuine")
        if self.total > lim.max_bytes:
            raise ExtractError(f"{self.archive}: refusing to extract more than {_size(lim.max_bytes)} "
                               f"(the entries listed so far already hold {_size(self.total)}; an archive bomb?); "
                               "raise ExtractLimits.max_bytes if it is genuine")
        if self.total > lim.ratio_floor and self.total / self.size > lim.max_ratio:
            raise ExtractError(f"{self.archive}: refusing to extract: {_size(self.size)} would expand to more than "
                               f"{_size(self.total)} (ratio over {lim.max_ratio:g}; an archive bomb?); raise "
                               "ExtractLimits.max_ratio if it is genuine")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class _TransferFailed(Exception):
    """One URL failed; the message is the reason shown to the user."""


# --------------------------------------------------------------------------------------
# checksums
# --------------------------------------------------------------------------------------
def _expected_digests(*, sha1: str | None, md5: str | None) -> dict[str, str]:
    given = {"sha1": sha1, "md5": md5}
    expected: dict[str, str] = {}
    for algo, value in given.items():
        if value is None or value == "":
            continue
        value = str(value).strip().lower()
        n = CHECKSUM_ALGORITHMS[algo]
        if not re.fullmatch(rf"[0-9a-f]{{{n}}}", value):
            raise ValueError(f"{algo}={value!r} is not a {algo} checksum: expected {n} hexadecimal digits")
        expected[algo] = value
    return expected


def file_digest(path: str | os.PathLike, algorithm: str = "sha1", *, progress: bool = False) -> str:
    """Hex digest of a file, read in chunks.

    Parameters
    ----------
    path : str or PathLike
        File to hash.
    algorithm : {"sha1", "md5", "sha256"}
        Hash algorithm (see ``CHECKSUM_ALGORITHMS``).
    progress : bool
        Show progress (a bar on a terminal, log lines otherwise) (bytes).

    Returns
    -------
    digest : str
        Lower-case hexadecimal digest.
    """
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise ValueError(f"unknown checksum algorithm {algorithm!r}; choose one of {sorted(CHECKSUM_ALGORITHMS)}")
    path = Path(path)
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh, progress_bar(
        total=path.stat().st_size, unit="B", unit_scale=True, unit_divisor=1024,
        desc=f"{algorithm} {path.name}", disable=not progress, leave=False,
    ) as bar:
        while chunk := fh.read(CHUNK_BYTES):
            h.update(chunk)
            bar.update(len(chunk))
    return h.hexdigest()


def _first_mismatch(path: Path, expected: dict[str, str], *, progress: bool) -> tuple[str, str, str] | None:
    for algo, want in expected.items():
        got = file_digest(path, algo, progress=progress)
        if got != want:
            return algo, want, got
    return None


def verify_checksum(
    path: str | os.PathLike, *, sha1: str | None = None, md5: str | None = None, progress: bool = False
) -> Path:
    """Check a file against the given checksums.

    Parameters
    ----------
    path : str or PathLike
        File to check.
    sha1, md5 : str, optional
        Expected hex digests; those not given are not checked.
    progress : bool
        Show progress (a bar on a terminal, log lines otherwise) while hashing.

    Returns
    -------
    path : Path

    Raises
    ------
    ChecksumError
        If a digest differs; the message names the expected and the actual value.
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file to verify")
    bad = _first_mismatch(path, _expected_digests(sha1=sha1, md5=md5), progress=progress)
    if bad is not None:
        algo, want, got = bad
        raise ChecksumError(f"{path}: {algo} checksum mismatch: expected {want}, got {got}")
    return path


# --------------------------------------------------------------------------------------
# download
# --------------------------------------------------------------------------------------
def _part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _content_range_start(value: str | None) -> int | None:
    """Start offset of a ``Content-Range: bytes START-END/TOTAL`` header, or None."""
    m = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", value or "")
    return int(m.group(1)) if m else None


def _fetch(url: str, part: Path, *, timeout: float, retries: int, progress: bool,
           expected: dict[str, str], max_bytes: int = MAX_DOWNLOAD_BYTES) -> None:
    """Stream ``url`` into ``part``, resuming what is there; return when complete."""
    attempts = 0
    while True:
        offset = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        request = urllib.request.Request(url, headers=headers)
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 416 and offset:
                # Range beyond the end: the .part is complete already, or stale and too long.
                if expected and _first_mismatch(part, expected, progress=progress) is None:
                    return
                log.info("%s: server refused to resume at byte %d; starting over", url, offset)
                part.unlink()
                attempts += 1
                if attempts > retries:
                    raise _TransferFailed(f"HTTP 416 (cannot resume) after {attempts} attempts") from exc
                continue
            raise _TransferFailed(f"HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise _TransferFailed(f"unreachable ({type(exc).__name__}: {reason})") from exc

        with response:
            status = getattr(response, "status", None) or 200
            length = response.headers.get("Content-Length")
            length = int(length) if length and length.isdigit() else None
            if offset and status == 206 and _content_range_start(response.headers.get("Content-Range")) == offset:
                mode = "ab"
            else:
                if offset:
                    log.info("%s ignored the Range request (HTTP %d); restarting from byte 0", url, status)
                offset, mode = 0, "wb"
            total = None if length is None else offset + length
            if total is not None and total > max_bytes:
                raise _TransferFailed(f"refused: the server announces {_size(total)}, more than the "
                                      f"{_size(max_bytes)} download limit")
            received = offset
            try:
                with open(part, mode) as fh, progress_bar(
                    total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                    desc=part.name[: -len(".part")], disable=not progress, leave=False,
                ) as bar:
                    while chunk := response.read(CHUNK_BYTES):
                        fh.write(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
                        if received > max_bytes:
                            break
                if received > max_bytes:
                    part.unlink()
                    raise _TransferFailed(f"refused: more than the {_size(max_bytes)} download limit was sent "
                                          "(the partial file was deleted)")
                if total is not None and received < total:
                    raise http.client.IncompleteRead(b"", total - received)
                return
            except (http.client.HTTPException, OSError, socket.timeout) as exc:
                attempts += 1
                if attempts > retries:
                    raise _TransferFailed(
                        f"connection dropped at byte {received} of {total or 'unknown'} "
                        f"({type(exc).__name__}) after {attempts} attempts; "
                        f"the partial file {part} is kept and resumed next time"
                    ) from exc
                log.info("%s: connection dropped at byte %d (%s); resuming", url, received, type(exc).__name__)


def _manual_hint(dest: Path, expected: dict[str, str]) -> str:
    sums = ", ".join(f"{a} {v}" for a, v in expected.items()) or "no checksum configured"
    return (
        f"To use a copy downloaded by other means, place the file at\n    {dest.resolve()}\n"
        f"  ({sums}); it is verified and used on the next run."
    )


def download(
    urls: str | Iterable[str],
    dest: str | os.PathLike,
    *,
    sha1: str | None = None,
    md5: str | None = None,
    progress: bool = True,
    timeout: float = 30,
    retries: int = 3,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
) -> Path:
    """Download a file from the first working mirror, resuming and verifying it.

    Parameters
    ----------
    urls : str or iterable of str
        Mirror URLs of the same file, tried in order (``http``, ``https``, ``file``).
    dest : str or PathLike
        Final location. Parent folders are created. While downloading, data goes to
        ``<dest>.part``; it is renamed onto ``dest`` only once the checksum matches.
    sha1, md5 : str, optional
        Expected hex digests. With neither, any complete transfer is accepted.
    progress : bool
        Show progress (a bar on a terminal, log lines otherwise) (bytes) while downloading and hashing.
    timeout : float > 0
        Seconds to wait for a connection or for the next bytes.
    retries : int >= 0
        How many times one URL is resumed after a dropped connection before moving to
        the next mirror.
    max_bytes : int > 0
        Largest accepted file (default :data:`MAX_DOWNLOAD_BYTES`): a larger announced
        ``Content-Length`` is refused before reading, a longer body is cut and deleted.

    Returns
    -------
    dest : Path
        The verified file.

    Raises
    ------
    DownloadError
        If no URL delivered a file with the expected checksum. The message lists every
        URL tried with its failure (HTTP status, unreachable host, or checksum expected
        vs got) and where to put a manually downloaded copy.
    ValueError
        If a checksum is not a hex digest of the right length, or ``timeout``/``retries``
        are out of range.

    Notes
    -----
    * ``dest`` already present with a matching checksum (or with no checksum given) is
      returned without any network access; present but mismatching, it is replaced by a
      verified download (and kept if none succeeds).
    * A ``.part`` file left by an interrupted run is resumed with ``Range: bytes=N-``; a
      server answering ``200`` instead of ``206`` restarts the transfer from the start.
    * A download whose checksum differs is deleted, and the next mirror is tried.
    """
    urls = [urls] if isinstance(urls, str) else [str(u) for u in urls]
    dest = Path(dest)
    expected = _expected_digests(sha1=sha1, md5=md5)
    if not timeout or timeout <= 0:
        raise ValueError(f"timeout={timeout!r} must be a positive number of seconds")
    if retries < 0:
        raise ValueError(f"retries={retries!r} must be >= 0")
    if max_bytes <= 0:
        raise ValueError(f"max_bytes={max_bytes!r} must be a positive number of bytes")

    failures: list[str] = []
    if dest.exists():
        if not dest.is_file():
            raise DownloadError(f"{dest} exists but is not a file; remove it or choose another destination")
        bad = _first_mismatch(dest, expected, progress=progress)
        if bad is None:
            log.info("%s already present%s; not downloading", dest, " and verified" if expected else "")
            return dest
        algo, want, got = bad
        failures.append(f"existing file {dest}: {algo} checksum mismatch: expected {want}, got {got}")
        log.warning("%s; downloading it again", failures[-1])

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _part_path(dest)
    for url in urls:
        try:
            _fetch(url, part, timeout=timeout, retries=retries, progress=progress, expected=expected,
                   max_bytes=int(max_bytes))
        except _TransferFailed as exc:
            failures.append(f"{url}: {exc}")
            log.warning("download failed: %s", failures[-1])
            continue
        bad = _first_mismatch(part, expected, progress=progress)
        if bad is not None:
            algo, want, got = bad
            part.unlink()
            failures.append(
                f"{url}: {algo} checksum mismatch: expected {want}, got {got} (the bad download was deleted)"
            )
            log.warning("download failed: %s", failures[-1])
            continue
        os.replace(part, dest)
        log.info("downloaded %s -> %s", url, dest)
        return dest

    tried = "\n".join(f"  - {f}" for f in failures) or "  (no URL was given)"
    raise DownloadError(f"could not obtain {dest.name}; tried:\n{tried}\n{_manual_hint(dest, expected)}")


# --------------------------------------------------------------------------------------
# extraction
# --------------------------------------------------------------------------------------
def _safe_relpath(name: str, archive: Path) -> PurePosixPath:
    """The member's path relative to the target; raise if it is absolute or uses ``..``."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise ExtractError(f"{archive}: refusing entry {name!r}: absolute path would escape the target folder")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ExtractError(f"{archive}: refusing entry {name!r}: '..' component would escape the target folder")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _check_link(name: str, link: str, *, relative_to_member: bool, archive: Path) -> None:
    link_n = link.replace("\\", "/")
    if link_n.startswith("/") or re.match(r"^[A-Za-z]:", link_n):
        raise ExtractError(f"{archive}: refusing link {name!r} -> {link!r}: absolute link target points outside")
    base = posixpath.dirname(str(_safe_relpath(name, archive))) if relative_to_member else ""
    resolved = posixpath.normpath(posixpath.join(base, link_n))
    if resolved == ".." or resolved.startswith("../"):
        raise ExtractError(f"{archive}: refusing link {name!r} -> {link!r}: it points outside the target folder")


@dataclass(frozen=True)
class _ArchiveFormat:
    """How to check and unpack one archive format."""

    open_mode: str | None  # tarfile mode, or None for zip
    check_and_extract: Callable[[Path, Path, bool, ExtractLimits], int]


def _tar_extract(archive: Path, dest: Path, progress: bool, limits: ExtractLimits, *, mode: str) -> int:
    budget = _Budget(archive, limits)
    try:
        with tarfile.open(archive, mode) as tf:
            members = []
            while (m := tf.next()) is not None:  # listed one by one: a bomb is stopped early
                budget.add(m.size)
                members.append(m)
            for m in members:
                _safe_relpath(m.name, archive)
                if m.issym():
                    _check_link(m.name, m.linkname, relative_to_member=True, archive=archive)
                elif m.islnk():
                    _check_link(m.name, m.linkname, relative_to_member=False, archive=archive)
                elif not (m.isfile() or m.isdir()):
                    raise ExtractError(f"{archive}: refusing entry {m.name!r}: device, fifo or other special file")
            kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            for m in progress_bar(
                members, desc=f"extract {archive.name}", unit="file", disable=not progress, leave=False
            ):
                tf.extract(m, dest, **kwargs)
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, getattr(tarfile, "FilterError", ())):
            raise ExtractError(f"{archive}: refusing unsafe entry: {exc}") from exc
        raise ExtractError(f"{archive}: cannot read as a {mode.split(':')[-1] or 'tar'} archive: {exc}") from exc
    return len(members)


def _zip_extract(archive: Path, dest: Path, progress: bool, limits: ExtractLimits) -> int:
    budget = _Budget(archive, limits)
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:  # zipfile never writes more than an entry's declared size (CRC-checked)
                budget.add(info.file_size)
            for info in infos:
                _safe_relpath(info.filename, archive)
                if stat.S_ISLNK(info.external_attr >> 16):
                    # zipfile writes links as small regular files, but refuse outward ones anyway.
                    _check_link(info.filename, zf.read(info).decode("utf-8", "replace"),
                                relative_to_member=True, archive=archive)
            for info in progress_bar(
                infos, desc=f"extract {archive.name}", unit="file", disable=not progress, leave=False
            ):
                zf.extract(info, dest)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ExtractError(f"{archive}: cannot read as a zip archive: {exc}") from exc
    return len(infos)


def _tar(mode: str) -> _ArchiveFormat:
    return _ArchiveFormat(mode, lambda a, d, p, lim: _tar_extract(a, d, p, lim, mode=mode))


ARCHIVE_FORMATS: dict[str, _ArchiveFormat] = {
    ".zip": _ArchiveFormat(None, _zip_extract),
    ".tar.gz": _tar("r:gz"),
    ".tgz": _tar("r:gz"),
    ".tar.bz2": _tar("r:bz2"),
    ".tar.xz": _tar("r:xz"),
    ".tar": _tar("r:"),
}
"""Archive formats ``extract`` understands, by file-name suffix."""


def archive_format(path: str | os.PathLike) -> str | None:
    """The ``ARCHIVE_FORMATS`` suffix that ``path``'s name ends with, or None."""
    name = Path(path).name.lower()
    for suffix in sorted(ARCHIVE_FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    return None


def extract(archive: str | os.PathLike, target: str | os.PathLike, *, progress: bool = True,
            limits: ExtractLimits | None = None) -> Path:
    """Unpack an archive into a folder, safely and atomically.

    Parameters
    ----------
    archive : str or PathLike
        A ``.zip``, ``.tar.gz``/``.tgz``, ``.tar.bz2``, ``.tar.xz`` or ``.tar`` file
        (chosen by name, see ``ARCHIVE_FORMATS``).
    target : str or PathLike
        Folder that receives the archive's entries (``target/<entry path>``).
    progress : bool
        Show progress (a bar on a terminal, log lines otherwise) (files).
    limits : ExtractLimits, optional
        Total size, entry count and compression ratio accepted (default ``ExtractLimits()``).

    Returns
    -------
    target : Path

    Raises
    ------
    ExtractError
        If an entry would escape ``target`` (absolute path, ``..`` component, a symlink or
        hardlink pointing outside, a device file), or the archive exceeds ``limits`` —
        nothing is written then —, if the archive is corrupt, or if ``target`` exists but
        was not made by ``extract``.
    FileNotFoundError
        If ``archive`` does not exist.

    Notes
    -----
    Entries go to a temporary sibling folder that is renamed onto ``target`` only after
    every entry is written. A marker file ``target/.genrelab_extracted.json`` records the
    archive's sha256; a second call with an archive of the same content returns at once (the
    archive is hashed each time: a replaced archive of the same name and size is noticed).
    """
    archive, target = Path(archive), Path(target)
    if not archive.is_file():
        raise FileNotFoundError(f"{archive}: no such archive")
    suffix = archive_format(archive)
    if suffix is None:
        raise ExtractError(
            f"{archive}: unknown archive type; expected a name ending in one of {sorted(ARCHIVE_FORMATS)}"
        )
    limits = ExtractLimits() if limits is None else limits
    stamp = {"archive": archive.name, "bytes": archive.stat().st_size,
             "sha256": file_digest(archive, "sha256", progress=progress)}
    marker = target / EXTRACTED_MARKER
    if target.exists():
        if marker.is_file():
            try:
                if json.loads(marker.read_text(encoding="utf-8")).get("sha256") == stamp["sha256"]:
                    log.info("%s already extracted to %s", archive.name, target)
                    return target
            except ValueError:
                pass
            log.info("%s holds another extraction; replacing it with %s", target, archive.name)
        elif not target.is_dir() or any(target.iterdir()):
            raise ExtractError(
                f"{target} exists and was not made by extract(); remove it, or point the "
                f"dataset source at it if it already holds the extracted data"
            )
    with atomic_dir(target) as tmp:
        n = ARCHIVE_FORMATS[suffix].check_and_extract(archive, tmp, progress, limits)
        (tmp / EXTRACTED_MARKER).write_text(json.dumps(stamp), encoding="utf-8")
    log.info("extracted %d entries of %s into %s", n, archive.name, target)
    return target
