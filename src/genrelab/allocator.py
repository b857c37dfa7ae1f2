"""The C allocator of a process that allocates and frees large arrays over and over.

Per-track items (decoded audio, STFTs) and training batches (activations) are megabytes each,
allocated and freed thousands of times. With glibc's defaults every one of them is handed back
to the operating system when freed and page-faulted in again when next allocated;
:func:`keep_freed_memory` makes glibc keep and reuse those pages.
"""

from __future__ import annotations

__all__ = ["ALLOCATOR_MMAP_THRESHOLD", "ALLOCATOR_TRIM_THRESHOLD", "keep_freed_memory"]

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
ALLOCATOR_MMAP_THRESHOLD = 32 * 2**20
"""Bytes from which glibc serves an allocation by ``mmap`` (its maximum)."""
ALLOCATOR_TRIM_THRESHOLD = 256 * 2**20
"""Free bytes at the top of the heap that glibc keeps for reuse."""
_ALLOCATOR_TUNED = False


def keep_freed_memory() -> bool:
    """Make this process's allocator reuse freed memory instead of handing it back to the OS.

    Per-track work allocates and frees arrays of megabytes per item (a 30 s clip's STFT is
    10 MB). glibc serves such arrays by ``mmap`` and unmaps them when freed, or trims the top
    of its heap as soon as 128 kB are free there, so every item page-faults its arrays in
    again: 6,800 minor page faults per 30 s clip for the classic + mel + mfcc sets, a fifth of
    their CPU time (one thread over the shared GTZAN clips: 0.101 s per clip with glibc's
    defaults, 0.080 s with these settings). Here, arrays up to
    :data:`ALLOCATOR_MMAP_THRESHOLD` come from the heap and up to
    :data:`ALLOCATOR_TRIM_THRESHOLD` of free heap is kept, so the next item reuses the pages.
    The peak memory does not grow (``benchmarks/bench_features_memory.py``: 230 and 234 MB for
    100 and 1000 tracks, 230 and 232 MB without these settings).

    Training and inference do the same with every batch's activations: the torch loop of
    :mod:`genrelab.deep.loop` spent 15-17 s of a 35-40 s CPU benchmark in the kernel, faulting
    them in again, and its speed depended on how glibc's adaptive threshold happened to move
    (``benchmarks/bench_training.py``, ``cnn`` on 2 cores: 278-320 slices/s with glibc's
    defaults, 408-455 with these settings, 0.9 s in the kernel).

    Called by :func:`genrelab.cluster.run_chunk` (so it applies wherever per-track items run,
    this process or a worker) and by :func:`genrelab.deep.loop.fit` and
    :func:`~genrelab.deep.loop.predict_proba`. Idempotent; a no-op, returning ``False``, where
    the C library is not glibc.

    Returns
    -------
    bool
        Whether the settings are in effect.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc (macOS, musl)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _ALLOCATOR_TUNED = bool(mallopt(M_MMAP_THRESHOLD, ALLOCATOR_MMAP_THRESHOLD)
                            and mallopt(M_TRIM_THRESHOLD, ALLOCATOR_TRIM_THRESHOLD))
    return _ALLOCATOR_TUNED
