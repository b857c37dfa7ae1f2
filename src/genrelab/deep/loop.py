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
from genrelab.progress import progress_bar

from genrelab.devices import resolve_device

__all__ = [
    "TrainSettings",
    "TrainResult",
    "IndexBatchDataset",
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
        x = np.asarray(self.S[idx], dtype=np.float32)
        if not (x.flags.writeable and x.flags.c_contiguous):
            # a memmap view (basic slicing): read it into memory now, so the time counts as
            # loading and torch gets a writable, contiguous buffer
            x = np.array(x, dtype=np.float32, order="C")
        x = torch.from_numpy(x)
        y = None if self.y is None else torch.from_numpy(self.y[idx])
        return x, y


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _check_xy(S: ArrayLike, y: np.ndarray, *, name: str, n_classes: int | None) -> np.ndarray:
    if not hasattr(S, "shape") or len(S.shape) < 3:
        raise ValueError(f"{name}: S must be an array of shape (n_slices, ..., n_bins, n_frames), got {getattr(S, 'shape', type(S))}")
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
def _evaluate(model: nn.Module, data: IndexBatchDataset, *, batch_size: int, device: torch.device) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` (in eval mode) on ``data``."""
    model.eval()
    total_loss, correct = 0.0, 0
    for start in range(0, len(data), batch_size):
        x, y = data[slice(start, start + batch_size)]
        x, y = x.to(device), y.to(device)
        logits = model(x)
        total_loss += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(dim=1) == y).sum())
    return total_loss / len(data), correct / len(data)


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
    """
    if not isinstance(settings, TrainSettings):
        raise ValueError(f"settings must be a TrainSettings, got {type(settings).__name__}")
    device = resolve_device(device)
    n_classes = _n_classes(model)
    y_train = _check_xy(train[0], train[1], name="train", n_classes=n_classes)
    train_data = IndexBatchDataset(train[0], y_train)
    valid_data = None
    if valid is not None:
        y_valid = _check_xy(valid[0], valid[1], name="valid", n_classes=n_classes)
        if tuple(valid[0].shape[1:-1]) != tuple(train[0].shape[1:-1]):
            raise ValueError(f"valid slices have shape {valid[0].shape[1:]}, train slices {train[0].shape[1:]}")
        valid_data = IndexBatchDataset(valid[0], y_valid)

    seed_shuffle, seed_augment, seed_torch = _derive_seeds(seed, 3)
    shuffle_gen = torch.Generator().manual_seed(seed_shuffle)
    augment_gen = torch.Generator(device=device).manual_seed(seed_augment)

    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    mode = _MONITORS[settings.monitor]
    result = TrainResult(
        monitor=settings.monitor, device=str(device),
        n_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
    )
    best_state: dict[str, torch.Tensor] | None = None
    best = math.inf if mode == "min" else -math.inf
    stale = 0
    t_load = t_aug = t_step = 0.0
    n_seen = 0
    n = len(train_data)
    bs = settings.batch_size
    t_fit = time.perf_counter()

    with torch.random.fork_rng(devices=_fork_devices(device)):
        torch.manual_seed(seed_torch)
        epochs = progress_bar(range(1, settings.max_epochs + 1), desc="train", unit="epoch", disable=not progress, leave=False)
        for epoch in epochs:
            t_epoch = time.perf_counter()
            model.train()
            order = torch.randperm(n, generator=shuffle_gen).numpy()
            loss_sum, correct = 0.0, 0
            for start in range(0, n, bs):
                t0 = time.perf_counter()
                x, y = train_data[order[start : start + bs]]
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                _sync(device)
                t1 = time.perf_counter()
                if augment is not None:
                    x = augment(x, generator=augment_gen)
                    _sync(device)
                t2 = time.perf_counter()
                logits = model(x)
                loss = nn.functional.cross_entropy(logits, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if settings.grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
                optimizer.step()
                loss_sum += float(loss.detach()) * len(y)
                correct += int((logits.detach().argmax(dim=1) == y).sum())
                _sync(device)
                t3 = time.perf_counter()
                t_load += t1 - t0
                t_aug += t2 - t1
                t_step += t3 - t2
                n_seen += len(y)
            if not math.isfinite(loss_sum):
                log.warning("epoch %d: non-finite training loss; stopping", epoch)
                result.stopped_early = True
                break

            entry: dict[str, Any] = {
                "epoch": epoch, "train_loss": loss_sum / n, "train_accuracy": correct / n,
                "val_loss": None, "val_accuracy": None,
            }
            improved = True
            if valid_data is not None:
                entry["val_loss"], entry["val_accuracy"] = _evaluate(
                    model, valid_data, batch_size=settings.eval_batch_size, device=device
                )
                score = entry[settings.monitor]
                improved = score < best - settings.min_delta if mode == "min" else score > best + settings.min_delta
                if improved:
                    best = score
            entry["seconds"] = time.perf_counter() - t_epoch
            result.history.append(entry)
            result.epochs_run = epoch
            if improved:
                result.best_epoch = epoch
                result.best_score = None if valid_data is None else float(best)
                stale = 0
                if valid_data is not None:
                    best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            else:
                stale += 1
            epochs.set_postfix({k: round(v, 4) for k, v in entry.items() if isinstance(v, float)})
            if valid_data is not None and settings.patience is not None and stale >= settings.patience:
                result.stopped_early = epoch < settings.max_epochs
                log.info(
                    "early stopping after epoch %d: %s did not improve for %d epochs (best %.4f at epoch %d)",
                    epoch, settings.monitor, stale, best, result.best_epoch,
                )
                break

    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    total = t_load + t_aug + t_step
    result.train_seconds = time.perf_counter() - t_fit
    result.slices_per_second = n_seen / total if total > 0 else 0.0
    result.data_fraction = t_load / total if total > 0 else 0.0
    result.augment_fraction = t_aug / total if total > 0 else 0.0
    return result
