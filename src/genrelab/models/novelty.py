"""Out-of-distribution warnings: is this input like anything the model was trained on?

Two kinds of check, both reported as warnings next to a prediction (never instead of it):

* :func:`signal_warnings` looks at the decoded signal itself: a DC offset, a very low level,
  heavy clipping, or noise without tonal or rhythmic structure.
* :class:`NoveltyDetector` looks at the model's own input. The train stage fits it on the
  training split: each slice's feature vector ``X`` plus, where the features have frames
  (``mfcc``, ``mel``), a short summary of how those frames move in time
  (:class:`FrameSummary`); standardised, whitened, and a reference sample kept. A slice's
  novelty is its mean distance to its ``k`` nearest reference rows, a recording's the median
  over its slices. The threshold is a high quantile (99% by default) of that median over
  held-out in-domain tracks: the valid split (tracks the model never saw), or, without one,
  every training track measured against the other training tracks. A recording beyond it is
  flagged as "unlike anything the model was trained on".

The detector is stored pickle-free in the bundle (``novelty/detector.json`` plus ``.npy``
arrays written with :func:`numpy.save`, byte-identical for identical inputs), so it loads
without ``--trust``.

What it can and cannot do: it measures distance from the *training data*, not "musicness",
and it says nothing about whether a prediction is right. The built-in synthetic dataset covers
real music's average timbre well: on the shared recordings, the default synthetic-trained
bundle flags the dog and the three speech recordings (their frames move unlike any training
slice) but only a quarter of the real music clips (solo instruments, a carnatic vocal, a waltz,
some electronic music), so "not flagged" never means "the genre is right": for such a model
the card's synthetic warning stands for every input. A bundle trained on too few tracks (fewer
than 20 held out) gets no detector at all, rather than one that cries wolf.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "NOVELTY_FOLDER",
    "UNLIKE",
    "FrameSummary",
    "NoveltyDetector",
    "NoveltyResult",
    "TooFewTracksError",
    "fit_novelty",
    "load_novelty",
    "signal_warnings",
]

NOVELTY_FOLDER = "novelty"
"""Sub-folder of a bundle holding the detector."""

UNLIKE = "unlike anything the model was trained on"
"""The words that start a novelty warning."""


class TooFewTracksError(ValueError):
    """Too few tracks to learn what in-domain input looks like; the bundle gets no detector."""


def _ordinal(x: float) -> str:
    n = f"{x:g}"
    return n + ("th" if n.endswith(("11", "12", "13")) or n[-1] not in "123" or "." in n
                else {"1": "st", "2": "nd", "3": "rd"}[n[-1]])


@dataclass(frozen=True)
class NoveltyResult:
    """Novelty of one recording.

    Attributes
    ----------
    flagged : bool
        The recording's median slice novelty is beyond the threshold.
    ratio : float
        Median slice novelty divided by the threshold (above 1 = flagged).
    fraction : float
        Fraction of its slices beyond the threshold.
    n_slices : int
    """

    flagged: bool
    ratio: float
    fraction: float
    n_slices: int
    quantile: float = 0.99

    def message(self) -> str:
        return (f"{UNLIKE} (distance to its training data {self.ratio:.1f}x the "
                f"{_ordinal(100 * self.quantile)} percentile of held-out training tracks; "
                f"{round(100 * self.fraction)}% of its {self.n_slices} slice{'s' * (self.n_slices != 1)} beyond it)")

    def to_dict(self) -> dict[str, Any]:
        return {"flagged": self.flagged, "ratio": round(self.ratio, 4), "fraction": round(self.fraction, 4),
                "n_slices": self.n_slices}


@dataclass(frozen=True)
class FrameSummary:
    """How the detector summarises a slice's time-frequency frames (``S``) besides ``X``.

    Seven numbers per slice and channel: the mean absolute frame-to-frame change in four
    groups of bins (spectral flux), and three of the frame energy's trajectory -- its
    standard deviation (dB), the fraction of frames below the mean power (Scheirer & Slaney's
    low-energy rate), and the share of its modulation energy at 3-6 Hz (speech's syllable
    rate). Music, speech and animal sounds differ in these more than in average timbre.

    Attributes
    ----------
    energy : {'c0', 'mean'}
        Where a frame's energy is: row 0 of MFCC frames (``c0 = sqrt(n_mels) * mean dB``), or
        the mean of log-mel frames (dB).
    db_per_unit : float
        dB per unit of that energy (``1 / sqrt(n_mels)`` for ``c0``, 1 for ``mean``).
    hop_s : float
        Seconds between frames.
    """

    energy: str
    db_per_unit: float
    hop_s: float

    @classmethod
    def for_features(cls, features: dict[str, Any], sample_rate: int | None) -> FrameSummary | None:
        """The summary for a ``features`` params section, or ``None`` for features without frames."""
        name = features.get("name")
        if name not in ("mfcc", "mel") or not sample_rate:
            return None
        hop_s = float(features.get("hop_length", 512)) / float(sample_rate)
        if name == "mfcc":
            return cls(energy="c0", db_per_unit=1.0 / math.sqrt(float(features.get("n_mels", 128))), hop_s=hop_s)
        return cls(energy="mean", db_per_unit=1.0, hop_s=hop_s)

    def __call__(self, S: np.ndarray) -> np.ndarray:
        """``S [shape=(n, bins, T) or (n, channels, bins, T)]`` -> ``(n, 7 * channels)``."""
        S = np.asarray(S, dtype=np.float64)
        if S.ndim == 4:
            return np.concatenate([self(S[:, c]) for c in range(S.shape[1])], axis=1)
        if S.ndim != 3 or S.shape[2] < 2:
            raise ValueError(f"novelty: frames must be (n, bins, frames >= 2), got {S.shape}")
        e = (S[:, 0, :] if self.energy == "c0" else S.mean(axis=1)) * self.db_per_unit
        power = 10.0 ** ((e - e.max(axis=1, keepdims=True)) / 10.0)
        low = (power < power.mean(axis=1, keepdims=True)).mean(axis=1)
        spec = np.abs(np.fft.rfft(e - e.mean(axis=1, keepdims=True), axis=1)) ** 2
        freq = np.fft.rfftfreq(e.shape[1], d=self.hop_s)
        syllabic = spec[:, (freq >= 3) & (freq <= 6)].sum(axis=1) / np.maximum(spec[:, freq > 0.5].sum(axis=1), 1e-12)
        change = np.abs(np.diff(S, axis=2))
        flux = [change[:, g].mean(axis=(1, 2)) for g in np.array_split(np.arange(S.shape[1]), 4) if len(g)]
        return np.column_stack([*flux, e.std(axis=1), low, syllabic])


@dataclass
class NoveltyDetector:
    """k-nearest-neighbour distance to whitened training features.

    A slice is described by its feature vector ``X`` (and, where the features have frames,
    :class:`FrameSummary` of them), standardised and whitened with a Ledoit-Wolf shrunk
    covariance (principal components scaled to unit variance, at most :data:`MAX_COMPONENTS`
    of them, so that a slice off the training data's correlations stands out); its novelty is the mean distance to
    its ``k`` nearest
    reference rows. A recording's novelty is the median over its slices, and it is flagged
    beyond ``threshold``: the ``quantile`` of the same median over held-out training tracks.

    Attributes
    ----------
    mean, scale : np.ndarray [shape=(n_inputs,)]
        Standardisation.
    projection : np.ndarray [shape=(n_inputs, n_components)]
        Whitening.
    reference : np.ndarray [shape=(n_reference, n_components)], float32
    k : int
    threshold : float
    quantile : float
    calibration : str
        Which held-out tracks set the threshold.
    n_calibration : int
        How many.
    frames : FrameSummary or None
    """

    mean: np.ndarray
    scale: np.ndarray
    projection: np.ndarray
    reference: np.ndarray
    k: int
    threshold: float
    quantile: float
    calibration: str
    n_calibration: int
    frames: FrameSummary | None = None

    def inputs(self, X: np.ndarray, S: np.ndarray | None = None) -> np.ndarray:
        """What the detector measures: ``X`` and, with a frame summary, the summary of ``S``."""
        X = np.asarray(X, dtype=np.float64)
        if self.frames is None:
            return X
        if S is None:
            raise ValueError("novelty: this detector also reads the frames S, which were not given")
        return np.concatenate([X, self.frames(S)], axis=1)

    def _project(self, V: np.ndarray) -> np.ndarray:
        if V.ndim != 2 or V.shape[1] != self.mean.shape[0]:
            raise ValueError(f"novelty: expected rows of {self.mean.shape[0]} inputs, got shape {V.shape}")
        Z = (V - self.mean) / self.scale
        Z[~np.isfinite(Z)] = 1e3  # a NaN feature is as unlike the training data as it gets
        return (Z @ self.projection).astype(np.float32)

    def scores(self, X: np.ndarray, S: np.ndarray | None = None) -> np.ndarray:
        """Novelty of each slice.

        Parameters
        ----------
        X : np.ndarray [shape=(n, n_features)]
            Feature vectors as the model reads them.
        S : np.ndarray [shape=(n, ...)], optional
            Their frames (needed when the detector has a frame summary).

        Returns
        -------
        novelty : np.ndarray [shape=(n,)]
            Mean Euclidean distance to the ``k`` nearest reference rows in whitened units.
        """
        return _knn_mean_distance(self._project(self.inputs(X, S)), self.reference, self.k)

    def assess(self, X: np.ndarray, S: np.ndarray | None = None) -> NoveltyResult:
        """Whether a recording (its slices' ``X`` and ``S``) is unlike the training data."""
        s = self.scores(X, S)
        if s.size == 0:
            return NoveltyResult(flagged=False, ratio=0.0, fraction=0.0, n_slices=0)
        ratio = float(np.median(s) / self.threshold)
        return NoveltyResult(flagged=ratio > 1.0, ratio=ratio, fraction=float(np.mean(s > self.threshold)),
                             n_slices=int(s.size), quantile=self.quantile)

    def save(self, folder: str | Path) -> None:
        """Write ``detector.json`` and the arrays (``.npy``) into ``folder``."""
        from genrelab.io import save_npy, write_json

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("mean", "scale", "projection"):
            save_npy(folder / f"{name}.npy", np.asarray(getattr(self, name), dtype=np.float64))
        save_npy(folder / "reference.npy", self.reference.astype(np.float32))
        write_json(folder / "detector.json", {
            "method": "whitened_knn_mean_distance", "k": self.k, "threshold": float(self.threshold),
            "quantile": float(self.quantile), "calibration": self.calibration, "n_calibration": self.n_calibration,
            "n_reference": int(self.reference.shape[0]), "n_inputs": int(self.mean.shape[0]),
            "frames": asdict(self.frames) if self.frames is not None else None})


MAX_COMPONENTS = 256
"""Most whitened components kept (bounds the bundle's size for 1280-d embeddings)."""


def _knn_mean_distance(Z: np.ndarray, R: np.ndarray, k: int, *, exclude: np.ndarray | None = None,
                       groups: np.ndarray | None = None, chunk: int = 1024) -> np.ndarray:
    """Mean distance of each row of ``Z`` to its ``k`` nearest rows of ``R``.

    ``exclude`` (group of each row of ``Z``) and ``groups`` (of each row of ``R``) leave out
    reference rows of the same group (leave-one-track-out).
    """
    k = min(k, len(R))
    R64 = R.astype(np.float64)
    r2 = np.einsum("ij,ij->i", R64, R64)
    out = np.empty(len(Z))
    for lo in range(0, len(Z), chunk):
        z = Z[lo:lo + chunk].astype(np.float64)
        d2 = np.einsum("ij,ij->i", z, z)[:, None] + r2[None, :] - 2.0 * z @ R64.T
        if exclude is not None and groups is not None:
            d2[exclude[lo:lo + chunk, None] == groups[None, :]] = np.inf
        d2 = np.partition(np.maximum(d2, 0.0), k - 1, axis=1)[:, :k]
        out[lo:lo + chunk] = np.sqrt(d2).mean(axis=1)
    return out


def _track_medians(scores: np.ndarray, track_id: np.ndarray) -> np.ndarray:
    ok = np.isfinite(scores)
    frame = pd.DataFrame({"t": track_id[ok], "s": scores[ok]})
    return frame.groupby("t")["s"].median().to_numpy()


def fit_novelty(X: np.ndarray, track_id: np.ndarray, *, S: np.ndarray | None = None,
                valid: tuple[np.ndarray, np.ndarray | None, np.ndarray] | None = None,
                frames: FrameSummary | None = None, k: int = 5, quantile: float = 0.99, max_reference: int = 2000,
                min_tracks: int = 20, seed: int = 0) -> NoveltyDetector:
    """Fit the detector on training features and set its threshold on held-out tracks.

    Parameters
    ----------
    X : np.ndarray [shape=(n, n_features)]
        Training feature vectors.
    track_id : np.ndarray [shape=(n,)]
        Track of each row.
    S : np.ndarray [shape=(n, ...)], optional
        Training frames (read when ``frames`` is given).
    valid : (X, S, track_id), optional
        The valid split (tracks not in ``X``). With at least ``min_tracks`` tracks it sets the
        threshold; otherwise each training track is measured against the other training tracks.
    frames : FrameSummary, optional
        Also summarise the frames (see :class:`FrameSummary`).
    k : int > 0
        Neighbours averaged.
    quantile : float in (0, 1)
        Of the held-out tracks' median novelty, where the threshold is set.
    max_reference : int > 0
        Training rows kept as the reference (a seeded sample when there are more).
    min_tracks : int
        Fewest held-out tracks that may set a threshold: with fewer, a new input of the same
        kind lands beyond the few seen too often for a warning to mean anything.
    seed : int

    Returns
    -------
    NoveltyDetector

    Raises
    ------
    TooFewTracksError
        With fewer than ``min_tracks`` training or held-out tracks.
    """
    if not 0 < quantile < 1 or k < 1 or max_reference < 1:
        raise ValueError(f"novelty: quantile in (0, 1), k >= 1 and max_reference >= 1; got {quantile}, {k}, "
                         f"{max_reference}")
    track_id = np.asarray(track_id).astype(str)
    if len(np.unique(track_id)) < min_tracks:
        raise TooFewTracksError(f"only {len(np.unique(track_id))} training tracks (at least {min_tracks} needed to "
                                "tell what is unlike them)")
    probe = NoveltyDetector(mean=np.zeros(0), scale=np.ones(0), projection=np.eye(0), reference=np.zeros((0, 0)),
                            k=k, threshold=1.0, quantile=quantile, calibration="", n_calibration=0, frames=frames)
    V = probe.inputs(X, S)
    finite = np.isfinite(V).all(axis=1)
    V, track_id = V[finite], track_id[finite]
    mean = V.mean(axis=0)
    std = V.std(axis=0)
    scale = np.where(std > 1e-8 * (np.abs(mean) + 1.0), std, 1.0)
    Z = (V - mean) / scale
    from sklearn.covariance import ledoit_wolf

    # shrunk towards the identity as far as the sample size calls for (Ledoit & Wolf 2004): with few
    # training rows, directions they never explored are not amplified into false alarms
    cov, _ = ledoit_wolf(Z)
    eigval, eigvec = np.linalg.eigh(cov)
    order = np.argsort(eigval)[::-1][:MAX_COMPONENTS]
    eigval = np.maximum(eigval[order], max(float(eigval.max()), 1e-12) * 1e-4)
    eigvec = eigvec[:, order] * np.sign(eigvec[:, order].sum(axis=0) + 1e-300)  # a fixed sign per component
    projection = eigvec / np.sqrt(eigval)
    W = (Z @ projection).astype(np.float32)
    keep = np.arange(len(W))
    if len(W) > max_reference:
        keep = np.sort(np.random.default_rng(seed).choice(len(W), size=max_reference, replace=False))
    det = NoveltyDetector(mean=mean, scale=scale, projection=projection, reference=W[keep], k=int(k), threshold=1.0,
                          quantile=float(quantile), calibration="", n_calibration=0, frames=frames)
    if valid is not None and len(np.unique(valid[2])) >= min_tracks:
        held = _track_medians(det.scores(valid[0], valid[1]), np.asarray(valid[2]).astype(str))
        det.calibration = "valid-split tracks"
    else:
        loo = _knn_mean_distance(W, det.reference, det.k, exclude=track_id, groups=track_id[keep])
        held = _track_medians(loo, track_id)
        det.calibration = "training tracks, each against the others"
    if held.size < min_tracks:
        raise TooFewTracksError(f"only {held.size} held-out tracks to learn what in-domain input looks like (at least "
                                f"{min_tracks} needed), so no input can be told apart as unlike the training data")
    det.threshold = float(max(np.quantile(held, quantile), 1e-9))
    det.n_calibration = int(held.size)
    return det


def load_novelty(bundle_folder: str | Path) -> NoveltyDetector | None:
    """The detector of a bundle, or ``None`` when it has none (older bundles, pretrained heads)."""
    from genrelab.io import read_json

    folder = Path(bundle_folder) / NOVELTY_FOLDER
    if not (folder / "detector.json").is_file():
        return None
    info = read_json(folder / "detector.json")
    arrays = {name: np.load(folder / f"{name}.npy", allow_pickle=False)
              for name in ("mean", "scale", "projection", "reference")}
    return NoveltyDetector(**arrays, k=int(info["k"]), threshold=float(info["threshold"]),
                           quantile=float(info["quantile"]), calibration=str(info.get("calibration", "")),
                           n_calibration=int(info.get("n_calibration", 0)),
                           frames=FrameSummary(**info["frames"]) if info.get("frames") else None)


# ------------------------------------------------------------------------------ signal checks
LOW_LEVEL_DB = -35.0
"""Peak level (dBFS) below which a recording is very low level (silence is lower still)."""
DC_FRACTION = 0.5
"""A mean (DC) larger than this fraction of the rest of the signal's RMS is a DC offset."""
CLIPPED_FRACTION = 0.01
"""Fraction of samples at the peak (of a full-scale signal) beyond which it is heavily clipped."""
NOISE_FLATNESS = 0.35
"""Median spectral flatness above which a signal is noise-like (music stays far below)."""


def _db(x: float) -> float:
    return 20.0 * math.log10(x) if x > 0 else -math.inf


def signal_warnings(y: np.ndarray, sr: int) -> list[str]:
    """Problems of a decoded recording that make any genre meaningless.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono audio in [-1, 1].
    sr : int > 0
        Sample rate in Hz.

    Returns
    -------
    warnings : list of str
        One line each: ``DC offset``, ``very low level``, ``clipped`` and ``noise-like``
        findings, with the measured values; empty for an ordinary recording.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.size == 0:
        return []
    out: list[str] = []
    peak = float(np.max(np.abs(y)))
    dc = float(np.mean(y))
    ac = float(np.std(y))
    if abs(dc) > 1e-3 and abs(dc) > DC_FRACTION * ac:
        out.append(f"DC offset: the signal's mean ({dc:+.3f}, {_db(abs(dc)):.0f} dBFS) outweighs what varies "
                   f"around it (RMS {_db(ac):.0f} dBFS); it is mostly a constant, not sound")
    level = _db(peak)
    if level < LOW_LEVEL_DB:
        out.append(f"very low level: peak {level:.0f} dBFS (ordinary recordings peak above {LOW_LEVEL_DB:.0f} dBFS); "
                   "it may be near-silence or a wrongly scaled file")
    if peak >= 0.89 and np.mean(np.abs(y) >= 0.99 * peak) > CLIPPED_FRACTION:
        share = float(np.mean(np.abs(y) >= 0.99 * peak))
        out.append(f"clipped: {100 * share:.0f}% of the samples sit at the peak level")
    if ac > 0:
        import librosa

        flat = librosa.feature.spectral_flatness(y=(y - dc).astype(np.float32), n_fft=2048, hop_length=1024)
        flatness = float(np.median(flat))
        if flatness > NOISE_FLATNESS:
            out.append(f"noise-like: median spectral flatness {flatness:.2f} (music stays below "
                       f"{NOISE_FLATNESS:.2f}); no tonal or rhythmic structure")
    return out
