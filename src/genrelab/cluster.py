"""The Dask engine behind :func:`genrelab.compute.map_tracks`: clients, local clusters, faults, progress.

:func:`genrelab.compute.map_tracks` decides *where* per-track work runs (in this process, on a
local cluster, or on the cluster at ``compute.address``); this module does the Dask part.

Tasks
-----
Items are sent in *chunks* (a list of ``(index, item)``; one item per chunk unless the items
are cheap, see :func:`genrelab.compute.map_tracks`), and :func:`run_chunk` runs one chunk on a
worker. It catches every ``Exception`` of ``fn`` per item and returns it as that item's result,
so a bad file is an ordinary, finished task: Dask never retries it (tasks are submitted with
``retries=0``) and the map reports it once.

Faults
------
A worker that dies mid-task (killed, out of memory, segfault) makes the scheduler move its
tasks to other workers. A task whose workers have died under it more than
:data:`ALLOWED_FAILURES` times is given up with :class:`distributed.KilledWorker`, which the
map reports as the result of each of the task's items: a file that kills every worker that
touches it is reported, not retried forever. Only the running task must count as a suspect, so
workers get no task queued behind the running one (:data:`WORKER_SATURATION`). Local clusters
get both settings from here; for a cluster you start yourself, set them on the scheduler
(``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=2`` and
``DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION=1.0``, see ``docs/cluster.md``). Nothing a task writes is trusted
until it is complete: the store's
writes are atomic, so a task killed half way leaves nothing behind that a later run would use.

Threads
-------
Every item runs with one BLAS/OpenMP/FFT/numba thread, on a worker as in this process
(:func:`single_threaded`): parallelism comes from running items side by side, and the result of
an item does not depend on where it ran. Local workers also get ``OMP_NUM_THREADS=1`` (and the
like) in their environment before they start.

Memory
------
Items allocate and free arrays of megabytes each; :func:`run_chunk` calls
:func:`genrelab.allocator.keep_freed_memory`, so that the allocator of every process that runs
items reuses those pages instead of page-faulting them in again for each item.

GPUs
----
A map that passes ``resources={"GPU": 1}`` runs only on workers started with
``--resources GPU=1`` (local clusters give one such worker per visible GPU, each seeing only its
own GPU). If no worker of the cluster has the resource, the map fails at once with a message
saying how to declare one, instead of waiting forever.

Progress
--------
:class:`Progress` counts finished and failed items and shows them through the project's one
progress helper (:func:`genrelab.progress.progress_bar`): a tqdm bar when stderr is a terminal,
otherwise a log line per tenth of the work or per minute (and one at the end). The
dashboard link of the cluster is logged when the client connects (the dashboard itself needs
``bokeh``).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import math
import pickle
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from genrelab.allocator import keep_freed_memory
from genrelab.config import ConfigError

__all__ = [
    "ALLOWED_FAILURES",
    "CLUSTER_START_S",
    "WORKER_SATURATION",
    "LOG_EVERY_S",
    "Progress",
    "close_clients",
    "get_client",
    "has_client",
    "import_here",
    "keep_freed_memory",
    "local_cpus",
    "local_gpus",
    "map_on_cluster",
    "preload_modules",
    "run_chunk",
    "single_threaded",
    "start_forkserver",
    "start_local_cluster",
    "worker_resources",
]

log = logging.getLogger(__name__)

ALLOWED_FAILURES = 2
"""``distributed.scheduler.allowed-failures`` of the clusters started here: a task is moved to
another worker after each of its first 2 worker deaths and given up (``KilledWorker``) at the 3rd."""

WORKER_SATURATION = 1.0
"""``distributed.scheduler.worker-saturation`` of the clusters started here: a worker is sent only
as many tasks as it has threads. With Dask's default (1.1) a one-thread worker holds a second
task waiting behind the running one, and when the worker dies that innocent task is counted as
a suspect too: after a few deaths caused by one bad file its neighbours were given up as well
(seen in this project's tests)."""

CLUSTER_START_S = 2.0
"""Seconds a local cluster costs on top of the work and of the function's own warm-up. Measured
on a 2-core machine with MFCC items of 18 ms (``map_tracks`` in auto mode, fresh processes): on
a cluster, 100 items took 0.2 s longer than in one process and 300 items 1.1 s less, while the
items' own time promised savings of 1.0 s and 2.9 s, so a cluster cost 1.2-1.9 s. The workers
come from a forkserver that imports the task's libraries beside the first items, and this process
keeps running items while the cluster starts (:func:`genrelab.compute.map_tracks`); before both,
a cluster cost about 6 s."""

LOG_EVERY_S = 30.0
"""Seconds between progress log lines when stderr is not a terminal."""

SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}
"""Environment of local workers, set before they start (Dask's nanny ``pre-spawn-environ``)."""


