"""Small torch networks for slice-level genre classification.

Every network takes ``n_classes`` and ``input_shape`` as keyword arguments plus its own
hyperparameters (all keyword-only, with small defaults that train in seconds on a CPU), and
maps a batch of slices to unnormalised class scores (logits):

==============  =======================================  ==================================
name            input ``x``                              idea
==============  =======================================  ==================================
``cnn``         (batch, n_bins, n_frames)                2-D conv blocks, global pooling
``crnn1d``      (batch, n_bins, n_frames)                1-D convs over time (bins as
                                                         channels), then a GRU/LSTM
``crnn2d``      (batch, n_bins, n_frames)                2-D conv blocks, then a GRU/LSTM
                                                         over the pooled time axis
``rnn``         (batch, n_bins, n_frames)                stacked LSTM over frame vectors
``two_branch``  (batch, 2, n_bins, n_frames)             CNN on channel 0 (harmonic), CRNN
                                                         on channel 1 (percussive), merged
==============  =======================================  ==================================

``input_shape`` is the shape of one slice, ``(n_bins, n_frames)`` or, for ``two_branch``,
``(2, n_bins, n_frames)``. Only ``n_bins`` (and the channel count) fixes the size of any
layer: every network pools over time globally (mean, or the recurrent layer's summary), so a
trained network also accepts slices of another length. ``n_frames`` is recorded for
reference only.

Each network starts with a per-bin :class:`torch.nn.BatchNorm1d`, which standardises log-mel
values in dB and MFCCs alike, so inputs need no separate scaling step.

Build networks by name with :func:`build_net`, which validates the hyperparameter names and
lists the valid ones when a name is wrong.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["CNN2D", "CRNN1D", "CRNN2D", "RNN", "TwoBranch", "NETS", "build_net", "net_hparams"]


# --------------------------------------------------------------------------------------------
# validation helpers


def _check_input_shape(input_shape: Sequence[int], *, n_channels: int | None, name: str) -> tuple[int, ...]:
    """Validate a slice shape; return it as a tuple of ints.

    ``n_channels=None`` expects ``(n_bins, n_frames)``; an int expects
    ``(n_channels, n_bins, n_frames)``.
    """
    shape = tuple(int(s) for s in input_shape)
    want = 2 if n_channels is None else 3
    if len(shape) != want or any(s < 1 for s in shape):
        layout = "(n_bins, n_frames)" if n_channels is None else f"({n_channels}, n_bins, n_frames)"
        raise ValueError(f"{name}: input_shape must be {layout} with positive sizes, got {tuple(input_shape)}")
    if n_channels is not None and shape[0] != n_channels:
        raise ValueError(f"{name}: input_shape[0] must be {n_channels} channels, got {shape[0]}")
    return shape


def _check_channels(channels: Sequence[int], *, field: str) -> tuple[int, ...]:
    out = tuple(int(c) for c in channels)
    if not out or any(c < 1 for c in out):
        raise ValueError(f"{field} must be a non-empty list of positive ints, got {channels!r}")
    return out


def _check_positive(value: int, *, field: str) -> int:
    if int(value) < 1:
        raise ValueError(f"{field} must be a positive int, got {value!r}")
    return int(value)


def _check_dropout(value: float, *, field: str = "dropout") -> float:
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{field} must be in [0, 1), got {value!r}")
    return float(value)


_RNNS: dict[str, type[nn.RNNBase]] = {"gru": nn.GRU, "lstm": nn.LSTM}
_POOLINGS = ("mean", "last")


def _check_choice(value: str, choices: Sequence[str], *, field: str) -> str:
    if value not in choices:
        raise ValueError(f"{field} must be one of {sorted(choices)}, got {value!r}")
    return value


def _check_batch(x: torch.Tensor, *, ndim: int, size: tuple[int, ...], name: str) -> None:
    """Check ``x`` has ``ndim`` dims and the fixed leading sizes ``size`` after the batch."""
    if x.ndim != ndim or tuple(x.shape[1 : 1 + len(size)]) != size:
        expected = ", ".join(["batch", *map(str, size), "n_frames"])
        raise ValueError(f"{name}: expected input of shape ({expected}), got {tuple(x.shape)}")


# --------------------------------------------------------------------------------------------
# building blocks


def _conv2d_blocks(
    channels: Sequence[int], *, n_bins: int, kernel_size: int, pool: int, in_channels: int = 1
) -> tuple[nn.Sequential, int]:
    """Conv2d-BN-ReLU-MaxPool blocks; return them and the number of bins left after pooling.

    Frequency is pooled by ``pool`` while at least ``pool`` bins are left (so 13 MFCCs are
    fine), time by ``pool`` with ``ceil_mode`` (so a slice of a single frame is fine).
    """
    layers: list[nn.Module] = []
    bins = n_bins
    for out_channels in channels:
        pool_f = pool if bins >= pool else 1
        layers += [
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.MaxPool2d((pool_f, pool), ceil_mode=True),
        ]
        bins = -(-bins // pool_f)
        in_channels = out_channels
    # channels-last weights (and inputs, see _to_channels_last): about 1.8x faster training
    # on the CPU, where NCHW max pooling and batch norm dominate; neutral on CUDA
    return nn.Sequential(*layers).to(memory_format=torch.channels_last), bins


def _to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """(batch, n_bins, n_frames) -> (batch, 1, n_bins, n_frames) in channels-last layout."""
    return x.unsqueeze(1).contiguous(memory_format=torch.channels_last)


def _summarise(outputs: torch.Tensor, pooling: str) -> torch.Tensor:
    """(batch, time, features) -> (batch, features) by time average or last step."""
    return outputs.mean(dim=1) if pooling == "mean" else outputs[:, -1]


class _CNNEncoder(nn.Module):
    """Per-bin norm, 2-D conv blocks, global mean+max pooling.

    (batch, n_bins, n_frames) -> (batch, 2 * channels[-1]).
    """

    def __init__(self, *, n_bins: int, channels: Sequence[int], kernel_size: int, pool: int) -> None:
        super().__init__()
        channels = _check_channels(channels, field="channels")
        self.norm = nn.BatchNorm1d(n_bins)
        self.blocks, _ = _conv2d_blocks(
            channels, n_bins=n_bins, kernel_size=_check_positive(kernel_size, field="kernel_size"),
            pool=_check_positive(pool, field="pool"),
        )
        self.out_features = 2 * channels[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(_to_channels_last(self.norm(x)))  # (batch, C, bins', frames')
        return torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)


class _CRNN2DEncoder(nn.Module):
    """Per-bin norm, 2-D conv blocks, recurrent layer over the pooled time axis.

    (batch, n_bins, n_frames) -> (batch, hidden_size * (2 if bidirectional else 1)).
    """

    def __init__(
        self, *, n_bins: int, channels: Sequence[int], kernel_size: int, pool: int,
        rnn: str, hidden_size: int, num_layers: int, bidirectional: bool, pooling: str,
    ) -> None:
        super().__init__()
        channels = _check_channels(channels, field="channels")
        self.norm = nn.BatchNorm1d(n_bins)
        self.blocks, bins_left = _conv2d_blocks(
            channels, n_bins=n_bins, kernel_size=_check_positive(kernel_size, field="kernel_size"),
            pool=_check_positive(pool, field="pool"),
        )
        self.rnn = _RNNS[_check_choice(rnn, tuple(_RNNS), field="rnn")](
            channels[-1] * bins_left, _check_positive(hidden_size, field="hidden_size"),
            num_layers=_check_positive(num_layers, field="num_layers"), batch_first=True,
            bidirectional=bool(bidirectional),
        )
        self.pooling = _check_choice(pooling, _POOLINGS, field="pooling")
        self.out_features = hidden_size * (2 if bidirectional else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(_to_channels_last(self.norm(x)))  # (batch, C, bins', frames')
        h = h.flatten(1, 2).transpose(1, 2)  # (batch, frames', C * bins'), copied from channels-last
        out, _ = self.rnn(h)
        return _summarise(out, self.pooling)


def _head(in_features: int, n_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Dropout(_check_dropout(dropout)), nn.Linear(in_features, n_classes))


# --------------------------------------------------------------------------------------------
# networks


class CNN2D(nn.Module):
    """2-D CNN on a log-mel spectrogram, with global pooling.

    Per-bin batch norm, then ``len(channels)`` blocks of 3x3 conv - batch norm - ReLU -
    2x2 max pooling, then the mean and maximum of each feature map over frequency and time,
    dropout and a linear classifier. Global pooling makes any ``n_frames`` work.

    Parameters
    ----------
    n_classes : int > 1
        Number of output classes.
    input_shape : tuple [shape=(n_bins, n_frames)]
        Shape of one slice.
    channels : list of int
        Output channels of each conv block.
    kernel_size : int
        Square conv kernel size (odd keeps the map size).
    pool : int
        Max-pooling factor per block along time, and along frequency while bins remain.
    dropout : float in [0, 1)
        Dropout before the classifier.

    Notes
    -----
    ``forward(x)``: ``x`` [shape=(batch, n_bins, n_frames)] -> logits [shape=(batch, n_classes)].
    """

    def __init__(
        self, *, n_classes: int, input_shape: Sequence[int], channels: Sequence[int] = (16, 32, 64),
        kernel_size: int = 3, pool: int = 2, dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.n_classes = _check_positive(n_classes, field="n_classes")
        self.input_shape = _check_input_shape(input_shape, n_channels=None, name="CNN2D")
        self.encoder = _CNNEncoder(n_bins=self.input_shape[0], channels=channels, kernel_size=kernel_size, pool=pool)
        self.head = _head(self.encoder.out_features, _check_positive(n_classes, field="n_classes"), dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_batch(x, ndim=3, size=self.input_shape[:1], name="CNN2D")
        return self.head(self.encoder(x))


class CRNN1D(nn.Module):
    """1-D convolutions over time (bins as channels), then a recurrent layer.

    Per-bin batch norm, then blocks of 1-D conv (``n_bins`` input channels) - batch norm -
    ReLU - max pooling along time, then a GRU or LSTM over the pooled frames, summarised by
    the time average (or last step) of its outputs, dropout and a linear classifier.

    Parameters
    ----------
    n_classes : int > 1
        Number of output classes.
    input_shape : tuple [shape=(n_bins, n_frames)]
        Shape of one slice.
    channels : list of int
        Output channels of each 1-D conv block.
    kernel_size : int
        Conv kernel length in frames.
    pool : int
        Max-pooling factor along time per block.
    rnn : {'gru', 'lstm'}
        Recurrent layer type.
    hidden_size, num_layers : int
        Recurrent layer size and depth.
    bidirectional : bool
        Run the recurrent layer in both directions.
    pooling : {'mean', 'last'}
        Summarise the recurrent outputs by their time average or the last step.
    dropout : float in [0, 1)
        Dropout before the classifier.

    Notes
    -----
    ``forward(x)``: ``x`` [shape=(batch, n_bins, n_frames)] -> logits [shape=(batch, n_classes)].
    """

    def __init__(
        self, *, n_classes: int, input_shape: Sequence[int], channels: Sequence[int] = (64, 64),
        kernel_size: int = 5, pool: int = 2, rnn: str = "gru", hidden_size: int = 64, num_layers: int = 1,
        bidirectional: bool = True, pooling: str = "mean", dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.n_classes = _check_positive(n_classes, field="n_classes")
        self.input_shape = _check_input_shape(input_shape, n_channels=None, name="CRNN1D")
        channels = _check_channels(channels, field="channels")
        kernel_size = _check_positive(kernel_size, field="kernel_size")
        pool = _check_positive(pool, field="pool")
        in_channels = self.input_shape[0]
        layers: list[nn.Module] = [nn.BatchNorm1d(in_channels)]
        for out_channels in channels:
            layers += [
                nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
                nn.BatchNorm1d(out_channels),
                nn.ReLU(inplace=True),
                nn.MaxPool1d(pool, ceil_mode=True),
            ]
            in_channels = out_channels
        self.convs = nn.Sequential(*layers)
        self.rnn = _RNNS[_check_choice(rnn, tuple(_RNNS), field="rnn")](
            in_channels, _check_positive(hidden_size, field="hidden_size"),
            num_layers=_check_positive(num_layers, field="num_layers"), batch_first=True,
            bidirectional=bool(bidirectional),
        )
        self.pooling = _check_choice(pooling, _POOLINGS, field="pooling")
        self.head = _head(
            hidden_size * (2 if bidirectional else 1), _check_positive(n_classes, field="n_classes"), dropout
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_batch(x, ndim=3, size=self.input_shape[:1], name="CRNN1D")
        h = self.convs(x).transpose(1, 2)  # (batch, frames', C)
        out, _ = self.rnn(h)
        return self.head(_summarise(out, self.pooling))


class CRNN2D(nn.Module):
    """2-D convolutions, then a recurrent layer over the pooled time axis.

    Per-bin batch norm, 2-D conv blocks as in :class:`CNN2D`, then the feature maps at each
    pooled frame (channels x remaining bins) feed a GRU or LSTM, summarised by the time
    average (or last step) of its outputs, dropout and a linear classifier.

    Parameters
    ----------
    n_classes : int > 1
        Number of output classes.
    input_shape : tuple [shape=(n_bins, n_frames)]
        Shape of one slice.
    channels : list of int
        Output channels of each conv block.
    kernel_size, pool : int
        Conv kernel size and max-pooling factor per block (see :class:`CNN2D`).
    rnn : {'gru', 'lstm'}
        Recurrent layer type.
    hidden_size, num_layers : int
        Recurrent layer size and depth.
    bidirectional : bool
        Run the recurrent layer in both directions.
    pooling : {'mean', 'last'}
        Summarise the recurrent outputs by their time average or the last step.
    dropout : float in [0, 1)
        Dropout before the classifier.

    Notes
    -----
    ``forward(x)``: ``x`` [shape=(batch, n_bins, n_frames)] -> logits [shape=(batch, n_classes)].
    """

    def __init__(
        self, *, n_classes: int, input_shape: Sequence[int], channels: Sequence[int] = (16, 32, 64),
        kernel_size: int = 3, pool: int = 2, rnn: str = "gru", hidden_size: int = 64, num_layers: int = 1,
        bidirectional: bool = False, pooling: str = "mean", dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.n_classes = _check_positive(n_classes, field="n_classes")
        self.input_shape = _check_input_shape(input_shape, n_channels=None, name="CRNN2D")
        self.encoder = _CRNN2DEncoder(
            n_bins=self.input_shape[0], channels=channels, kernel_size=kernel_size, pool=pool, rnn=rnn,
            hidden_size=hidden_size, num_layers=num_layers, bidirectional=bidirectional, pooling=pooling,
        )
        self.head = _head(self.encoder.out_features, _check_positive(n_classes, field="n_classes"), dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_batch(x, ndim=3, size=self.input_shape[:1], name="CRNN2D")
        return self.head(self.encoder(x))


class RNN(nn.Module):
    """Stacked LSTM (or GRU) over frame vectors, e.g. MFCC or log-mel frames.

    Per-bin batch norm, then a recurrent network reading one ``n_bins`` vector per frame,
    summarised by the time average (or last step) of its outputs, dropout and a linear
    classifier. Cost grows linearly with ``n_frames`` and is sequential in time; prefer
    :class:`CRNN1D` for long slices on a CPU.

    Parameters
    ----------
    n_classes : int > 1
        Number of output classes.
    input_shape : tuple [shape=(n_bins, n_frames)]
        Shape of one slice.
    rnn : {'lstm', 'gru'}
        Recurrent layer type.
    hidden_size, num_layers : int
        Recurrent layer size and depth.
    bidirectional : bool
        Run the recurrent layers in both directions.
    pooling : {'mean', 'last'}
        Summarise the recurrent outputs by their time average or the last step.
    dropout : float in [0, 1)
        Dropout between recurrent layers (when ``num_layers > 1``) and before the classifier.

    Notes
    -----
    ``forward(x)``: ``x`` [shape=(batch, n_bins, n_frames)] -> logits [shape=(batch, n_classes)].
    """

    def __init__(
        self, *, n_classes: int, input_shape: Sequence[int], rnn: str = "lstm", hidden_size: int = 64,
        num_layers: int = 2, bidirectional: bool = False, pooling: str = "mean", dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.n_classes = _check_positive(n_classes, field="n_classes")
        self.input_shape = _check_input_shape(input_shape, n_channels=None, name="RNN")
        num_layers = _check_positive(num_layers, field="num_layers")
        dropout = _check_dropout(dropout)
        self.norm = nn.BatchNorm1d(self.input_shape[0])
        self.rnn = _RNNS[_check_choice(rnn, tuple(_RNNS), field="rnn")](
            self.input_shape[0], _check_positive(hidden_size, field="hidden_size"), num_layers=num_layers,
            batch_first=True, bidirectional=bool(bidirectional), dropout=dropout if num_layers > 1 else 0.0,
        )
        self.pooling = _check_choice(pooling, _POOLINGS, field="pooling")
        self.head = _head(
            hidden_size * (2 if bidirectional else 1), _check_positive(n_classes, field="n_classes"), dropout
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_batch(x, ndim=3, size=self.input_shape[:1], name="RNN")
        out, _ = self.rnn(self.norm(x).transpose(1, 2))  # (batch, frames, hidden)
        return self.head(_summarise(out, self.pooling))


class TwoBranch(nn.Module):
    """Two-branch network: a CNN on the harmonic part, a CRNN on the percussive part.

    Channel 0 of the input (harmonic log-mel) goes through a CNN encoder as in
    :class:`CNN2D` (timbre and harmony patterns, pooled globally); channel 1 (percussive
    log-mel of the same slice) goes through a CRNN encoder as in :class:`CRNN2D` (rhythmic
    patterns over time). Their embeddings are concatenated and classified by a small MLP.

    Parameters
    ----------
    n_classes : int > 1
        Number of output classes.
    input_shape : tuple [shape=(2, n_bins, n_frames)]
        Shape of one slice: harmonic and percussive spectrograms stacked.
    harmonic : dict, optional
        Overrides for the harmonic CNN encoder: ``channels``, ``kernel_size``, ``pool``.
    percussive : dict, optional
        Overrides for the percussive CRNN encoder: ``channels``, ``kernel_size``, ``pool``,
        ``rnn``, ``hidden_size``, ``num_layers``, ``bidirectional``, ``pooling``.
    hidden : int
        Width of the merged hidden layer.
    dropout : float in [0, 1)
        Dropout before each linear layer of the merged classifier.

    Notes
    -----
    ``forward(x)``: ``x`` [shape=(batch, 2, n_bins, n_frames)] -> logits
    [shape=(batch, n_classes)].
    """

    HARMONIC_DEFAULTS: dict[str, Any] = {"channels": (16, 32, 64), "kernel_size": 3, "pool": 2}
    PERCUSSIVE_DEFAULTS: dict[str, Any] = {
        "channels": (16, 32, 32), "kernel_size": 3, "pool": 2, "rnn": "gru", "hidden_size": 64,
        "num_layers": 1, "bidirectional": False, "pooling": "mean",
    }

    def __init__(
        self, *, n_classes: int, input_shape: Sequence[int], harmonic: dict[str, Any] | None = None,
        percussive: dict[str, Any] | None = None, hidden: int = 64, dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.n_classes = _check_positive(n_classes, field="n_classes")
        self.input_shape = _check_input_shape(input_shape, n_channels=2, name="TwoBranch")
        n_bins = self.input_shape[1]
        self.harmonic = _CNNEncoder(n_bins=n_bins, **_merge(self.HARMONIC_DEFAULTS, harmonic, field="harmonic"))
        self.percussive = _CRNN2DEncoder(
            n_bins=n_bins, **_merge(self.PERCUSSIVE_DEFAULTS, percussive, field="percussive")
        )
        dropout = _check_dropout(dropout)
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(
                self.harmonic.out_features + self.percussive.out_features, _check_positive(hidden, field="hidden")
            ),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, _check_positive(n_classes, field="n_classes")),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_batch(x, ndim=4, size=self.input_shape[:2], name="TwoBranch")
        return self.head(torch.cat([self.harmonic(x[:, 0]), self.percussive(x[:, 1])], dim=1))


def _merge(defaults: dict[str, Any], overrides: dict[str, Any] | None, *, field: str) -> dict[str, Any]:
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ValueError(f"{field}: unknown settings {unknown}; valid: {sorted(defaults)}")
    return {**defaults, **overrides}


# --------------------------------------------------------------------------------------------
# registry

NETS: dict[str, type[nn.Module]] = {
    "cnn": CNN2D,
    "crnn1d": CRNN1D,
    "crnn2d": CRNN2D,
    "rnn": RNN,
    "two_branch": TwoBranch,
}
"""Network classes by name."""


def net_hparams(name: str) -> dict[str, Any]:
    """Return the hyperparameters of network ``name`` and their defaults.

    Raises
    ------
    ValueError
        If ``name`` is not in :data:`NETS` (the message lists the valid names).
    """
    if name not in NETS:
        raise ValueError(f"unknown network {name!r}; valid choices: {sorted(NETS)}")
    params = inspect.signature(NETS[name].__init__).parameters
    return {
        k: p.default for k, p in params.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and k not in ("n_classes", "input_shape")
    }


def build_net(
    name: str, *, n_classes: int, input_shape: Sequence[int], params: dict[str, Any] | None = None
) -> nn.Module:
    """Build network ``name`` with hyperparameters ``params`` (defaults for the rest).

    Parameters
    ----------
    name : str
        A key of :data:`NETS`.
    n_classes : int > 1
        Number of output classes.
    input_shape : tuple of int
        Shape of one slice, ``(n_bins, n_frames)`` or ``(2, n_bins, n_frames)`` for
        ``two_branch``.
    params : dict, optional
        Hyperparameters; see each class.

    Returns
    -------
    net : torch.nn.Module
        Freshly initialised from torch's global generator: seed it by calling this inside
        ``torch.random.fork_rng()`` after ``torch.manual_seed`` (as
        :class:`~genrelab.deep.estimator.TorchClassifier` does).

    Raises
    ------
    ValueError
        On an unknown network or hyperparameter name (listing the valid ones) or an invalid
        value.
    """
    valid = net_hparams(name)
    params = dict(params or {})
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(f"{name}: unknown hyperparameters {unknown}; valid: {sorted(valid)}")
    if int(n_classes) < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes!r}")
    return NETS[name](n_classes=int(n_classes), input_shape=tuple(input_shape), **params)
