"""Separation quality: signal-to-distortion ratios of estimated against true signals.

Definitions (``s`` the reference, ``ŝ`` the estimate, sums over all samples and channels):

SDR
    ``10 log10( (||s||² + eps) / (||s - ŝ||² + eps) )`` dB: the plain signal-to-distortion
    ratio used by the Music Demixing challenges and demucs' ``new_sdr``. It is *not* BSSEval's
    ``bss_eval`` SDR, which first allows a 512-tap distortion filter; use ``museval`` for that.
    Changing the gain of ``ŝ`` changes it.
SI-SDR
    Scale-invariant SDR (Le Roux, Wisdom, Erdogan & Hershey, "SDR - half-baked or well
    done?", ICASSP 2019): project the estimate on the reference,
    ``α = <ŝ, s> / ||s||²``, then ``10 log10( ||α s||² / ||ŝ - α s||² )`` dB. Equivalently
    ``10 log10( ρ² / (1 - ρ²) )`` with ``ρ`` the cosine similarity of ``ŝ`` and ``s``. Any
    non-zero gain on ``ŝ`` leaves it unchanged. For ``(channels, n)`` inputs ``α`` is fitted
    per channel and the energies are summed over channels. ``zero_mean=True`` removes each
    channel's mean first (as asteroid does; torchmetrics defaults to ``False``, as here).
"""

from __future__ import annotations

import numpy as np

__all__ = ["sdr", "si_sdr"]


def _pair(estimate: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    est = np.asarray(estimate)
    ref = np.asarray(reference)
    if est.shape != ref.shape:
        raise ValueError(f"estimate and reference must have the same shape, got {est.shape} and {ref.shape}")
    if est.ndim not in (1, 2) or est.shape[-1] == 0:
        raise ValueError(f"signals must have shape (n,) or (channels, n) with n > 0, got {est.shape}")
    for name, a in (("estimate", est), ("reference", ref)):
        if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
            raise ValueError(f"{name} must hold real numbers, got dtype {a.dtype}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} holds NaN or infinite samples")
    return np.atleast_2d(est).astype(np.float64), np.atleast_2d(ref).astype(np.float64)


def sdr(estimate: np.ndarray, reference: np.ndarray, *, eps: float = 1e-8) -> float:
    """Signal-to-distortion ratio of an estimate, in dB (see the module docstring).

    Parameters
    ----------
    estimate, reference : np.ndarray [shape=(n,) or (channels, n)]
        Same shape, finite.
    eps : float >= 0
        Added to both energies (demucs' convention): identical signals give a large finite
        value rather than ``inf``, and a silent reference a very negative one.

    Returns
    -------
    float
        SDR in dB.

    Raises
    ------
    ValueError
        On mismatched shapes, empty or non-finite input.
    """
    est, ref = _pair(estimate, reference)
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    num = float(np.sum(ref**2)) + eps
    den = float(np.sum((ref - est) ** 2)) + eps
    if den == 0:
        return float("inf")
    if num == 0:
        return float("-inf")
    return float(10 * np.log10(num / den))


def si_sdr(estimate: np.ndarray, reference: np.ndarray, *, zero_mean: bool = False, eps: float = 1e-8) -> float:
    """Scale-invariant signal-to-distortion ratio, in dB (see the module docstring).

    Parameters
    ----------
    estimate, reference : np.ndarray [shape=(n,) or (channels, n)]
        Same shape, finite.
    zero_mean : bool
        Subtract each channel's mean from both signals first.
    eps : float >= 0
        Added to the residual energy, so that identical signals give a large finite value.

    Returns
    -------
    float
        SI-SDR in dB; ``nan`` when the reference is silent (all zeros after mean removal) or
        the estimate is orthogonal to it with no energy, where the ratio is undefined.

    Raises
    ------
    ValueError
        On mismatched shapes, empty or non-finite input.
    """
    est, ref = _pair(estimate, reference)
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    if zero_mean:
        est = est - est.mean(axis=-1, keepdims=True)
        ref = ref - ref.mean(axis=-1, keepdims=True)
    ref_energy = np.sum(ref**2, axis=-1, keepdims=True)
    if np.any(ref_energy == 0):
        return float("nan")
    alpha = np.sum(est * ref, axis=-1, keepdims=True) / ref_energy
    target = alpha * ref
    target_energy = float(np.sum(target**2))
    noise_energy = float(np.sum((est - target) ** 2)) + eps
    if target_energy == 0 and noise_energy == 0:
        return float("nan")
    if noise_energy == 0:
        return float("inf")
    if target_energy == 0:
        return float("-inf")
    return float(10 * np.log10(target_energy / noise_energy))