# ---------------------------------------------------------------------------------------------
# What runs on a worker
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run the block with one BLAS/OpenMP thread and one torch thread; restore them after.

    OpenMP covers torch's CPU kernels too; numba's threads are capped by
    ``NUMBA_NUM_THREADS`` in the environment of workers (librosa does not use them in
    parallel). Entering costs about 15 microseconds (:func:`_thread_pools`).
    """
    torch = sys.modules.get("torch")
    torch_threads = torch.get_num_threads() if torch is not None else None
    with _thread_pools().limit(limits=1):
        if torch is not None:
            torch.set_num_threads(1)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(torch_threads)


_POOLS: tuple[int, Any] | None = None


def _thread_pools():
    """threadpoolctl's controller of the thread pools of the libraries loaded so far.

    Finding them walks every loaded shared library (2 ms, which ``threadpool_limits`` paid on
    each call, i.e. for every item that runs in this process); the controller is kept and found
    again only when modules were imported since.
    """
    global _POOLS
    if _POOLS is None or _POOLS[0] != len(sys.modules):
        from threadpoolctl import ThreadpoolController

        _POOLS = (len(sys.modules), ThreadpoolController())
    return _POOLS[1]


def _portable(result: Any) -> Any:
    """An exception that pickles (to travel back from a worker); others become RuntimeError."""
    if not isinstance(result, BaseException):
        return result
    try:
        pickle.loads(pickle.dumps(result))
    except Exception:  # noqa: BLE001 - whatever fails to pickle travels as text
        return RuntimeError(f"{type(result).__qualname__}: {result}")
    return result


def run_chunk(fn: Callable[[Any], Any], chunk: Sequence[tuple[int, Any]], *,
              batched: bool = False) -> list[tuple[int, Any]]:
    """Apply ``fn`` to a chunk of items; every ``Exception`` becomes the result of its item.

    Parameters
    ----------
    fn : callable
        ``fn(item) -> result``, or with ``batched``, ``fn(list of items) -> list of results``
        (a result may itself be an ``Exception`` instance, reported for that item).
    chunk : sequence of (int, item)
        Items with their index in the map.
    batched : bool
        Call ``fn`` once on the whole chunk. If that call raises, each item is run alone
        (``fn([item])``) so that one bad file fails alone.

    Returns
    -------
    list of (int, result or Exception)
        In the order of ``chunk``. ``KeyboardInterrupt`` and ``SystemExit`` propagate.
    """
    keep_freed_memory()
    with single_threaded():
        if not batched:
            out = []
            for index, item in chunk:
                try:
                    out.append((index, fn(item)))
                except Exception as exc:  # noqa: BLE001 - a bad item's error is its result
                    out.append((index, _portable(exc)))
            return out
        items = [item for _, item in chunk]
        try:
            results = list(fn(items))
        except Exception as exc:  # noqa: BLE001 - find the bad item one by one
            if len(items) == 1:
                results = [exc]
            else:
                log.warning("a batch of %d items failed (%s: %s); running them one by one",
                            len(items), type(exc).__name__, exc)
                results = []
                for item in items:
                    try:
                        (one,) = fn([item])
                    except Exception as exc_one:  # noqa: BLE001 - a bad item's error is its result
                        one = exc_one
                    results.append(one)
        if len(results) != len(items):
            raise TypeError(f"batched fn returned {len(results)} results for {len(items)} items")
        return [(index, _portable(r)) for (index, _), r in zip(chunk, results)]


# ---------------------------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{s:02d}s"
    hours, m = divmod(minutes, 60)
    return f"{hours}h{m:02d}m"


class Progress:
    """Progress of a map, with its failures: :func:`genrelab.progress.progress_bar` underneath.

    Parameters
    ----------
    total : int
        Items in the map.
    desc : str
        What is being done (``'features'``).
    enabled : bool
        ``False`` shows nothing (failures are still counted).
    unit : str
        Name of one item.
    log_every_s : float
        Kept for callers of the former interface; how often a log line is written off a terminal
        is the progress helper's rule (a tenth of the work, or a minute).
    """

    def __init__(self, total: int, desc: str = "", *, enabled: bool = True, unit: str = "track",
                 log_every_s: float = LOG_EVERY_S) -> None:
        from genrelab.progress import progress_bar

        self.total, self.desc, self.unit = int(total), desc or "map", unit
        self.done = self.failed = 0
        self.enabled = enabled
        self.log_every_s = log_every_s
        self._t0 = time.monotonic()
        self._bar = progress_bar(total=self.total, desc=self.desc, unit=unit, disable=not enabled)

    def update(self, n: int = 1, *, failed: int = 0) -> None:
        """Count ``n`` finished items, ``failed`` of which failed."""
        self.done += n
        self.failed += failed
        if failed:
            self._bar.set_postfix(failed=self.failed, refresh=False)
        self._bar.update(n)

    def line(self) -> str:
        """``'features: 120/1000 tracks (12%), 3.1/s, 4m44s left, 2 failed'``."""
        elapsed = time.monotonic() - self._t0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        pct = 100.0 * self.done / self.total if self.total else 100.0
        text = f"{self.desc}: {self.done}/{self.total} {self.unit}s ({pct:.0f}%), {rate:.3g}/s"
        if self.done < self.total and rate > 0:
            text += f", {_duration((self.total - self.done) / rate)} left"
        elif self.done >= self.total:
            text += f", {_duration(elapsed)} in all"
        if self.failed:
            text += f", {self.failed} failed"
        return text

    def close(self) -> None:
        """Close the bar, or log the closing line."""
        self._bar.close()


# ---------------------------------------------------------------------------------------------
# Clusters and clients
# ---------------------------------------------------------------------------------------------

_CLIENTS: dict[tuple, tuple[Any, Any]] = {}  # key -> (client, cluster started here or None)


def local_cpus() -> int:
    """CPU cores this process may use (affinity and cgroup quota respected, as Dask counts them)."""
    from dask.system import CPU_COUNT

    return max(1, int(CPU_COUNT))


def local_gpus() -> int:
    """CUDA devices visible to this process (0 without torch or CUDA)."""
    try:
        import torch
    except ImportError:
        return 0
    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def _forkserver(preload: Sequence[str]) -> bool:
    """Start workers from a ``forkserver`` that has imported ``preload`` once (else Dask's spawn).

    Spawned workers each start a fresh interpreter and import numpy, scipy, librosa and this
    project again (seconds per worker); forked from a server that imported them once, they
    start at once and close faster (measured on 2 cores under load: 1.9 s to start and 0.1 s to
    close 2 workers, against 3-6 s and 2-3 s). The server is started once per process, with one
    BLAS/OpenMP thread in its environment; only the first cluster's ``preload`` counts.
    """
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():  # pragma: no cover - not POSIX
        return False
    import dask
    from distributed.utils import get_mp_context

    # Set for the whole process, not just while the cluster starts: a nanny restarting a dead
    # worker later asks again, and should fork it as quickly.
    dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"})
    ctx = get_mp_context()  # Dask's own preload list is set here, once; ours replaces it
    modules = ["distributed", "numpy", "genrelab.cluster", *preload]
    ctx.set_forkserver_preload([m for m in dict.fromkeys(modules) if m and m != "__main__"])
    return True


def import_here(modules: Sequence[str]) -> None:
    """Import ``modules`` in this process before a forkserver imports them too.

    numba keeps the compiled code of a ``@guvectorize(cache=True)`` function (librosa has a
    dozen, compiled when their module is imported) in two cache files; two processes that
    compile the same one at once can pair the wrong files, and every later call of it then
    crashes with a segmentation fault until the cache is deleted (numba issue #10128; seen in
    this project's test runs on a fresh install, in ``librosa.core.pitch``). Importing here
    first writes each cache once; the server then only reads it. Modules that cannot be
    imported are left to the server, which skips them as well.
    """
    import importlib

    for module in dict.fromkeys(modules):
        if module and module != "__main__":
            try:
                importlib.import_module(module)
            except ImportError:
                pass


def start_forkserver(preload: Sequence[str]) -> bool:
    """Start the local workers' forkserver now, in a thread, importing ``preload``.

    A map that may end on a local cluster calls this before its first items: the server's
    imports (1-2 s) then run beside them on another core, and a cluster started later forks
    warm workers at once. Returns whether a forkserver is used (else workers are spawned).
    """
    if not _forkserver(preload):  # pragma: no cover - not POSIX
        return False
    import threading
    from multiprocessing import forkserver

    def start() -> None:
        import_here(preload)  # first here, then in the server (numba's cache: see import_here)
        forkserver.ensure_running()

    threading.Thread(target=start, name="genrelab-forkserver", daemon=True).start()
    return True


def start_local_cluster(n_workers: int, *, gpus: int = 0, dashboard: bool = True,
                        memory_limit: str | int = "auto", preload: Sequence[str] = ()):
    """Start a cluster of worker processes on this machine.

    Parameters
    ----------
    n_workers : int >= 0
        CPU workers, one thread each; they see no GPU (``CUDA_VISIBLE_DEVICES=''``) when ``gpus``.
    gpus : int >= 0
        GPU workers, one per device: worker ``gpu-i`` sees only GPU ``i`` and declares the
        resource ``GPU=1``.
    dashboard : bool
        Serve the dashboard on port 8787 (or a free one if taken; needs ``bokeh``); else any free port.
    memory_limit : str or int
        Per worker (Dask's rules: ``'auto'`` shares the machine's memory evenly). A worker
        over it is restarted and its task moved (see the module docstring).
    preload : sequence of str
        Modules the workers' forkserver imports once (the task function's module).

    Returns
    -------
    distributed.LocalCluster
        Its scheduler runs in this process with ``allowed-failures`` = :data:`ALLOWED_FAILURES`
        and ``worker-saturation`` = :data:`WORKER_SATURATION`.
    """
    import dask
    from distributed import LocalCluster, Nanny

    if n_workers < 0 or gpus < 0 or n_workers + gpus == 0:
        raise ValueError(f"need at least one worker, got n_workers={n_workers}, gpus={gpus}")
    env = {"CUDA_VISIBLE_DEVICES": ""} if gpus else {}
    spawn_env = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **SINGLE_THREAD_ENV}
    # Dask's MALLOC_TRIM_THRESHOLD_=65536 hands freed memory back to the OS at once, so every
    # clip-sized array is page-faulted in again: per-track features cost 2x the CPU in workers
    # (measured: mfcc of a 30 s clip 0.065 s vs 0.031 s of CPU in this process). glibc's own
    # adaptive threshold keeps workers as fast as this process.
    spawn_env.pop("MALLOC_TRIM_THRESHOLD_", None)
    method = "forkserver" if _forkserver(preload) else "spawn"
    import_here(preload)  # before any worker or server imports them (numba's cache: see import_here)
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        # Dask logs each nanny, worker and connection at INFO (about 25 lines per cluster);
        # ``silence_logs`` no longer covers a cluster started from a thread. Our own lines say
        # when the cluster starts and what it has; GENRELAB_LOG=DEBUG shows Dask's too.
        logging.getLogger("distributed").setLevel(logging.WARNING)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": spawn_env,
                          "distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                          "distributed.scheduler.worker-saturation": WORKER_SATURATION,
                          "distributed.worker.multiprocessing-method": method}):
        cluster = LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, memory_limit=memory_limit,
            dashboard_address=":8787" if dashboard else ":0", scheduler_kwargs={"allowed_failures": ALLOWED_FAILURES},
            silence_logs=logging.WARNING, env=env,
        )
        if gpus:
            base = dict(cluster.new_spec["options"])
            for i in range(gpus):
                options = {**base, "resources": {"GPU": 1}, "env": {"CUDA_VISIBLE_DEVICES": str(i)}}
                cluster.worker_spec[f"gpu-{i}"] = {"cls": Nanny, "options": options}
            cluster.sync(cluster._correct_state)  # start the workers just added to the spec
    return cluster


def _describe(client) -> str:
    info = client.scheduler_info(n_workers=-1) if _accepts_n_workers(client) else client.scheduler_info()
    workers = info.get("workers", {})
    threads = sum(w.get("nthreads", 0) for w in workers.values())
    gpus = sum(w.get("resources", {}).get("GPU", 0) for w in workers.values())
    text = f"{len(workers)} workers, {threads} threads" + (f", {gpus:g} GPUs" if gpus else "")
    import importlib.util

    if importlib.util.find_spec("bokeh") is None:
        return text + "; no dashboard (pip install bokeh)"
    return text + f"; dashboard {client.dashboard_link}"


def _accepts_n_workers(client) -> bool:
    import inspect

    return "n_workers" in inspect.signature(client.scheduler_info).parameters


def get_client(*, address: str | None = None, n_workers: int = 0, gpus: int = 0, timeout: float = 20.0,
               preload: Sequence[str] = ()):
    """The Dask client of this process for a scheduler address or a local cluster (cached).

    Parameters
    ----------
    address : str, optional
        ``tcp://host:8786``: connect to that scheduler (``compute.address``).
    n_workers, gpus : int
        Without ``address``: CPU and GPU workers of a local cluster, started on the first call
        and kept (with its client) until :func:`close_clients` or the end of the process.
    timeout : float
        Seconds to wait for the scheduler at ``address``.
    preload : sequence of str
        Modules a new local cluster's workers import before they start (see
        :func:`start_local_cluster`).

    Returns
    -------
    distributed.Client

    Raises
    ------
    ConfigError
        If no scheduler answers at ``address``.
    """
    from distributed import Client

    key = ("address", address) if address else ("local", n_workers, gpus)
    if key in _CLIENTS:
        client, _ = _CLIENTS[key]
        if client.status == "running":
            return client
        close_clients(key)
    if address:
        try:
            client = Client(address, timeout=f"{timeout}s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(
                f"compute.address={address!r}: no Dask scheduler answers there ({type(exc).__name__}: {exc}); "
                "start one (`dask scheduler`, see docs/cluster.md) or set compute.address=null to run on this machine"
            ) from None
        cluster = None
    else:
        t0 = time.perf_counter()
        cluster = start_local_cluster(n_workers, gpus=gpus, preload=preload)
        client = Client(cluster, set_as_default=False)
        log.info("started a local Dask cluster in %.1f s", time.perf_counter() - t0)
    _CLIENTS[key] = (client, cluster)
    log.info("Dask cluster %s: %s", client.scheduler.address, _describe(client))
    return client


def has_client(*, address: str | None = None, n_workers: int = 0, gpus: int = 0) -> bool:
    """Whether :func:`get_client` already holds a running client for these arguments."""
    key = ("address", address) if address else ("local", n_workers, gpus)
    return key in _CLIENTS and _CLIENTS[key][0].status == "running"


def close_clients(key: tuple | None = None) -> None:
    """Close the cached clients (and the local clusters started by :func:`get_client`)."""
    for k in [key] if key is not None else list(_CLIENTS):
        client, cluster = _CLIENTS.pop(k, (None, None))
        with contextlib.suppress(Exception):
            if client is not None:
                client.close()
        with contextlib.suppress(Exception):
            if cluster is not None:
                cluster.close()


atexit.register(close_clients)


def worker_resources(client) -> dict[str, float]:
    """Total of each resource declared by the workers of ``client``'s cluster (``{'GPU': 2}``)."""
    info = client.scheduler_info(n_workers=-1) if _accepts_n_workers(client) else client.scheduler_info()
    total: dict[str, float] = {}
    for w in info.get("workers", {}).values():
        for name, amount in (w.get("resources") or {}).items():
            total[name] = total.get(name, 0) + amount
    return total


