"""Patch-level embeddings and zero-training genre predictions with Essentia's models.

Typical use::

    from genrelab.embeddings import EmbeddingExtractor, pool

    with EmbeddingExtractor("msd-musicnn-1", models_dir="models") as ex:
        emb, start_s = ex.embed(y, sr)            # (n_patches, 200), (n_patches,)
    track_vector = pool(emb, how="meanstd")        # (400,)

Process isolation
-----------------
essentia-tensorflow bundles its own TensorFlow (2.5); importing the ``tensorflow`` package
next to it crashes. By default (``isolate=True``) every model is therefore loaded in a
worker subprocess (``python -m genrelab.embeddings._worker``) that imports nothing but
numpy, Essentia and this package, so the calling process (which may use torch) never
loads Essentia at all. The worker is started once per extractor and keeps its model
loaded for every clip; audio goes in and embeddings come back through a pipe, which costs
a few milliseconds per 30 s clip. ``isolate=False`` runs Essentia in the calling process
instead (one loaded model per process, cached); torch and essentia-tensorflow in one
process worked in our checks (see ``tests/test_embeddings.py``), but isolation also keeps
TensorFlow's thread pools and memory out of the caller.

Speed
-----
One loaded graph is reused for all clips: a fresh ``TensorflowPredictMusiCNN`` per clip
pays for loading the graph and for a first session run that uses one core only, about as
long again as the embedding itself. Patches are fed ``batch_size`` at a time, pooled across
the clips of one call. On the CPU, *small* batches are cheaper: MusiCNN costs about 30 ms
of CPU per patch one at a time and about 42 ms per patch in batches of 19 to 64 (the
intermediate tensors of a big batch no longer fit the caches), hence ``batch_size=1`` by
default (EffNet-Discogs ``bs64`` graphs always take 64). See
``benchmarks/bench_embeddings.py``.

The log-mel front end is Essentia's own (``TensorflowInputMusiCNN`` /
``TensorflowInputVGGish``), so the embeddings equal what ``TensorflowPredictMusiCNN`` & co.
return for the same signal and patch hop (to float rounding: about 1e-6).
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genrelab.embeddings.catalog import EssentiaModelSpec, MissingModelError, get_spec, model_path
from genrelab.embeddings.patching import make_patches, min_samples, patch_times
from genrelab.io import read_json

__all__ = [
    "EssentiaWorkerError",
    "EmbeddingExtractor",
    "GenreHead",
    "POOLINGS",
    "pool",
]

log = logging.getLogger(__name__)



def _gather(waits: list, error: BaseException | None = None) -> list:
    """The answers of ``call_async`` waits, in order; every one is collected (no reply is left in a
    worker's pipe) before the first :class:`EssentiaWorkerError` (or ``error``, raised first) is raised."""
    results = []
    for wait in waits:
        try:
            results.append(wait())
        except EssentiaWorkerError as exc:
            error = error or exc
    if error is not None:
        raise error
    return results

class EssentiaWorkerError(RuntimeError):
    """Raised when Essentia fails to load or run a model (in the worker or in-process).

    The message names the model and graph file and repeats Essentia's own error; when the
    worker process died, it gives its exit status and the end of its error output.
    """


# --------------------------------------------------------------------------------------
# backends: where Essentia runs
# --------------------------------------------------------------------------------------
class _SubprocessBackend:
    """One worker subprocess holding one engine; requests are pickled over pipes."""

    def __init__(self, engine: str, kwargs: dict, *, label: str, n_threads: int | None) -> None:
        import genrelab

        self.label = label
        env = os.environ.copy()
        src = str(Path(genrelab.__file__).resolve().parents[1])
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        if n_threads is not None:
            for var in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
                env[var] = str(n_threads)
        self._stderr = tempfile.TemporaryFile()
        self._proc: subprocess.Popen | None = subprocess.Popen(
            [sys.executable, "-m", "genrelab.embeddings._worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env,
        )
        try:
            self.info = self._request("init", {"engine": engine, "kwargs": kwargs})
        except BaseException:
            self.close()
            raise

    def _stderr_tail(self, n: int = 3000) -> str:
        try:
            self._stderr.seek(0)
            text = self._stderr.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        return text[-n:].strip()

    def _died(self, command: str, exc: BaseException) -> EssentiaWorkerError:
        proc = self._proc
        try:
            rc = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        how = f"exit status {rc}"
        if rc < 0:
            try:
                how = f"killed by {signal.Signals(-rc).name}"
            except ValueError:
                pass
        tail = self._stderr_tail()
        self._proc = None
        return EssentiaWorkerError(
            f"{self.label}: the Essentia worker process died ({how}) while handling {command!r}."
            + (f"\nIts last error output:\n{tail}" if tail else "")
        )

    def send(self, command: str, payload: Any) -> None:
        """Post a request; :meth:`receive` collects the answer (so several workers can run at once)."""
        if self._proc is None:
            raise EssentiaWorkerError(f"{self.label}: the model was closed; create a new one")
        try:
            pickle.dump((command, payload), self._proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self._proc.stdin.flush()
        except (BrokenPipeError, ConnectionResetError, OSError) as exc:
            raise self._died(command, exc) from exc
        self._pending = command

    def receive(self) -> Any:
        """The answer to the last :meth:`send`; re-raises the worker's error."""
        command = getattr(self, "_pending", "?")
        if self._proc is None:
            raise EssentiaWorkerError(f"{self.label}: the model was closed; create a new one")
        try:
            reply = pickle.load(self._proc.stdout)
        except (EOFError, pickle.UnpicklingError, OSError) as exc:
            raise self._died(command, exc) from exc
        if reply[0] == "error":
            _, etype, message, tb = reply
            log.debug("worker traceback for %s:\n%s", self.label, tb)
            raise EssentiaWorkerError(f"{self.label}: {etype}: {message}")
        return reply[1]

    def _request(self, command: str, payload: Any) -> Any:
        self.send(command, payload)
        return self.receive()

    def call(self, method: str, *args: Any) -> Any:
        return self._request("call", {"method": method, "args": list(args)})

    def call_async(self, method: str, *args: Any) -> Callable[[], Any]:
        """Start ``method`` in the worker; the returned function waits for its result."""
        self.send("call", {"method": method, "args": list(args)})
        return self.receive

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                pickle.dump(("close", None), proc.stdin)
                proc.stdin.close()
            except (OSError, ValueError):
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for stream in (proc.stdout,):
                try:
                    stream.close()
                except OSError:
                    pass
        if not self._stderr.closed:
            tail = self._stderr_tail()
            if tail:
                log.debug("Essentia worker output for %s:\n%s", self.label, tail)
            self._stderr.close()


_LOADED_ENGINES: dict[tuple, Any] = {}
"""In-process engines, one per (engine, settings): a model is loaded once per process."""


class _InProcessBackend:
    """Runs the engine in this process (``isolate=False``)."""

    def __init__(self, engine: str, kwargs: dict, *, label: str, n_threads: int | None) -> None:
        self.label = label
        if n_threads is not None:
            log.warning("n_threads=%s is ignored with isolate=False: TensorFlow reads its thread "
                        "settings once, when the process first loads it", n_threads)
        key = (engine, tuple(sorted(kwargs.items())))
        if key not in _LOADED_ENGINES:
            from genrelab.embeddings._engine import ENGINES

            try:
                _LOADED_ENGINES[key] = ENGINES[engine](**kwargs)
            except RuntimeError as exc:  # Essentia reports graph and node problems as RuntimeError
                raise EssentiaWorkerError(f"{label}: {type(exc).__name__}: {exc}") from exc
        self._engine = _LOADED_ENGINES[key]
        self.info = self._engine.info()

    def call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self._engine, method)(*args)
        except RuntimeError as exc:
            raise EssentiaWorkerError(f"{self.label}: {type(exc).__name__}: {exc}") from exc

    def call_async(self, method: str, *args: Any) -> Callable[[], Any]:
        result = self.call(method, *args)
        return lambda: result

    def close(self) -> None:
        self._engine = None


BACKENDS: dict[bool, type] = {True: _SubprocessBackend, False: _InProcessBackend}
"""Backend class by the ``isolate`` flag."""


# --------------------------------------------------------------------------------------
# shared plumbing
# --------------------------------------------------------------------------------------
def _resolve_graph(spec: EssentiaModelSpec, models_dir: str | os.PathLike | None,
                   graph_path: str | os.PathLike | None) -> Path:
    if graph_path is not None:
        path = Path(graph_path)
        if not path.is_file():
            published = f"published at {spec.url}" if spec.url else "not published online"
            raise MissingModelError(
                f"graph_path {str(path)!r} does not exist; it should be the graph of {spec.name!r} "
                f"({spec.filename}, {published}); put the file there or pass models_dir instead"
            )
        return path
    if models_dir is None:
        raise ValueError(f"{spec.name}: pass models_dir (the folder holding {spec.filename}) or graph_path")
    return model_path(spec.name, models_dir)


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer")
    return int(value)


class _EssentiaModel:
    """Owns its backends; closes them on ``close()``, at the end of a ``with`` block, or when collected."""

    _backends: Sequence = ()

    def _start(self, engine: str, kwargs: dict, *, isolate: bool, n_threads: int | None, n_workers: int = 1) -> dict:
        if n_threads is not None:
            n_threads = _check_positive_int(n_threads, "n_threads")
        n_workers = _check_positive_int(n_workers, "n_workers")
        if n_workers > 1 and not isolate:
            raise ValueError(f"n_workers={n_workers} needs isolate=True (a process loads a model only once)")
        label = f"{self.name} ({kwargs['graph']})"
        self._backends = []
        try:
            for _ in range(n_workers):
                self._backends.append(BACKENDS[bool(isolate)](engine, kwargs, label=label, n_threads=n_threads))
        except BaseException:
            self.close()
            raise
        return self._backends[0].info

    def close(self) -> None:
        """Stop the worker(s) (or release the in-process reference)."""
        backends, self._backends = self._backends, []
        for backend in backends:
            backend.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing sensible left to do
            pass

    def _check_open(self) -> None:
        if not self._backends:
            raise EssentiaWorkerError(f"{self.name}: the model was closed; create a new one")

    def _call(self, method: str, *args: Any) -> Any:
        self._check_open()
        return self._backends[0].call(method, *args)

    def _map(self, method: str, items: list) -> list:
        """``method(part)`` on consecutive parts of ``items``, one part per worker, in parallel."""
        self._check_open()
        k = min(len(self._backends), len(items))
        if k <= 1:
            return self._call(method, items)
        bounds = np.linspace(0, len(items), k + 1).round().astype(int)
        waits, error = [], None
        for backend, lo, hi in zip(self._backends, bounds[:-1], bounds[1:]):
            try:
                waits.append(backend.call_async(method, items[lo:hi]))
            except EssentiaWorkerError as exc:
                error = exc
                break
        return [r for part in _gather(waits, error) for r in part]


# --------------------------------------------------------------------------------------
# embeddings
# --------------------------------------------------------------------------------------
class EmbeddingExtractor(_EssentiaModel):
    """Patch-level embeddings from one Essentia model, loaded once and reused for every clip.

    Parameters
    ----------
    name : str
        A registered model of kind ``"embedding"`` (``msd-musicnn-1``, ``audioset-vggish-3``,
        ``discogs-effnet-bs64-1`` ...) or ``"classifier"`` (then the "embeddings" are the
        per-patch class probabilities). See :func:`genrelab.embeddings.catalog.list_models`.
    models_dir : str or PathLike, optional
        Folder holding ``<name>.pb``. Either this or ``graph_path`` is required.
    graph_path : str or PathLike, optional
        The graph file itself, under any name (e.g. a local stand-in).
    output : str, optional
        Graph node to return instead of the registry's ``output_node`` (e.g.
        ``"model/Sigmoid"`` for MusiCNN's tag activations).
    patch_hop : int > 0, optional
        Frames between patch starts; defaults to Essentia's (MusiCNN 93 = 1.49 s,
        VGGish 93 = 0.93 s, EffNet 62 = 0.99 s). ``patch_hop=spec.patch_size`` gives
        non-overlapping patches (MusiCNN: 187 frames = 2.99 s, as the original musicnn).
    batch_size : int > 0
        Patches per TensorFlow call, pooled across the clips of one ``embed_many`` call.
        1 is fastest on the CPU (see the module notes); raise it for a GPU. Ignored by
        graphs with a fixed batch (EffNet-Discogs ``bs64``: always 64, the last batch
        zero-padded and its padding dropped).
    pad_short : bool
        Zero-pad clips shorter than one patch (MusiCNN: 2.96 s) to one patch, so that every
        clip yields at least one embedding. With ``False`` such clips yield none.
    isolate : bool
        Run Essentia in a worker subprocess (default; see the module notes) or in this process.
    n_threads : int > 0, optional
        TensorFlow threads per worker (``TF_NUM_INTRAOP_THREADS`` ...); all cores if None.
    n_workers : int > 0
        Worker processes, each with its own copy of the model; ``embed_many`` splits its
        clips between them and they run in parallel. Two single-threaded workers
        (``n_workers=2, n_threads=1``) use two cores better than one worker with two
        threads; each worker costs one more model load and its memory.

    Attributes
    ----------
    spec : EssentiaModelSpec
        Registry entry.
    graph : Path
        Loaded graph file.
    dim : int
        Embedding size (read from the graph at start-up).
    sample_rate : int
        Rate in Hz that audio is resampled to before the front end.

    Raises
    ------
    UnknownModelError
        Unregistered ``name``.
    MissingModelError
        Graph file absent: the message names the file, its URL and the folder for it.
    EssentiaWorkerError
        essentia-tensorflow is not installed, or cannot load the graph or find ``output``.

    Notes
    -----
    Patch ``i`` starts at frame ``i * patch_hop``, i.e. at
    ``i * patch_hop * hop_size / sample_rate`` seconds (the centre of its first STFT frame);
    an incomplete last patch is dropped, as Essentia does.
    """

    def __init__(
        self,
        name: str,
        *,
        models_dir: str | os.PathLike | None = None,
        graph_path: str | os.PathLike | None = None,
        output: str | None = None,
        patch_hop: int | None = None,
        batch_size: int = 1,
        pad_short: bool = True,
        isolate: bool = True,
        n_threads: int | None = None,
        n_workers: int = 1,
    ) -> None:
        self.name = name
        self.spec = spec = get_spec(name)
        if spec.kind not in ("embedding", "classifier"):
            raise ValueError(
                f"{name!r} is a {spec.kind} (it takes embeddings, not audio); use GenreHead({name!r}, ...) "
                f"on the embeddings of {spec.upstream!r}"
            )
        self.patch_hop = spec.patch_hop if patch_hop is None else _check_positive_int(patch_hop, "patch_hop")
        self.batch_size = _check_positive_int(batch_size, "batch_size")
        self.pad_short = bool(pad_short)
        self.output = output or spec.output_node
        self.sample_rate = spec.sample_rate
        self.graph = _resolve_graph(spec, models_dir, graph_path)
        kwargs = dict(graph=str(self.graph), frontend=spec.frontend, frame_size=spec.frame_size,
                      hop_size=spec.hop_size, patch_size=spec.patch_size, patch_hop=self.patch_hop,
                      input_node=spec.input_node, output_node=self.output, batch_size=self.batch_size,
                      fixed_batch=spec.fixed_batch)
        info = self._start("patch", kwargs, isolate=isolate, n_threads=n_threads, n_workers=n_workers)
        self.dim = int(info["dim"])
        self._min_samples = min_samples(hop_size=spec.hop_size, patch_size=spec.patch_size)

    def __repr__(self) -> str:
        return (f"EmbeddingExtractor({self.name!r}, graph={str(self.graph)!r}, output={self.output!r}, "
                f"dim={self.dim}, patch_hop={self.patch_hop})")

    @property
    def patch_seconds(self) -> float:
        """Span of one patch in seconds (from the first to the last frame centre, plus one hop)."""
        return self.spec.patch_size * self.spec.hop_size / self.sample_rate

    @property
    def hop_seconds(self) -> float:
        """Seconds between patch starts."""
        return self.patch_hop * self.spec.hop_size / self.sample_rate

    def _prepare(self, y: Any, sr: Any, index: int) -> np.ndarray:
        where = f"clip {index}" if index >= 0 else "y"
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"{where}: y must be a 1-D mono signal; got shape {y.shape} "
                             f"(mix it down first, e.g. y.mean(axis=0))")
        if not np.issubdtype(y.dtype, np.floating):
            raise ValueError(f"{where}: y must hold floating-point samples in [-1, 1]; got dtype {y.dtype}")
        if isinstance(sr, bool) or not isinstance(sr, (int, np.integer, float)) or sr <= 0 or sr != int(sr):
            raise ValueError(f"{where}: sr={sr!r} must be a positive integer sample rate in Hz")
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{where}: y holds NaN or infinite samples")
        y = y.astype(np.float32, copy=False)
        if int(sr) != self.sample_rate and y.size:
            import librosa

            y = librosa.resample(y, orig_sr=int(sr), target_sr=self.sample_rate, res_type="soxr_hq")
        if self.pad_short and y.size < self._min_samples:
            log.debug("%s: %.2f s is shorter than one %s patch; zero-padded to %.2f s", where,
                      y.size / self.sample_rate, self.name, self._min_samples / self.sample_rate)
            y = np.pad(y, (0, self._min_samples - y.size))
        return np.ascontiguousarray(y, dtype=np.float32)

    def embed(self, y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of one clip.

        Parameters
        ----------
        y : np.ndarray [shape=(n,)]
            Mono audio, floating point.
        sr : int > 0
            Its sample rate in Hz; resampled to :attr:`sample_rate` (soxr, high quality).

        Returns
        -------
        embeddings : np.ndarray [shape=(n_patches, dim), dtype=float32]
        patch_times_s : np.ndarray [shape=(n_patches,), dtype=float64]
            Start of each patch in seconds (see the class notes).
        """
        return self._embed([(y, sr)], first_index=-1)[0]

    def embed_many(self, clips: Sequence[tuple[np.ndarray, int]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Embeddings of several clips, their patches batched together.

        Parameters
        ----------
        clips : sequence of (y, sr)
            Mono signals and their sample rates.

        Returns
        -------
        results : list of (embeddings, patch_times_s)
            One pair per clip, as :meth:`embed` returns.
        """
        return self._embed(clips, first_index=0)

    def _embed(self, clips: Sequence[tuple[np.ndarray, int]], *, first_index: int):
        signals = []
        for i, item in enumerate(clips):
            try:
                y, sr = item
            except (TypeError, ValueError):
                raise ValueError(f"clip {i}: expected a (y, sr) pair; got {type(item).__name__}") from None
            signals.append(self._prepare(y, sr, first_index + i if first_index >= 0 else -1))
        if not signals:
            return []
        if len(signals) < len(self._backends):
            outputs = self._embed_split(signals)
        else:
            outputs = self._map("embed", signals)
        hop = dict(patch_hop=self.patch_hop, hop_size=self.spec.hop_size, sample_rate=self.sample_rate)
        return [(np.asarray(o, dtype=np.float32), patch_times(len(o), **hop)) for o in outputs]

    def _embed_split(self, signals: list[np.ndarray]) -> list[np.ndarray]:
        """Fewer clips than workers: every worker takes a share of the patches, so that one clip
        uses every worker. The log-mel frames (a few % of the work) come from the workers,
        patches are cut here with the same arithmetic as in the workers."""
        frames = self._map("frames_many", signals)
        per_clip = [make_patches(f, patch_size=self.spec.patch_size, patch_hop=self.patch_hop) for f in frames]
        counts = [len(p) for p in per_clip]
        patches = np.concatenate(per_clip)
        if len(patches) == 0:
            return [np.zeros((0, self.dim), dtype=np.float32) for _ in signals]
        k = min(len(self._backends), len(patches))
        bounds = np.linspace(0, len(patches), k + 1).round().astype(int)
        waits = [b.call_async("predict", patches[lo:hi]) for b, lo, hi in zip(self._backends, bounds[:-1], bounds[1:])]
        return np.split(np.concatenate(_gather(waits)), np.cumsum(counts)[:-1])

    def embed_stream(
        self, clips: Iterable[tuple[Any, np.ndarray, int]]
    ) -> Iterator[tuple[Any, np.ndarray, np.ndarray]]:
        """Embed ``(key, y, sr)`` clips as they come, one clip per worker at a time.

        While the workers run the model, this process pulls (decodes) and resamples the next
        clips from the iterator, so decoding overlaps inference. Results come in input order.

        Parameters
        ----------
        clips : iterable of (key, y, sr)
            Any key, a mono signal and its sample rate; a generator is consumed lazily.

        Yields
        ------
        key, embeddings [shape=(n_patches, dim)], patch_times_s [shape=(n_patches,)]
        """
        self._check_open()
        hop = dict(patch_hop=self.patch_hop, hop_size=self.spec.hop_size, sample_rate=self.sample_rate)
        free = list(self._backends)
        busy: deque = deque()
        try:
            for i, (key, y, sr) in enumerate(clips):
                prepared = self._prepare(y, sr, i)
                if not free:
                    backend, done_key, wait = busy.popleft()
                    out = wait()[0]
                    free.append(backend)
                    yield done_key, np.asarray(out, dtype=np.float32), patch_times(len(out), **hop)
                backend = free.pop()
                busy.append((backend, key, backend.call_async("embed", [prepared])))
            while busy:
                backend, done_key, wait = busy.popleft()
                out = wait()[0]
                yield done_key, np.asarray(out, dtype=np.float32), patch_times(len(out), **hop)
        finally:
            for _, _, wait in busy:  # an error or an abandoned generator: drain the pipes
                try:
                    wait()
                except Exception:
                    pass


# --------------------------------------------------------------------------------------
# pooling and the feature-stage table
# --------------------------------------------------------------------------------------
POOLINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": lambda e: e.mean(axis=0),
    "max": lambda e: e.max(axis=0),
    "meanstd": lambda e: np.concatenate([e.mean(axis=0), e.std(axis=0)]),
}
"""Patch-to-track pooling functions by name."""


def pool(embeddings: np.ndarray, how: str = "mean") -> np.ndarray:
    """Pool patch embeddings into one track vector.

    Parameters
    ----------
    embeddings : np.ndarray [shape=(n_patches, dim)]
        At least one patch.
    how : {"mean", "max", "meanstd"}
        ``meanstd`` concatenates the mean and the (population) standard deviation.

    Returns
    -------
    vector : np.ndarray [shape=(dim,) or (2 * dim,), dtype=float32]
    """
    if how not in POOLINGS:
        raise ValueError(f"how={how!r} is not a pooling; choose one of {sorted(POOLINGS)}")
    e = np.asarray(embeddings, dtype=np.float32)
    if e.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (n_patches, dim); got shape {e.shape}")
    if e.shape[0] == 0:
        raise ValueError("embeddings has no patch to pool (shape (0, dim)); the clip was shorter than one patch")
    return POOLINGS[how](e).astype(np.float32)


class GenreHead(_EssentiaModel):
    """Class probabilities from embeddings with one of Essentia's classification heads.

    Parameters
    ----------
    name : str
        A registered model of kind ``"head"`` (``genre_tzanetakis-msd-musicnn-1``,
        ``genre_tzanetakis-audioset-vggish-1``, ``genre_discogs400-discogs-effnet-1`` ...).
    models_dir : str or PathLike, optional
        Folder holding ``<name>.pb`` (and ``<name>.json`` for the class names).
    graph_path : str or PathLike, optional
        The graph file itself; class names are read from the ``.json`` beside it.
    batch_size : int > 0
        Rows per TensorFlow call.
    isolate, n_threads
        As for :class:`EmbeddingExtractor`.

    Attributes
    ----------
    classes : tuple of str
        Class names in output order (from the metadata file, else the registry).
    input_dim : int
        Embedding size the head takes.

    Notes
    -----
    A head only makes sense on the embeddings it was trained on: those of
    ``spec.upstream`` at that model's registered ``output_node`` (for MusiCNN heads
    ``model/dense/BiasAdd`` of ``msd-musicnn-1``, not the batch-normalised penultimate layer
    that the local ``msd-musicnn-frozen`` stand-in returns by default).
    """

    def __init__(
        self,
        name: str,
        *,
        models_dir: str | os.PathLike | None = None,
        graph_path: str | os.PathLike | None = None,
        batch_size: int = 64,
        isolate: bool = True,
        n_threads: int | None = None,
    ) -> None:
        self.name = name
        self.spec = spec = get_spec(name)
        if spec.kind != "head":
            raise ValueError(
                f"{name!r} is a{'n' if spec.kind[0] in 'ae' else ''} {spec.kind} model, not a classification head; "
                + ("it takes audio: EmbeddingExtractor(name, ...) returns its per-patch class probabilities"
                   if spec.kind == "classifier" else "choose a head from `genrelab models list --kind head`")
            )
        self.graph = _resolve_graph(spec, models_dir, graph_path)
        self.input_dim = int(spec.input_dim)
        self.classes = self._read_classes()
        info = self._start("head", dict(graph=str(self.graph), input_node=spec.input_node,
                                        output_node=spec.output_node, input_dim=self.input_dim,
                                        batch_size=_check_positive_int(batch_size, "batch_size")),
                           isolate=isolate, n_threads=n_threads)
        self.dim = int(info["dim"])
        if len(self.classes) != self.dim:
            self.close()
            raise ValueError(f"{self.name}: the graph gives {self.dim} outputs but {len(self.classes)} class names "
                             f"are known; check {self.graph.with_suffix('.json')}")

    def _read_classes(self) -> tuple[str, ...]:
        meta_file = self.graph.with_suffix(".json")
        meta = None
        if meta_file.is_file():
            try:
                meta = read_json(meta_file)
            except ValueError as exc:
                raise ValueError(f"{meta_file}: not valid JSON ({exc}); delete it and fetch it again") from exc
        if isinstance(meta, dict) and meta.get("classes"):
            return tuple(str(c) for c in meta["classes"])
        if self.spec.classes:
            return self.spec.classes
        raise MissingModelError(
            f"{self.name}: class names come from its metadata file {meta_file.name!r}, which is missing from "
            f"{meta_file.parent.resolve()}/; download it from {self.spec.json_url} into that folder"
        )

    def __repr__(self) -> str:
        return f"GenreHead({self.name!r}, graph={str(self.graph)!r}, classes={len(self.classes)})"

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """Per-patch class probabilities.

        Parameters
        ----------
        embeddings : np.ndarray [shape=(n_patches, input_dim)]

        Returns
        -------
        probabilities : np.ndarray [shape=(n_patches, n_classes), dtype=float32]
            Softmax outputs for single-label heads (rows sum to 1), sigmoid activations for
            multi-label ones (``genre_discogs400``).
        """
        e = np.asarray(embeddings, dtype=np.float32)
        if e.ndim != 2 or e.shape[1] != self.input_dim:
            raise ValueError(
                f"{self.name} takes embeddings of shape (n, {self.input_dim}) from {self.spec.upstream!r}; "
                f"got shape {e.shape}"
            )
        if not np.all(np.isfinite(e)):
            raise ValueError(f"{self.name}: embeddings hold NaN or infinite values")
        return np.asarray(self._call("predict", e), dtype=np.float32)

    def predict_track(self, embeddings: np.ndarray) -> np.ndarray:
        """Track-level probabilities: the mean of the per-patch probabilities, ``(n_classes,)``."""
        p = self.predict(embeddings)
        if p.shape[0] == 0:
            raise ValueError(f"{self.name}: no patch to predict from (embeddings of shape (0, {self.input_dim}))")
        return p.mean(axis=0)
