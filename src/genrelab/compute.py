"""Per-track maps: every expensive per-track loop of the pipeline goes through :func:`map_tracks`.

Where the work runs is the ``compute`` params section (:class:`ComputeSettings`):

- ``address: tcp://host:8786``: on the Dask cluster whose scheduler listens there (workers
  need this project installed and the store on a shared path; see ``docs/cluster.md``).
- ``workers: 1``: in this process, one item after the other.
- ``workers: n > 1``: on a local Dask cluster of ``n`` worker processes, one thread each.
- ``workers: 0`` (default): decided per map from the job size. The first two items run here,
  timed; the second one's time ``c`` is the cost of an item and the first one's excess ``w``
  is the warm-up (imports, JIT compilation, model loading), which each worker pays again (the
  first call this process ever made of the function counts, if it was slower). With
  ``k`` cores and ``r`` items left, a local cluster of ``k`` workers saves ``r * c * (1 - 1/k)``
  seconds and costs ``CLUSTER_START_S + w`` (2 s to start it, import the libraries in fresh
  workers and stop it, measured on a 2-core machine); the rest runs on the cluster when the
  saving is larger, else here. A cluster already running in this process costs nothing to start.
  Cheap items travel several to a task so that Dask's few milliseconds per task stay small
  (:func:`genrelab.cluster.auto_chunk_size`).
  On a 1-core machine everything runs here.

Tasks that need a GPU (``resources={"GPU": 1}``) run on workers declaring that resource; on a
machine with one GPU (or none) they run in this process, which owns the GPU.

Every item runs with one BLAS/OpenMP/FFT thread wherever it runs, so its result does not
depend on the engine (:func:`genrelab.cluster.single_threaded`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ComputeSettings", "clear_worker_cache", "configure", "default_settings", "map_tracks", "worker_cached"]

log = logging.getLogger(__name__)

_ADDRESS = re.compile(r"(tcp|tls|ucx|ws|wss|inproc)://\S+")


@dataclass(frozen=True)
class ComputeSettings:
    """The ``compute`` params section: where per-track work runs.

    Attributes
    ----------
    workers : int >= 0
        0 = auto (see the module docstring), 1 = in this process, n = a local cluster of n
        worker processes.
    address : str or None
        Address of a running Dask scheduler, e.g. ``'tcp://10.0.0.5:8786'``; overrides
        ``workers``.
    """

    workers: int = 0
    address: str | None = None

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ValueError(f"workers must be 0 (auto), 1 (in this process) or more, got {self.workers}")
        if self.address is not None and not _ADDRESS.fullmatch(self.address):
            raise ValueError(f"address {self.address!r} is not a Dask scheduler address; use e.g. tcp://host:8786 "
                             "(or null to run on this machine)")


_DEFAULT = ComputeSettings()


def configure(settings: ComputeSettings) -> None:
    """Make ``settings`` the default of every :func:`map_tracks` call of this process.

    :func:`genrelab.stage.run_stage` calls it with the ``compute`` params section, so that a
    stage's per-track maps run where the configuration says without the settings being passed
    down through every function. ``compute`` never changes a result, only where and how fast it
    is computed, so stages do not list it as a DVC parameter.
    """
    global _DEFAULT
    if not isinstance(settings, ComputeSettings):
        raise TypeError(f"expected ComputeSettings, got {type(settings).__name__}")
    _DEFAULT = settings


def default_settings() -> ComputeSettings:
    """The settings :func:`map_tracks` uses when given none (see :func:`configure`)."""
    return _DEFAULT


def map_tracks(fn: Callable[[Any], Any], items: Iterable[Any], *, settings: ComputeSettings | None = None,
               desc: str = "", progress: bool = True, resources: Mapping[str, float] | None = None,
               batch_size: int | None = None) -> Iterator[tuple[int, Any]]:
    """Apply picklable ``fn`` to every item; yield ``(index, result)`` as items finish.

    Parameters
    ----------
    fn : callable
        ``fn(item) -> result``. It travels to the workers with every task: keep it small
        (settings, not loaded models; see :func:`worker_cached`).
    items : iterable
        Picklable items (paths, track rows ...).
    settings : ComputeSettings, optional
        Where to run (default: :func:`default_settings`, i.e. the stage's ``compute`` section,
        else auto on this machine).
    desc : str
        What is done, for the progress display and the task names.
    progress : bool
        Show progress (a bar on a terminal, else a log line every 30 s).
    resources : mapping, optional
        Dask worker resources every task needs, e.g. ``{"GPU": 1}``.
    batch_size : int, optional
        Call ``fn`` on lists of up to ``batch_size`` items instead (``fn(list) -> list`` of
        results, each a value or an ``Exception``); a list that raises as a whole is run item
        by item, so one bad file fails alone.

    Yields
    ------
    (int, result or Exception)
        ``index`` is the item's position in ``items``; ``result`` is ``fn``'s return value or
        the ``Exception`` it raised (a bad file is reported per item, once, and the map goes
        on). Order is completion order. ``KeyboardInterrupt`` propagates, and closing the
        generator early cancels unfinished work.

    Raises
    ------
    genrelab.config.ConfigError
        If ``settings.address`` does not answer, or no worker there can run the tasks
        (missing resource, project not installed).
    """
    from genrelab import cluster

    settings = settings if settings is not None else _DEFAULT
    items = list(items)
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size}")
    bar = cluster.Progress(len(items), desc, enabled=progress)
    try:
        yield from _dispatch(fn, items, settings, desc=desc, bar=bar, resources=resources, batch_size=batch_size)
    finally:
        bar.close()


def _in_worker() -> bool:
    """Whether this code runs inside a Dask task."""
    import sys

    if "distributed" not in sys.modules:
        return False
    from distributed import get_worker

    try:
        get_worker()
    except ValueError:
        return False
    return True


_FIRST_CALL_S: dict[str, float] = {}
"""Seconds the first call of each task function took in this process (imports, JIT compilation,
model loading included): what a fresh worker pays again, even once this process is warm."""


def _fn_key(fn) -> str:
    target = getattr(fn, "func", fn)
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', type(target).__qualname__)}"


def _serial(fn, items, *, start: int, chunk: int, batched: bool, bar) -> Iterator[tuple[int, Any]]:
    from genrelab import cluster

    key = _fn_key(fn)
    for part in cluster.chunk_items(items[start:], chunk, start=start):
        t0 = time.perf_counter()
        done = cluster.run_chunk(fn, part, batched=batched)
        _FIRST_CALL_S.setdefault(key, (time.perf_counter() - t0) / len(part))
        for index, result in done:
            bar.update(1, failed=int(isinstance(result, BaseException)))
            yield index, result


def _dispatch(fn, items: list, settings: ComputeSettings, *, desc: str, bar, resources, batch_size):
    from genrelab import cluster

    batched = batch_size is not None
    chunk = batch_size or 1
    if not items:
        return
    if _in_worker():  # a map inside a task runs in that task: workers do not start clusters
        yield from _serial(fn, items, start=0, chunk=chunk, batched=batched, bar=bar)
        return
    if settings.address is not None:
        client = cluster.get_client(address=settings.address)
        yield from cluster.map_on_cluster(client, fn, cluster.chunk_items(items, chunk), batched=batched,
                                          resources=resources, progress=bar, desc=desc)
        return
    if resources and resources.get("GPU", 0) > 0:
        gpus = cluster.local_gpus()
        if settings.workers == 1 or gpus <= 1:
            yield from _serial(fn, items, start=0, chunk=chunk, batched=batched, bar=bar)
        else:
            client = cluster.get_client(n_workers=0, gpus=gpus, preload=cluster.preload_modules(fn))
            yield from cluster.map_on_cluster(client, fn, cluster.chunk_items(items, chunk), batched=batched,
                                              resources=resources, progress=bar, desc=desc, check=False)
        return
    workers = settings.workers or cluster.local_cpus()
    if workers == 1 or len(items) == 1:
        yield from _serial(fn, items, start=0, chunk=chunk, batched=batched, bar=bar)
        return
    start = 0
    if settings.workers == 0 and not batched:
        if len(items) >= EARLY_FORKSERVER_ITEMS and not cluster.has_client(n_workers=workers):
            cluster.start_forkserver(cluster.preload_modules(fn))  # warms up beside the timed items
        times = []
        for index in range(min(2, len(items))):
            t0 = time.perf_counter()
            yield from _serial(fn, items[: index + 1], start=index, chunk=1, batched=False, bar=bar)
            times.append(time.perf_counter() - t0)
        start = len(times)
        left = len(items) - start
        if left == 0:
            return
        per_item = times[-1]
        warmup = max(0.0, max(times[0], _FIRST_CALL_S.get(_fn_key(fn), 0.0)) - per_item)
        saving = left * per_item * (1.0 - 1.0 / workers)
        started = cluster.has_client(n_workers=workers)
        cost = 0.0 if started else cluster.CLUSTER_START_S + warmup
        if saving <= cost:
            log.info("%s: %d items of %.3g s each left: in this process (a cluster would save %.1f s, cost %.1f s)",
                     desc or "map", left, per_item, saving, cost)
            yield from _serial(fn, items, start=start, chunk=1, batched=False, bar=bar)
            return
        chunk = cluster.auto_chunk_size(left, per_item, workers)
        log.info("%s: %d items of %.3g s each left: on %d local workers, %d per task (saves about %.0f s, "
                 "costs %.1f s)", desc or "map", left, per_item, workers, chunk, saving, cost)
        if not started:  # items go on here while the cluster starts
            start = yield from _start_cluster_meanwhile(fn, items, start, workers=workers, bar=bar)
            if start == len(items):
                return
            chunk = cluster.auto_chunk_size(len(items) - start, per_item, workers)
    client = cluster.get_client(n_workers=workers, preload=cluster.preload_modules(fn))
    yield from cluster.map_on_cluster(client, fn, cluster.chunk_items(items[start:], chunk, start=start),
                                      batched=batched, resources=resources, progress=bar, desc=desc, check=False)


def _start_cluster_meanwhile(fn, items: list, start: int, *, workers: int, bar):
    """Start a local cluster in a thread and run items here, one by one, until it is up.

    Starting a cluster (forking the workers, which import the task's libraries) takes seconds
    during which this process would otherwise wait: a core's worth of items is done instead
    (measured on 2 cores: see ``benchmarks/bench_features.py``). Returns the index of the first
    item left; the generator yields the items done here.
    """
    from concurrent.futures import ThreadPoolExecutor

    from genrelab import cluster

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="genrelab-cluster-start") as pool:
        future = pool.submit(cluster.get_client, n_workers=workers, preload=cluster.preload_modules(fn))
        while not future.done() and start < len(items):
            yield from _serial(fn, items[: start + 1], start=start, chunk=1, batched=False, bar=bar)
            start += 1
        future.result()  # also when every item is done here: the cluster is kept for the next map
    return start


EARLY_FORKSERVER_ITEMS = 32
"""Maps of at least this many items start the workers' forkserver before timing their first
items (:func:`genrelab.cluster.start_forkserver`), in case they end on a local cluster."""

_CACHE: dict[Any, Any] = {}
_CACHE_SIZE = 4


def worker_cached(factory: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``factory(*args, **kwargs)``, built once per process for these (hashable) arguments.

    Tasks use it to load a model once per worker rather than once per item, e.g.
    ``sep = worker_cached(DemucsSeparator, "htdemucs", device="cuda")``. The last 4 objects
    are kept.
    """
    key = (factory, args, tuple(sorted(kwargs.items())))
    if key not in _CACHE:
        while len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = factory(*args, **kwargs)
    return _CACHE[key]


def clear_worker_cache() -> None:
    """Drop the objects of :func:`worker_cached` in this process (frees models, GPU memory)."""
    _CACHE.clear()
