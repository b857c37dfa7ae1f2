"""Frame and patch arithmetic of Essentia's ``TensorflowPredict*`` algorithms, in numpy.

Essentia's MusiCNN, VGGish and EffNet-Discogs wrappers all do the same thing: cut the
16 kHz signal into STFT frames (``FrameCutter``, first frame *centred* on sample 0), turn
each frame into log-mel bands (``TensorflowInputMusiCNN`` / ``TensorflowInputVGGish``),
stack ``patch_size`` consecutive frames into one patch, move ``patch_hop`` frames, and drop
a last incomplete patch (``lastPatchMode="discard"``). The functions here reproduce that
stacking so that patches of many clips can share one TensorFlow batch, and so that the
patching can be tested without any model file.

Only numpy is imported here; nothing loads Essentia or TensorFlow.
"""

from __future__ import annotations

import numpy as np

__all__ = ["n_frames", "n_patches", "min_samples", "patch_starts", "make_patches", "patch_times"]


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer")
    return int(value)


def n_frames(n_samples: int, *, hop_size: int) -> int:
    """Number of frames Essentia's ``FrameCutter`` (default settings) yields.

    With ``startFromZero=False`` the first frame is centred on sample 0 and frames
    continue, zero-padded, past the last sample; the count depends only on the hop.

    Parameters
    ----------
    n_samples : int >= 0
        Signal length in samples.
    hop_size : int > 0
        Hop in samples.

    Returns
    -------
    n : int
        ``(n_samples - 1) // hop_size + 2`` for a non-empty signal, 0 for an empty one.
    """
    hop_size = _positive_int(hop_size, "hop_size")
    if n_samples < 0:
        raise ValueError(f"n_samples={n_samples!r} must be >= 0")
    return 0 if n_samples == 0 else (int(n_samples) - 1) // hop_size + 2


def n_patches(n_frames_: int, *, patch_size: int, patch_hop: int) -> int:
    """Number of complete patches in ``n_frames_`` frames (the incomplete last one is dropped)."""
    patch_size = _positive_int(patch_size, "patch_size")
    patch_hop = _positive_int(patch_hop, "patch_hop")
    return 0 if n_frames_ < patch_size else (n_frames_ - patch_size) // patch_hop + 1


def min_samples(*, hop_size: int, patch_size: int) -> int:
    """Fewest samples that give one complete patch: ``(patch_size - 2) * hop_size + 1``."""
    hop_size = _positive_int(hop_size, "hop_size")
    patch_size = _positive_int(patch_size, "patch_size")
    return max(1, (patch_size - 2) * hop_size + 1)


def patch_starts(n_frames_: int, *, patch_size: int, patch_hop: int) -> np.ndarray:
    """First frame of every complete patch.

    Returns
    -------
    starts : np.ndarray [shape=(n_patches,), dtype=int64]
        ``0, patch_hop, 2 * patch_hop, ...`` while a whole patch fits.
    """
    k = n_patches(n_frames_, patch_size=patch_size, patch_hop=patch_hop)
    return np.arange(k, dtype=np.int64) * int(patch_hop)


def make_patches(frames: np.ndarray, *, patch_size: int, patch_hop: int) -> np.ndarray:
    """Stack consecutive frames into (possibly overlapping) patches.

    Parameters
    ----------
    frames : np.ndarray [shape=(n_frames, n_bands)]
        Log-mel frames, time first.
    patch_size : int > 0
        Frames per patch.
    patch_hop : int > 0
        Frames between the starts of consecutive patches.

    Returns
    -------
    patches : np.ndarray [shape=(n_patches, patch_size, n_bands), dtype=float32]
        A contiguous copy; ``n_patches`` is 0 when fewer than ``patch_size`` frames are given.
    """
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 2:
        raise ValueError(f"frames must be 2-D (n_frames, n_bands); got shape {frames.shape}")
    starts = patch_starts(frames.shape[0], patch_size=patch_size, patch_hop=patch_hop)
    if starts.size == 0:
        return np.zeros((0, patch_size, frames.shape[1]), dtype=np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(frames, patch_size, axis=0)  # (n-P+1, bands, P)
    return np.ascontiguousarray(windows[starts].transpose(0, 2, 1))


def patch_times(count: int, *, patch_hop: int, hop_size: int, sample_rate: int) -> np.ndarray:
    """Start time of each patch in seconds.

    A patch starting at frame ``k`` starts at ``k * hop_size / sample_rate`` seconds: the
    centre of its first STFT frame (that frame's window reaches ``frame_size / 2`` samples
    earlier, zero-padded before the signal start).

    Returns
    -------
    start_s : np.ndarray [shape=(count,), dtype=float64]
    """
    if count < 0:
        raise ValueError(f"count={count!r} must be >= 0")
    return np.arange(count, dtype=np.float64) * (_positive_int(patch_hop, "patch_hop") * hop_size / sample_rate)
