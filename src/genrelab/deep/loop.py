"""The one training loop for every torch model, and batched inference.

:func:`fit` trains any ``nn.Module`` that maps a batch of slices to logits with Adam and
cross-entropy, with early stopping on a validation metric, and keeps the best weights.
:func:`predict_proba` runs a trained module over a (possibly memory-mapped) array in
batches.

Determinism: all randomness is drawn from seeds derived from the ``seed`` argument. Batch
order comes from a private ``torch.Generator``, augmentation from another, and dropout from
torch's global generator seeded inside ``torch.random.fork_rng``, so the caller's global
random state is the same after :func:`fit` as before. On a CPU, the same seed, data and
thread count give bit-identical weights. On CUDA, cuDNN kernels may be non-deterministic;
this module does not change global cuDNN flags.

Memory: :func:`fit` and :func:`predict_proba` make glibc keep freed memory for reuse
(:func:`genrelab.allocator.keep_freed_memory`, process-wide and idempotent): with its
defaults, each batch's activations were unmapped when freed and page-faulted in again, which
made CPU training 1.4x slower and its speed depend on the run.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from genrelab.allocator import keep_freed_memory
from genrelab.devices import resolve_device
from genrelab.progress import progress_bar

__all__ = [
    "TrainSettings",
    "TrainResult",
    "IndexBatchDataset",
    "NonFiniteLossError",
    "fit",
    "predict_proba",
    "resolve_device",
    "seeded_init",
]

log = logging.getLogger(__name__)

ArrayLike = Any  # np.ndarray or np.memmap (anything supporting shape, basic and fancy indexing)
Augment = Callable[..., torch.Tensor]

_MONITORS = {"val_loss": "min", "val_accuracy": "max"}


# --------------------------------------------------------------------------------------------
# settings and results


@dataclass(frozen=True)
class TrainSettings:
    """Validated optimisation settings for :func:`fit`.

    Parameters
    ----------
    lr : float > 0
        Adam learning rate.
    weight_decay : float >= 0
        Adam L2 penalty.
    batch_size : int > 0
        Training batch size (slices).
    max_epochs : int > 0
        Upper bound on passes over the training set.
    patience : int > 0 or None
        Stop after this many epochs without improvement of ``monitor``; ``None`` runs
        ``max_epochs``. Needs validation data; without it every epoch runs and the last
        weights are kept.
    monitor : {'val_loss', 'val_accuracy'}
        Validation metric for early stopping and for choosing the kept weights.
    min_delta : float >= 0
        Smallest change of ``monitor`` that counts as an improvement.
    grad_clip : float > 0 or None
        Clip the global gradient norm to this value; ``None`` does not clip.
    eval_batch_size : int > 0
        Batch size for validation and prediction. Larger is not faster on a CPU (activations
        fall out of cache); on CUDA 256 or more uses the device better.

    Raises
    ------
    ValueError
        Naming the field, on a value of the wrong type or out of range.
    """

    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 32
    max_epochs: int = 30
    patience: int | None = 5
    monitor: str = "val_loss"
    min_delta: float = 0.0
    grad_clip: float | None = None
    eval_batch_size: int = 64

    def __post_init__(self) -> None:
        def number(name: str, *, integer: bool, optional: bool = False) -> float | int | None:
            value = getattr(self, name)
            if value is None and optional:
                return None
            ok = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.number))
            if not ok or isinstance(value, bool):
                kind = "an int" if integer else "a number"
                raise ValueError(f"TrainSettings.{name} must be {kind}, got {value!r}")
            value = int(value) if integer else float(value)
            if not math.isfinite(value):
                raise ValueError(f"TrainSettings.{name} must be finite, got {value!r}")
            object.__setattr__(self, name, value)
            return value

        for name in ("lr", "batch_size", "max_epochs", "eval_batch_size"):
            if number(name, integer=name != "lr") <= 0:
                raise ValueError(f"TrainSettings.{name} must be positive, got {getattr(self, name)!r}")
        for name in ("weight_decay", "min_delta"):
            if number(name, integer=False) < 0:
                raise ValueError(f"TrainSettings.{name} must be >= 0, got {getattr(self, name)!r}")
        patience = number("patience", integer=True, optional=True)
        if patience is not None and patience <= 0:
            raise ValueError(f"TrainSettings.patience must be positive or null, got {patience!r}")
        grad_clip = number("grad_clip", integer=False, optional=True)
        if grad_clip is not None and grad_clip <= 0:
            raise ValueError(f"TrainSettings.grad_clip must be positive or null, got {grad_clip!r}")
        if self.monitor not in _MONITORS:
            raise ValueError(f"TrainSettings.monitor must be one of {sorted(_MONITORS)}, got {self.monitor!r}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> TrainSettings:
        """Build from a mapping (e.g. a ``params.yaml`` section); unknown keys raise ValueError."""
        d = dict(d or {})
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(valid))
        if unknown:
            raise ValueError(f"unknown training settings {unknown}; valid: {sorted(valid)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class TrainResult:
    """What :func:`fit` measured.

    Attributes
    ----------
    history : list of dict
        One entry per epoch: ``epoch`` (1-based), ``train_loss`` and ``train_accuracy``
        (running averages over the epoch's batches, with dropout and augmentation on),
        ``val_loss`` and ``val_accuracy`` (``None`` without validation data), ``seconds``.
    best_epoch : int
        Epoch whose weights the model holds after :func:`fit` (1-based).
    best_score : float or None
        ``monitor`` at ``best_epoch`` (``None`` without validation data).
    monitor : str
        The early-stopping metric.
    stopped_early : bool
        Whether training stopped before ``max_epochs``.
    epochs_run : int
        Number of epochs trained.
    train_seconds : float
        Wall-clock seconds of the whole fit, validation included.
    slices_per_second : float
        Training throughput: slices seen divided by the time of the training steps
        (reading, augmentation, forward, backward, update; validation excluded).
    data_fraction : float
        Fraction of the training step time spent reading batches from ``S`` and moving them
        to the device.
    augment_fraction : float
        Fraction of the training step time spent in augmentation.
    device : str
        Device trained on.
    n_parameters : int
        Trainable parameters of the model.
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float | None = None
    monitor: str = "val_loss"
    stopped_early: bool = False
    epochs_run: int = 0
    train_seconds: float = 0.0
    slices_per_second: float = 0.0
    data_fraction: float = 0.0
    augment_fraction: float = 0.0
    device: str = "cpu"
    n_parameters: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------
# devices, seeds, data


def _fork_devices(device: torch.device) -> list[int]:
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def seeded_init(builder: Callable[[], nn.Module], *, seed: int) -> nn.Module:
    """Call ``builder()`` with torch's global generator seeded, without leaking the seed.

    Parameters
    ----------
    builder : callable
        Returns a freshly initialised module (parameters drawn from the global generator).
    seed : int
        Seed for the initialisation.

    Returns
    -------
    nn.Module
        On the CPU. The caller's global random state is unchanged afterwards.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return builder()


def _derive_seeds(seed: int, n: int) -> list[int]:
    return [int(s) for s in np.random.SeedSequence(int(seed)).generate_state(n, dtype=np.uint32)]


class IndexBatchDataset(torch.utils.data.Dataset):
    """Read whole batches of slices by index from an array or a memory map.

    Item ``i`` of this dataset is a *batch*: ``ds[idx]`` with ``idx`` an int array returns
    ``(x, y)`` tensors for those slices, read with one (sorted) fancy-index access, so a
    ``np.load(..., mmap_mode='r')`` array is read batch by batch and never copied whole.

    Parameters
    ----------
    S : np.ndarray or np.memmap [shape=(n, ...)]
        Slices; converted to float32 per batch.
    y : np.ndarray [shape=(n,)], int, optional
        Labels; ``ds[idx]`` returns ``y = None`` without them.
    """

    def __init__(self, S: ArrayLike, y: np.ndarray | None = None) -> None:
        if y is not None and len(y) != len(S):
            raise ValueError(f"S has {len(S)} slices but y has {len(y)} labels")
        self.S = S
        self.y = None if y is None else np.asarray(y, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.S)

    def __getitem__(self, idx: np.ndarray | slice) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not isinstance(idx, slice):
            idx = np.sort(np.asarray(idx, dtype=np.int64))
            n = len(idx)
        else:
            n = len(range(*idx.indices(len(self.S))))
        # Read straight into a tensor from torch's allocator (64-byte aligned, like every
        # tensor the model makes): numpy's buffers are only 16-byte aligned, and oneDNN's
        # convolutions ran at two speeds depending on where a batch happened to land.
        x = torch.empty((n, *self.S.shape[1:]), dtype=torch.float32)
        out = x.numpy()
        if isinstance(idx, slice):
            out[...] = self.S[idx]
        elif self.S.dtype == np.float32:
            if n and (idx[0] < 0 or idx[-1] >= len(self.S)):
                raise IndexError(f"slice indices must be in [0, {len(self.S)}), got [{idx[0]}, {idx[-1]}]")
            np.take(self.S, idx, axis=0, out=out, mode="clip")  # in range: no buffering
        else:
            out[...] = self.S[idx]
        y = None if self.y is None else torch.from_numpy(self.y[idx])
        return x, y


def _check_xy(S: ArrayLike, y: np.ndarray, *, name: str, n_classes: int | None) -> np.ndarray:
    if not hasattr(S, "shape") or len(S.shape) < 3:
        raise ValueError(
            f"{name}: S must be an array of shape (n_slices, ..., n_bins, n_frames), got {getattr(S, 'shape', type(S))}"
        )
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != S.shape[0]:
        raise ValueError(f"{name}: y must have shape ({S.shape[0]},), got {y.shape}")
    if len(y) == 0:
        raise ValueError(f"{name}: no slices")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name}: y must hold integer labels, got dtype {y.dtype}")
    if y.min() < 0 or (n_classes is not None and y.max() >= n_classes):
        raise ValueError(f"{name}: labels must be in [0, {n_classes}), got range [{y.min()}, {y.max()}]")
    return y.astype(np.int64, copy=False)


def _n_classes(model: nn.Module) -> int | None:
    """The model's ``n_classes`` attribute (all :mod:`genrelab.deep.nets` have one), if any."""
    n = getattr(model, "n_classes", None)
    return int(n) if n is not None else None


# --------------------------------------------------------------------------------------------
# evaluation and prediction


@torch.inference_mode()
def _evaluate(
    model: nn.Module, data: IndexBatchDataset, *, batch_size: int, device: torch.device
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` (in eval mode) on ``data``."""
    model.eval()
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    for start in range(0, len(data), batch_size):
        x, y = data[slice(start, start + batch_size)]
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = model(x)
        total_loss += nn.functional.cross_entropy(logits, y, reduction="sum").double()
        correct += (logits.argmax(dim=1) == y).sum()
    return float(total_loss) / len(data), int(correct) / len(data)


def predict_proba(
    model: nn.Module, S: ArrayLike, *, batch_size: int = 64, device: str | torch.device = "auto",
    progress: bool = False,
) -> np.ndarray:
    """Class probabilities of ``model`` for every slice of ``S``, in batches.

    Parameters
    ----------
    model : nn.Module
        Maps a float32 batch [shape=(batch, ...)] to logits [shape=(batch, n_classes)]. It
        is moved to ``device`` and left in eval mode.
    S : np.ndarray or np.memmap [shape=(n, ...)]
        Slices; read ``batch_size`` at a time.
    batch_size : int > 0
        Slices per forward pass.
    device : {'auto', 'cpu', 'cuda', ...}
        Where to run; ``'auto'`` uses CUDA when present.
    progress : bool
        Show progress (a bar on a terminal, log lines otherwise) over batches.

    Returns
    -------
    proba : np.ndarray [shape=(n, n_classes)], float64
        Softmax of the logits; rows sum to 1.
    """
    if int(batch_size) <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size!r}")
    device = resolve_device(device)
    keep_freed_memory()  # batches' activations reuse freed pages (see genrelab.allocator)
    model.to(device).eval()
    data = IndexBatchDataset(S)
    out: list[np.ndarray] = []
    starts = range(0, len(data), int(batch_size))
    with torch.inference_mode():
        for start in progress_bar(starts, desc="predict", unit="batch", disable=not progress, leave=False):
            x, _ = data[slice(start, start + int(batch_size))]
            logits = model(x.to(device)).double()
            out.append(torch.softmax(logits, dim=1).cpu().numpy())
    if not out:
        n_out = _n_classes(model) or 0
        return np.zeros((0, n_out), dtype=np.float64)
    return np.concatenate(out, axis=0)


# --------------------------------------------------------------------------------------------
# the training loop


class NonFiniteLossError(FloatingPointError):
    """The training or validation loss became NaN or infinite: the run fails, no weights ship."""


@dataclass
class _Run:
    """What one :func:`fit` call carries from epoch to epoch."""

    model: nn.Module
    train: IndexBatchDataset
    valid: IndexBatchDataset | None
    settings: TrainSettings
    device: torch.device
    optimizer: torch.optim.Optimizer
    shuffle_gen: torch.Generator
    augment_gen: torch.Generator
    augment: Augment | None
    result: TrainResult
    best: float
    best_state: dict[str, torch.Tensor] | None = None
    stale: int = 0
    train_seconds: float = 0.0  # training passes only (validation excluded)
    load_seconds: float = 0.0
    augment_seconds: float = 0.0
    n_seen: int = 0


class _Stopwatch:
    """Time spent in one phase of the training steps, without synchronising CUDA per batch.

    On the CPU every operation is synchronous, so ``perf_counter`` differences are exact. On
    CUDA, a pair of events brackets each interval on the stream; their durations are read once
    per epoch, after the one synchronisation that reading the epoch's loss needs anyway.
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.seconds = 0.0
        self._pairs: list[tuple[Any, Any]] = []
        self._t0: Any = None

    def start(self) -> None:
        if self.cuda:
            self._t0 = torch.cuda.Event(enable_timing=True)
            self._t0.record()
        else:
            self._t0 = time.perf_counter()

    def stop(self) -> None:
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self._pairs.append((self._t0, end))
        else:
            self.seconds += time.perf_counter() - self._t0

    def collect(self) -> float:
        """Total seconds so far (call after the stream was synchronised)."""
        for start, end in self._pairs:
            self.seconds += start.elapsed_time(end) / 1000.0
        self._pairs.clear()
        return self.seconds


def _start_run(model: nn.Module, train: tuple[ArrayLike, np.ndarray], valid: tuple[ArrayLike, np.ndarray] | None, *,
               settings: TrainSettings, device: torch.device, seed: int, augment: Augment | None) -> tuple[_Run, int]:
    """Check the data, move the model, build optimiser and generators. Returns the run and the
    seed of torch's global generator (dropout) for this fit."""
    if not isinstance(settings, TrainSettings):
        raise ValueError(f"settings must be a TrainSettings, got {type(settings).__name__}")
    n_classes = _n_classes(model)
    y_train = _check_xy(train[0], train[1], name="train", n_classes=n_classes)
    valid_data = None
    if valid is not None:
        y_valid = _check_xy(valid[0], valid[1], name="valid", n_classes=n_classes)
        if tuple(valid[0].shape[1:-1]) != tuple(train[0].shape[1:-1]):
            raise ValueError(f"valid slices have shape {valid[0].shape[1:]}, train slices {train[0].shape[1:]}")
        valid_data = IndexBatchDataset(valid[0], y_valid)
    seed_shuffle, seed_augment, seed_torch = _derive_seeds(seed, 3)
    model.to(device)
    result = TrainResult(monitor=settings.monitor, device=str(device),
                         n_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad))
    run = _Run(
        model=model, train=IndexBatchDataset(train[0], y_train), valid=valid_data, settings=settings, device=device,
        optimizer=torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay),
        shuffle_gen=torch.Generator().manual_seed(seed_shuffle),
        augment_gen=torch.Generator(device=device).manual_seed(seed_augment),
        augment=augment, result=result, best=math.inf if _MONITORS[settings.monitor] == "min" else -math.inf,
    )
    return run, seed_torch


def _train_epoch(run: _Run, epoch: int) -> tuple[float, float]:
    """One pass over the training set in random order. Returns (mean loss, accuracy).

    Loss and accuracy accumulate on the device and are read once, at the end of the epoch, so
    a CUDA run never waits for the GPU inside the pass.

    Raises
    ------
    NonFiniteLossError
        If the epoch's loss is NaN or infinite.
    """
    model, settings, device = run.model, run.settings, run.device
    model.train()
    order = torch.randperm(len(run.train), generator=run.shuffle_gen).numpy()
    aug_watch = _Stopwatch(device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    t_start = time.perf_counter()
    for start in range(0, len(order), settings.batch_size):
        t0 = time.perf_counter()
        x, y = run.train[order[start:start + settings.batch_size]]
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        run.load_seconds += time.perf_counter() - t0
        if run.augment is not None:
            aug_watch.start()
            x = run.augment(x, generator=run.augment_gen)
            aug_watch.stop()
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if settings.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        run.optimizer.step()
        loss_sum += loss.detach().double() * len(y)
        correct += (logits.detach().argmax(dim=1) == y).sum()
    mean_loss = float(loss_sum) / len(order)  # the epoch's one synchronisation
    run.train_seconds += time.perf_counter() - t_start
    run.augment_seconds += aug_watch.collect()
    run.n_seen += len(order)
    if not math.isfinite(mean_loss):
        raise NonFiniteLossError(
            f"epoch {epoch}: the training loss is {mean_loss} (not finite); the run is stopped and no weights "
            f"are kept. Lower train.lr (now {settings.lr:g}), set train.grad_clip (now {settings.grad_clip}), "
            "or check the features for NaN/inf values")
    return mean_loss, int(correct) / len(order)


def _validate_epoch(run: _Run, entry: dict[str, Any], epoch: int) -> bool:
    """Score the validation set into ``entry``; whether ``monitor`` improved on the best so far."""
    if run.valid is None:
        return True
    entry["val_loss"], entry["val_accuracy"] = _evaluate(run.model, run.valid,
                                                         batch_size=run.settings.eval_batch_size, device=run.device)
    if not math.isfinite(entry["val_loss"]):
        raise NonFiniteLossError(f"epoch {epoch}: the validation loss is {entry['val_loss']} (not finite); the "
                                 "weights have diverged, so the run is stopped and none are kept")
    score = entry[run.settings.monitor]
    delta = run.settings.min_delta
    improved = score < run.best - delta if _MONITORS[run.settings.monitor] == "min" else score > run.best + delta
    if improved:
        run.best = score
    return improved


def _keep_or_count(run: _Run, epoch: int, improved: bool) -> None:
    """Remember the weights of an improving epoch; count epochs without improvement."""
    result = run.result
    if improved:
        result.best_epoch = epoch
        result.best_score = None if run.valid is None else float(run.best)
        run.stale = 0
        if run.valid is not None:
            run.best_state = {k: v.detach().to("cpu", copy=True) for k, v in run.model.state_dict().items()}
    else:
        run.stale += 1


def _should_stop(run: _Run, epoch: int) -> bool:
    settings = run.settings
    if run.valid is None or settings.patience is None or run.stale < settings.patience:
        return False
    run.result.stopped_early = epoch < settings.max_epochs
    log.info("early stopping after epoch %d: %s did not improve for %d epochs (best %.4f at epoch %d)",
             epoch, settings.monitor, run.stale, run.best, run.result.best_epoch)
    return True


def _finish(run: _Run, t_fit: float) -> TrainResult:
    """Restore the best weights, fill in the timings."""
    if run.best_state is not None:
        run.model.load_state_dict(run.best_state)
    run.model.eval()
    result = run.result
    result.train_seconds = time.perf_counter() - t_fit
    total = run.train_seconds
    result.slices_per_second = run.n_seen / total if total > 0 else 0.0
    result.data_fraction = run.load_seconds / total if total > 0 else 0.0
    result.augment_fraction = run.augment_seconds / total if total > 0 else 0.0
    return result


def fit(
    model: nn.Module,
    train: tuple[ArrayLike, np.ndarray],
    valid: tuple[ArrayLike, np.ndarray] | None = None,
    *,
    settings: TrainSettings,
    device: str | torch.device = "auto",
    seed: int = 0,
    augment: Augment | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``model`` in place with Adam and cross-entropy; keep the best weights.

    Parameters
    ----------
    model : nn.Module
        Maps a float32 batch [shape=(batch, ...)] to logits [shape=(batch, n_classes)]. It
        is moved to ``device``; on return it holds the weights of the best epoch (by
        ``settings.monitor`` on ``valid``; the last epoch without ``valid``) and is in eval
        mode.
    train : (S, y)
        ``S`` [shape=(n, ...)] float slices (array or memmap, read one shuffled batch at a
        time), ``y`` [shape=(n,)] int labels in ``[0, n_classes)``.
    valid : (S, y), optional
        Validation slices and labels for early stopping; evaluated after every epoch in
        eval mode, without augmentation.
    settings : TrainSettings
        Optimisation and early-stopping settings.
    device : {'auto', 'cpu', 'cuda', ...}
        ``'auto'`` uses CUDA when present.
    seed : int
        Seeds batch order, dropout and augmentation (see module doc).
    augment : callable, optional
        ``augment(x, generator=g) -> x`` applied to training batches only, on the device
        (e.g. :class:`~genrelab.deep.augment.Augmenter`); ``g`` is a ``torch.Generator`` on
        the device, seeded from ``seed``.
    progress : bool
        Show progress (a bar on a terminal, log lines otherwise) over epochs.

    Returns
    -------
    TrainResult
        Per-epoch history, best epoch, timings and throughput.

    Raises
    ------
    ValueError
        On mismatched shapes, labels out of range, or an empty training set.
    NonFiniteLossError
        If the training or validation loss becomes NaN or infinite (the model's weights are
        then not usable; nothing should be saved).
    """
    device = resolve_device(device)
    keep_freed_memory()  # activations reuse freed pages: 1.4x faster on the CPU (see genrelab.allocator)
    t_fit = time.perf_counter()
    run, seed_torch = _start_run(model, train, valid, settings=settings, device=device, seed=seed, augment=augment)
    with torch.random.fork_rng(devices=_fork_devices(device)):
        torch.manual_seed(seed_torch)
        epochs = progress_bar(
            range(1, settings.max_epochs + 1), desc="train", unit="epoch", disable=not progress, leave=False
        )
        for epoch in epochs:
            t_epoch = time.perf_counter()
            loss, accuracy = _train_epoch(run, epoch)
            entry: dict[str, Any] = {"epoch": epoch, "train_loss": loss, "train_accuracy": accuracy,
                                     "val_loss": None, "val_accuracy": None}
            improved = _validate_epoch(run, entry, epoch)
            entry["seconds"] = time.perf_counter() - t_epoch
            run.result.history.append(entry)
            run.result.epochs_run = epoch
            _keep_or_count(run, epoch, improved)
            epochs.set_postfix({k: round(v, 4) for k, v in entry.items() if isinstance(v, float)})
            if _should_stop(run, epoch):
                break
    return _finish(run, t_fit)
