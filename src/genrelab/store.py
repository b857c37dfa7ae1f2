"""A content-addressed store of per-track results, shared by every experiment.

Expensive per-track work (separated stems, per-track features and embeddings, separation
scores) is a pure function of the track's audio, the transform, the settings that change its
result and the transform's version. The store keeps each result once under a key made of
exactly those, so every experiment, queued clone and fold finds what another one computed:

``key = sha256(canonical JSON of {transform, version, inputs})``

where ``inputs`` holds the audio's content digest (sha256 of the file's bytes, not its path)
and the result-changing settings. Settings that do not change the result (device, batch size,
progress bars, number of workers: :data:`NOT_IN_KEY`) are left out, so changing them reuses
everything; bumping a transform's ``VERSION`` changes only its own keys (and those of results
derived from it).

Layout::

    <root>/<transform>/<key[:2]>/<key>/<files...>   one entry: its files and meta.json
    <root>/.digests/<xx>/<id>                        audio digests by (realpath, size, mtime_ns)

An entry is written into a temporary sibling folder and renamed into place only when complete,
so a crash, ``kill -9`` or full disk never leaves a half-written entry; when two processes
compute the same key at once, the first rename wins and the other copy is dropped. ``meta.json``
records each file's sha256 and size: reads verify them, and a corrupt entry (truncated file,
checksum mismatch) is logged with its key, removed and recomputed. Reading an entry updates the
modification time of its ``meta.json`` (its last use), which ``genrelab store rm --unused-days``
reads.

The store is a cache: deleting it changes no result, only time. Its location is the parameter
``store.dir`` (default ``~/.cache/genrelab/store``); the environment variable
``GENRELAB_STORE`` overrides it. Several machines share one store by pointing it at the same
path on a shared filesystem.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genrelab.config import ConfigError, from_mapping
from genrelab.io import json_plain

__all__ = ["DEFAULT_DIR", "ENV_VAR", "NOT_IN_KEY", "StoreSettings", "StoreError", "StoreFullError", "Entry",
           "Store", "open_store", "store_dir", "store_key", "canonical_json", "key_settings", "store_command"]

log = logging.getLogger(__name__)

DEFAULT_DIR = "~/.cache/genrelab/store"
ENV_VAR = "GENRELAB_STORE"
META = "meta.json"
DIGESTS = ".digests"
NOT_IN_KEY = frozenset({"device", "batch_size", "progress", "workers", "address", "download", "repo", "models_dir"})
"""Setting names that never change a result; :func:`key_settings` leaves them out of keys."""

_TRANSFORM = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_KEY = re.compile(r"^[0-9a-f]{64}$")
_STALE_TMP_S = 3600.0  # temporary folders older than this are leftovers of killed writers


@dataclass(frozen=True)
class StoreSettings:
    """Settings of the ``store`` section.

    Attributes
    ----------
    dir : str
        Root folder of the store (``~`` and environment variables are expanded; a relative
        path is relative to the working directory, so prefer an absolute one: queued
        experiments run in temporary clones). The environment variable ``GENRELAB_STORE``
        overrides it.
    """

    dir: str = DEFAULT_DIR

    def __post_init__(self) -> None:
        if not str(self.dir).strip():
            raise ConfigError(f"store.dir: must name a folder, got {self.dir!r}; the default is {DEFAULT_DIR}")


class StoreError(ConfigError):
    """The store cannot be used (unwritable location, full disk); the message names ``store.dir``."""


class StoreFullError(StoreError):
    """The disk holding the store is full; nothing half-written was left in the store."""


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no spaces; tuples, numpy scalars and paths made plain."""

    def plain(o: Any) -> Any:
        if isinstance(o, (set, frozenset)):
            return sorted(o)
        try:
            return json_plain(o)
        except TypeError:
            raise TypeError(f"cannot put {type(o).__name__} into a store key") from None

    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=plain)


def key_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """The settings that change a result: ``settings`` without the names in :data:`NOT_IN_KEY`."""
    return {k: v for k, v in dict(settings or {}).items() if k not in NOT_IN_KEY}


