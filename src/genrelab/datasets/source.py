"""A cheap fingerprint of a dataset's local source files, so ``prepare`` re-runs when they change.

DVC decides whether ``prepare`` must run from its dependencies, and the files under
``dataset.source`` live outside the repository. The ``source`` stage (``always_changed``) writes
:func:`source_fingerprint` to a small JSON file that ``prepare`` depends on: the stage itself runs
every time (a directory walk, no file is read), but ``prepare`` re-runs only when the names,
sizes or modification times of the source files change.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["SOURCE_KEYS", "source_keys", "source_fingerprint"]

SOURCE_KEYS = ("source", "*_source", "*_csv")
"""Keys of the ``dataset`` section that name local input files or folders (glob patterns)."""


def source_keys(settings: Mapping[str, Any]) -> list[str]:
    """The keys of ``settings`` matching :data:`SOURCE_KEYS`, sorted."""
    from fnmatch import fnmatch

    return sorted(k for k in settings if any(fnmatch(k, pat) for pat in SOURCE_KEYS))


def _walk(root: Path) -> tuple[int, int, str]:
    """(files, bytes, sha256 of the sorted ``name, size, mtime_ns`` lines) under ``root``, links followed."""
    lines: list[str] = []
    total = 0
    seen: set[tuple[int, int]] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in seen:  # a link back to a folder already walked
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs.sort()
        for name in files:
            path = Path(folder) / name
            try:
                fst = path.stat()
            except OSError as exc:  # a broken link: its name is still part of the listing
                lines.append(f"{path.relative_to(root).as_posix()}\tunreadable:{exc.errno}")
                continue
            lines.append(f"{path.relative_to(root).as_posix()}\t{fst.st_size}\t{fst.st_mtime_ns}")
            total += fst.st_size
    lines.sort()
    digest = hashlib.sha256("\n".join(lines).encode("utf-8", "surrogateescape")).hexdigest()
    return len(lines), total, digest


def _describe(value: str) -> dict[str, Any]:
    path = Path(value).expanduser()
    if not path.exists():
        return {"path": value, "exists": False}
    if path.is_dir():
        n, total, digest = _walk(path)
        return {"path": value, "files": n, "bytes": total, "listing_sha256": digest}
    st = path.stat()
    return {"path": value, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def source_fingerprint(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Names, sizes and modification times of the dataset's local sources.

    Parameters
    ----------
    settings : mapping
        The ``dataset`` section of ``params.yaml``.

    Returns
    -------
    fingerprint : dict
        ``{"dataset": name, "sources": {key: {...}}}``: per source key (:data:`SOURCE_KEYS`)
        with a non-empty value, a file's ``bytes`` and ``mtime_ns``, or a folder's number of
        ``files``, total ``bytes`` and the sha256 of its sorted listing (relative name, size,
        modification time of every file). Deterministic: the same files give the same dict.
    """
    sources = {k: _describe(str(settings[k])) for k in source_keys(settings)
               if isinstance(settings[k], str) and settings[k]}
    return {"dataset": settings.get("name"), "sources": sources}