# ---------------------------------------------------------------------------------------------
# The map
# ---------------------------------------------------------------------------------------------


def module_of(fn: Any) -> str | None:
    """The module that defines ``fn`` (a function, a ``functools.partial`` or a callable object)."""
    fn = getattr(fn, "func", fn)  # functools.partial
    return getattr(fn, "__module__", None) or getattr(type(fn), "__module__", None)


def preload_modules(fn: Any) -> list[str]:
    """Modules a local cluster's workers import before they start, to run ``fn`` warm.

    ``fn``'s module; the modules that module lists in a ``WORKER_PRELOAD`` tuple (libraries it
    imports only when first called); and, for a ``functools.partial``, those that its bound
    arguments (or the items of a bound list or tuple) list in a ``worker_preload`` attribute:
    a feature extractor names the libraries its first slice imports (the classic descriptors
    need ``librosa.filters`` and ``scipy.signal``, about a second that each fresh worker would
    otherwise spend on its first task, while MFCC alone needs neither). The forkserver imports
    them beside the first items (:func:`start_forkserver`), so a list no longer than the task
    needs brings the workers up sooner.
    """
    module = module_of(fn)
    names = [module, *getattr(sys.modules.get(module or ""), "WORKER_PRELOAD", ())]
    if isinstance(fn, functools.partial):
        for arg in (*fn.args, *fn.keywords.values()):
            for obj in arg if isinstance(arg, (list, tuple)) else (arg,):
                names += getattr(obj, "worker_preload", ())
    return list(dict.fromkeys(m for m in names if m))