def store_key(transform: str, version: int, inputs: Mapping[str, Any]) -> str:
    """Key of one result.

    Parameters
    ----------
    transform : str
        Name of the transform (``'hpss'``, ``'mel'`` ...): the store's top-level folder.
    version : int
        The transform's ``VERSION``.
    inputs : mapping
        Everything else the result depends on: the audio's content digest (or the keys of the
        results it was computed from) and the settings that change it (see :func:`key_settings`).

    Returns
    -------
    key : str
        64 hexadecimal digits.
    """
    _check_transform(transform)
    if isinstance(version, bool) or not isinstance(version, (int, np.integer)):
        raise TypeError(f"version of {transform!r} must be an integer, got {version!r}")
    blob = canonical_json({"transform": transform, "version": int(version), "inputs": dict(inputs)})
    return hashlib.sha256(blob.encode()).hexdigest()


def _check_transform(transform: str) -> str:
    if not isinstance(transform, str) or not _TRANSFORM.match(transform) or transform == DIGESTS:
        raise ValueError(f"transform name {transform!r} must be lower-case letters, digits, '_', '.' or '-'")
    return transform


def _sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _entry_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def _is_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return "no space left" in str(exc).lower()  # libsndfile reports it only as text


@dataclass(frozen=True)
class Entry:
    """One verified result in the store.

    Attributes
    ----------
    transform, key : str
    path : Path
        The entry's folder.
    meta : dict
        Its ``meta.json``: ``files`` (name -> sha256, size), ``inputs`` (what the key was made
        of), ``info`` (small facts the writer recorded, e.g. a number of slices).
    """

    transform: str
    key: str
    path: Path
    meta: dict

    @property
    def info(self) -> dict:
        return dict(self.meta.get("info") or {})

    def file(self, name: str) -> Path:
        """Path of one of the entry's files (``KeyError`` if it has none of that name)."""
        if name not in self.meta.get("files", {}):
            raise KeyError(f"store entry {self.transform}/{self.key} has no file {name!r} "
                           f"(it has {sorted(self.meta.get('files', {}))})")
        return self.path / name

    def has(self, name: str) -> bool:
        return name in self.meta.get("files", {})


