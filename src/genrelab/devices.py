"""One place that turns a device setting into a torch device (separation and training share it).

torch is imported on the first call, not with this module, so that CPU-only paths (HPSS, feature
extraction) can ask :func:`cuda_possible` without paying torch's start-up.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["cuda_possible", "resolve_device"]

_GPU_NODES = ("/dev/nvidia0", "/dev/nvidiactl", "/dev/dxg", "/proc/driver/nvidia")


def cuda_possible() -> bool:
    """Whether this machine could have a CUDA device, without importing torch.

    ``False`` means no NVIDIA (or WSL GPU) device node exists, so ``'auto'`` is the CPU; ``True``
    means :func:`resolve_device` must ask torch.
    """
    return any(os.path.exists(p) for p in _GPU_NODES)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``'auto'``, ``'cpu'``, ``'cuda'`` or ``'cuda:N'`` into a usable ``torch.device``.

    Parameters
    ----------
    device : str or torch.device
        ``'auto'`` picks CUDA when ``torch.cuda.is_available()``, else the CPU.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If the name is not a device, is neither CPU nor CUDA, or asks for CUDA where none is
        available.
    """
    import torch

    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a device; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} asks for CUDA, but CUDA is not available "
                         f"(torch.cuda.is_available() is False, torch {torch.__version__}); "
                         "use device='cpu' or device='auto'")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device={device!r}: only 'cpu' and 'cuda' devices are supported")
    return dev