def _worker_environment(module: str | None) -> str:
    """Run on each worker: '' when it can import ``module`` and the same genrelab, else why not."""
    import importlib

    try:
        import genrelab

        if module:
            importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - reported to the client, which stops with it
        return f"{type(exc).__name__}: {exc}"
    return f"genrelab {getattr(genrelab, '__version__', '?')}"


def _check_workers(client, fn: Any, resources: Mapping[str, float] | None) -> None:
    """Fail at once (instead of every task, or waiting forever) on a cluster that cannot run ``fn``."""
    if resources:
        have = worker_resources(client)
        missing = {k: v for k, v in resources.items() if have.get(k, 0) < v}
        if missing:
            raise ConfigError(
                f"compute: these tasks need worker resources {dict(resources)}, but no worker of the cluster at "
                f"{client.scheduler.address} declares {', '.join(missing)} (declared: {have or 'none'}); start "
                "GPU workers with `dask worker <scheduler> --nthreads 1 --resources GPU=1` (docs/cluster.md) or "
                "run that step on the CPU (device: cpu)"
            )
    import genrelab

    ours = f"genrelab {getattr(genrelab, '__version__', '?')}"
    answers = client.run(_worker_environment, module_of(fn))
    bad = {w: a for w, a in answers.items() if a != ours}
    if bad:
        lines = "; ".join(f"{w}: {a}" for w, a in sorted(bad.items())[:5])
        raise ConfigError(
            f"compute: {len(bad)} of {len(answers)} Dask workers cannot run this step ({lines}); install this "
            f"project ({ours}) in the workers' environment (pip install -e .) and restart them"
        )