class Store:
    """A content-addressed store rooted at one folder (see the module docstring).

    Parameters
    ----------
    root : str or PathLike
        The store's folder. Nothing is created or checked here; :func:`open_store` does both.

    Notes
    -----
    A ``Store`` holds only its root, so it pickles cheaply into worker processes.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self._digests: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def __getstate__(self) -> dict:
        return {"root": self.root}

    def __setstate__(self, state: dict) -> None:
        self.root = state["root"]
        self._digests = {}

    # ------------------------------------------------------------------------------ layout
    def path(self, transform: str, key: str) -> Path:
        """Folder of one entry."""
        _check_transform(transform)
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValueError(f"store key {key!r} is not 64 hexadecimal digits")
        return self.root / transform / key[:2] / key

    def transforms(self) -> list[str]:
        """Names of the transforms that have a folder in the store."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _TRANSFORM.match(p.name))

    def entries(self, transform: str | None = None) -> Iterator[tuple[str, str, Path]]:
        """``(transform, key, folder)`` of every entry (finished or not yet verified)."""
        for t in [transform] if transform else self.transforms():
            base = self.root / _check_transform(t)
            if not base.is_dir():
                continue
            for shard in sorted(base.iterdir()):
                if not shard.is_dir() or shard.name.startswith("."):
                    continue
                for folder in sorted(shard.iterdir()):
                    if folder.is_dir() and _KEY.match(folder.name):
                        yield t, folder.name, folder

    def _temporaries(self) -> Iterator[Path]:
        for t in self.transforms():
            for shard in (self.root / t).iterdir():
                if shard.is_dir():
                    yield from (
                        p for p in shard.iterdir() if p.name.startswith(".") and p.name.endswith((".tmp", ".trash"))
                    )

    # ------------------------------------------------------------------------------ digests
    def digest(self, path: str | os.PathLike) -> str:
        """sha256 of a file's bytes, remembered per (real path, size, mtime) so it is hashed once.

        Parameters
        ----------
        path : str or PathLike
            An existing file (an audio track, a weights file ...).

        Returns
        -------
        str
            64 hexadecimal digits.
        """
        real = os.path.realpath(path)
        st = os.stat(real)
        ident = hashlib.sha256(f"{real}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()
        if ident in self._digests:
            return self._digests[ident]
        cache = self.root / DIGESTS / ident[:2] / ident
        with contextlib.suppress(OSError):
            known = cache.read_text(encoding="ascii").strip()
            if _KEY.match(known):
                self._digests[ident] = known
                return known
        digest = _sha256_file(Path(real))
        with contextlib.suppress(OSError):  # the digest cache only saves time
            cache.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{ident}.", suffix=".tmp", dir=cache.parent)
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(digest)
            os.replace(tmp, cache)
        self._digests[ident] = digest
        return digest

    # ------------------------------------------------------------------------------ reading
    def _check(self, folder: Path, key: str) -> tuple[dict | None, str]:
        """(meta, '') for a sound entry, else (None, why it is not)."""
        try:
            meta = json.loads((folder / META).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None, "meta.json is missing"
        except (OSError, ValueError) as exc:
            return None, f"meta.json is unreadable ({exc})"
        if not isinstance(meta, dict) or meta.get("key") != key or not isinstance(meta.get("files"), dict):
            return None, "meta.json does not describe this key"
        for name, want in meta["files"].items():
            p = folder / name
            try:
                size = p.stat().st_size
            except OSError:
                return None, f"{name} is missing"
            if size != want.get("size"):
                return None, f"{name} has {size} bytes, not {want.get('size')} (truncated?)"
            if _sha256_file(p) != want.get("sha256"):
                return None, f"{name} does not match its checksum"
        return meta, ""

    def get(self, transform: str, key: str, *, touch: bool = True) -> Entry | None:
        """The verified entry of ``key``, or ``None`` when there is none.

        A corrupt entry is logged with its key and removed (so the caller recomputes it).

        Parameters
        ----------
        transform, key : str
        touch : bool
            Record this read as the entry's last use.
        """
        folder = self.path(transform, key)
        if not folder.is_dir():
            return None
        meta, why = self._check(folder, key)
        if meta is None:
            log.warning("store: entry %s/%s is corrupt (%s); removing it, it will be recomputed", transform, key, why)
            self._discard(folder)
            return None
        if touch:
            with contextlib.suppress(OSError):  # a read-only store is still readable
                os.utime(folder / META)
        return Entry(transform, key, folder, meta)

    def _discard(self, folder: Path) -> None:
        """Remove an entry folder; readers never see it half-deleted (renamed away first)."""
        trash = folder.with_name(f".{folder.name}.{os.getpid()}.trash")
        try:
            os.rename(folder, trash)
        except OSError:
            return  # already gone (another process removed it)
        shutil.rmtree(trash, ignore_errors=True)

    # ------------------------------------------------------------------------------ writing
    def put(self, transform: str, key: str, write: Callable[[Path], Any], *, inputs: Mapping[str, Any] | None = None,
            info: Mapping[str, Any] | None = None) -> Entry:
        """Write one entry atomically and return it.

        Parameters
        ----------
        transform, key : str
        write : callable
            ``write(folder)`` writes the entry's files into the (temporary) ``folder``.
        inputs : mapping, optional
            What the key was made of (kept in ``meta.json`` for inspection).
        info : mapping, optional
            Small JSON facts about the result (e.g. its number of slices).

        Returns
        -------
        Entry
            This one, or the identical one another process renamed into place first.

        Raises
        ------
        StoreFullError
            The disk is full; the temporary folder was removed, nothing is left half-written.
        """
        final = self.path(transform, key)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".tmp", dir=final.parent))
        except OSError as exc:
            raise self._error(exc, transform, key) from exc
        try:
            write(tmp)
            files = {p.name: {"sha256": _sha256_file(p), "size": p.stat().st_size}
                     for p in sorted(tmp.iterdir()) if p.is_file()}
            meta = {"transform": transform, "key": key, "files": files, "inputs": dict(inputs or {}),
                    "info": dict(info or {}), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            (tmp / META).write_text(canonical_json(meta), encoding="utf-8")
            for _attempt in range(2):
                try:
                    os.rename(tmp, final)
                    return Entry(transform, key, final, meta)
                except OSError as exc:
                    if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
                # another process finished this key first: keep theirs (identical by construction)
                theirs = self.get(transform, key)
                if theirs is not None:
                    shutil.rmtree(tmp, ignore_errors=True)
                    return theirs
            raise OSError(errno.EEXIST, f"store entry {transform}/{key} keeps appearing corrupt")
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, Exception) and _is_full(exc):
                raise self._error(exc, transform, key) from exc
            raise

    def _error(self, exc: BaseException, transform: str, key: str) -> StoreError:
        where = f"{self.root}"
        if _is_full(exc):
            return StoreFullError(
                f"store.dir: no space left on the disk of {where} while writing {transform}/{key}; nothing "
                f"half-written was kept. Free space (genrelab store rm --unused-days N) or point store.dir "
                f"(or {ENV_VAR}) at a bigger disk")
        return StoreError(f"store.dir: cannot write to {where} ({exc}); point store.dir (or {ENV_VAR}) "
                          f"at a writable folder")

    # ------------------------------------------------------------------------------ upkeep
    def info(self) -> dict[str, Any]:
        """Size of the store: ``{'root', 'bytes', 'transforms': {name: {'entries', 'bytes'}}, 'temporary'}``."""
        out: dict[str, Any] = {"root": str(self.root), "bytes": 0, "transforms": {}, "temporary": 0}
        for t, _, folder in self.entries():
            size = _entry_bytes(folder)
            row = out["transforms"].setdefault(t, {"entries": 0, "bytes": 0})
            row["entries"] += 1
            row["bytes"] += size
            out["bytes"] += size
        out["temporary"] = sum(1 for _ in self._temporaries())
        return out

    def verify(self, *, transform: str | None = None, remove: bool = False) -> list[tuple[str, str, str]]:
        """Check every entry against its checksums.

        Parameters
        ----------
        transform : str, optional
            Only this transform's entries.
        remove : bool
            Remove the bad entries (they are recomputed when next needed).

        Returns
        -------
        bad : list of (transform, key, reason)
        """
        bad = []
        for t, key, folder in self.entries(transform):
            meta, why = self._check(folder, key)
            if meta is None:
                bad.append((t, key, why))
                if remove:
                    self._discard(folder)
        return bad

    def remove(self, *, transform: str | None = None, unused_days: float | None = None) -> tuple[int, int]:
        """Remove entries: all of them, one transform's, or those unused for ``unused_days``.

        Leftover temporary folders of killed writers (older than an hour) go too.

        Returns
        -------
        n_entries, n_bytes : int
        """
        cutoff = None if unused_days is None else time.time() - float(unused_days) * 86400.0
        n = size = 0
        for _, _, folder in list(self.entries(transform)):
            if cutoff is not None:
                try:
                    if (folder / META).stat().st_mtime >= cutoff:
                        continue
                except OSError:
                    pass  # no meta.json: a broken entry, remove it
            size += _entry_bytes(folder)
            n += 1
            self._discard(folder)
        now = time.time()
        for tmp in list(self._temporaries()):
            with contextlib.suppress(OSError):
                if now - tmp.stat().st_mtime > _STALE_TMP_S:
                    shutil.rmtree(tmp, ignore_errors=True)
        if transform is None and unused_days is None:
            shutil.rmtree(self.root / DIGESTS, ignore_errors=True)
        return n, size


def store_dir(section: Mapping[str, Any] | None = None) -> tuple[Path, str]:
    """Where the store is: ``GENRELAB_STORE`` if set, else ``store.dir``.

    Parameters
    ----------
    section : mapping, optional
        The ``store`` params section (validated here).

    Returns
    -------
    root : Path
        Absolute, with ``~`` and environment variables expanded.
    source : str
        ``'GENRELAB_STORE'`` or ``'store.dir'``.
    """
    settings = from_mapping(StoreSettings, section, section="store")
    env = os.environ.get(ENV_VAR, "").strip()
    raw, source = (env, ENV_VAR) if env else (settings.dir, "store.dir")
    return Path(os.path.expandvars(raw)).expanduser().absolute(), source


def open_store(section: Mapping[str, Any] | None = None) -> Store:
    """The store named by the params (``store`` section) or ``GENRELAB_STORE``, checked writable.

    Raises
    ------
    StoreError
        If the folder cannot be created or written; the message names ``store.dir``.
    """
    root, source = store_dir(section)
    via = f" (from {ENV_VAR})" if source == ENV_VAR else ""
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe.", suffix=".tmp", dir=root)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise StoreError(f"store.dir: cannot write to {root}{via} ({exc.strerror or exc}); set store.dir "
                         f"(-S store.dir=/a/writable/folder) or the {ENV_VAR} environment variable to a "
                         "writable folder") from exc
    return Store(root)