def map_on_cluster(client, fn: Callable[[Any], Any], chunks: Sequence[Sequence[tuple[int, Any]]], *,
                   batched: bool = False, resources: Mapping[str, float] | None = None,
                   progress: Progress | None = None, desc: str = "", check: bool = True,
                   ) -> Iterator[tuple[int, Any]]:
    """Run chunks of items as Dask tasks; yield ``(index, result or Exception)`` as tasks finish.

    Parameters
    ----------
    client : distributed.Client
    fn : callable
        Picklable; see :func:`run_chunk`. Keep it small (settings, not loaded models: load
        those on the worker, e.g. with :func:`genrelab.compute.worker_cached`), it travels
        with every task.
    chunks : sequence of sequence of (int, item)
        One task per chunk.
    batched : bool
        ``fn`` takes a list of items (see :func:`run_chunk`).
    resources : mapping, optional
        Worker resources each task needs, e.g. ``{"GPU": 1}``.
    progress : Progress, optional
        Updated per finished item.
    desc : str
        Prefix of the task names (shown on the dashboard).
    check : bool
        First check that some worker has ``resources`` and that every worker can import
        ``fn``'s module (raises :class:`ConfigError` otherwise).

    Yields
    ------
    (int, result or Exception)
        An item whose task was given up (``KilledWorker`` after :data:`ALLOWED_FAILURES`
        worker deaths, or any error outside ``fn``) gets that exception.

    Notes
    -----
    Closing the generator early, or ``KeyboardInterrupt`` while it waits, cancels every task
    not yet finished.
    """
    from distributed import as_completed

    if check:
        _check_workers(client, fn, resources)
    tag = f"{desc or 'map'}-{uuid.uuid4().hex[:8]}"
    pending: dict[Any, list[int]] = {}
    for n, chunk in enumerate(chunks):
        fut = client.submit(run_chunk, fn, list(chunk), batched=batched, key=f"{tag}-{n}",
                            resources=dict(resources) if resources else None, retries=0, pure=False)
        pending[fut] = [i for i, _ in chunk]
    try:
        # with_results: the client's event loop fetches results as tasks finish, in the
        # background; asking each future for its result in turn costs a round trip each
        # (measured: 3x slower than this process on 2 loaded cores).
        for fut, pairs in as_completed(list(pending), loop=client.loop, with_results=True, raise_errors=False):
            indices = pending.pop(fut)
            if fut.status != "finished":  # error: pairs is (type, exception, traceback); cancelled: the error
                exc = pairs[1] if isinstance(pairs, tuple) and len(pairs) == 3 else pairs
                if not isinstance(exc, BaseException):
                    exc = RuntimeError(f"task {fut.key} {fut.status}")
                log.warning("%s: a task of %d item(s) failed outside the work itself: %s: %s",
                            desc or "map", len(indices), type(exc).__name__, exc)
                pairs = [(i, exc) for i in indices]
            fut.release()
            for index, result in pairs:
                if progress is not None:
                    progress.update(1, failed=int(isinstance(result, BaseException)))
                yield index, result
    finally:
        if pending:
            with contextlib.suppress(Exception):
                client.cancel(list(pending), force=True)
            log.warning("%s: cancelled %d unfinished task(s)", desc or "map", len(pending))


def chunk_items(items: Sequence[Any], size: int, *, start: int = 0) -> list[list[tuple[int, Any]]]:
    """Consecutive chunks of ``(index, item)``, ``size`` items each (the last may be shorter)."""
    size = max(1, int(size))
    indexed = list(enumerate(items, start=start))
    return [indexed[i:i + size] for i in range(0, len(indexed), size)]


def auto_chunk_size(n_items: int, seconds_per_item: float, n_threads: int, *,
                    target_task_s: float = 0.25) -> int:
    """Items per task so that a task lasts about ``target_task_s`` (Dask costs a few ms per task)
    while every thread still gets at least 4 tasks (for balance and cheap losses)."""
    if seconds_per_item <= 0 or not math.isfinite(seconds_per_item):
        return 1
    by_time = max(1, int(target_task_s / seconds_per_item))
    by_balance = max(1, n_items // (4 * max(1, n_threads)))
    return max(1, min(by_time, by_balance))