# ---------------------------------------------------------------------------------- command
def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def _command_store(args: argparse.Namespace) -> Store:
    if args.dir:
        return Store(Path(os.path.expandvars(args.dir)).expanduser().absolute())
    section = None
    if Path(args.params).is_file():
        from genrelab.config import load_params

        section = load_params(args.params).get("store")
    root, _ = store_dir(section)
    return Store(root)


def store_command(argv: Sequence[str] | None = None) -> int:
    """``genrelab store info|verify|rm``: where the store is, what it holds, check or clear it."""
    p = argparse.ArgumentParser(prog="genrelab store", description=store_command.__doc__)
    p.add_argument("--dir", help=f"store folder (default: {ENV_VAR}, else store.dir of --params, else {DEFAULT_DIR})")
    p.add_argument("--params", default="params.yaml", help="parameters file whose store.dir to use")
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("info", help="where the store is, its size, entries and bytes per transform")
    v = sub.add_parser("verify", help="check every entry against its checksums")
    v.add_argument("--transform", help="only this transform's entries")
    v.add_argument("--remove", action="store_true", help="remove the bad entries (recomputed when next needed)")
    r = sub.add_parser("rm", help="remove entries (all, by transform, or unused for N days)")
    which = r.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every entry (and the digest cache)")
    which.add_argument("--transform", help="one transform's entries, e.g. hpss or mel")
    which.add_argument("--unused-days", type=float, metavar="N", help="entries not read for N days")
    args = p.parse_args(argv)
    try:
        store = _command_store(args)
    except ConfigError as exc:
        print(f"error: {exc}")
        return 2
    if args.action == "info":
        info = store.info()
        print(f"store: {store.root}{'' if store.root.is_dir() else ' (does not exist yet)'}")
        print(f"size:  {_size(info['bytes'])} in {sum(r['entries'] for r in info['transforms'].values())} entries")
        for t, row in sorted(info["transforms"].items()):
            print(f"  {t:<20} {row['entries']:>8} entries {_size(row['bytes']):>10}")
        if info.get("temporary"):
            print(f"  ({info['temporary']} unfinished temporary folders; `genrelab store rm` clears old ones)")
        return 0
    if args.action == "verify":
        bad = store.verify(transform=args.transform, remove=args.remove)
        for t, key, why in bad:
            print(f"bad: {t}/{key}: {why}{' (removed)' if args.remove else ''}")
        n = sum(1 for _ in store.entries(args.transform))
        print(f"{len(bad)} bad entr{'y' if len(bad) == 1 else 'ies'}"
              f"{' removed' if args.remove and bad else ''}; {n} entries now in {store.root}")
        return 1 if bad and not args.remove else 0
    if args.unused_days is not None and args.unused_days < 0:
        print("error: --unused-days must be >= 0")
        return 2
    n, size = store.remove(transform=args.transform, unused_days=args.unused_days)
    print(f"removed {n} entries ({_size(size)}) from {store.root}")
    return 0
