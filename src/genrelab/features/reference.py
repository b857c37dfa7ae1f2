"""Every slice extractor written as plain librosa calls on one slice: the definitions.

These are slow (one librosa call per descriptor and slice, ``librosa.effects.hpss`` with scipy's
median filters) and exist to say what the fast extractors compute: the tests compare the two on
real and synthetic audio, and ``benchmarks/bench_features.py`` times them as the "plain loop".

>>> import numpy as np
>>> from genrelab.features import MFCCFeatures
>>> y = np.sin(2 * np.pi * 440 * np.arange(22050) / 22050).astype(np.float32)
>>> fast = MFCCFeatures(n_mfcc=13)(y[None], 22050)
>>> plain = reference_features(MFCCFeatures(n_mfcc=13), y, 22050)
>>> bool(np.allclose(fast.vector, plain.vector, rtol=1e-4, atol=1e-3))
True
"""

from __future__ import annotations

import numpy as np

from genrelab.features.extractors import (
    KAGGLE_COLUMNS,
    ClassicFeatures,
    FeatureBatch,
    MelFeatures,
    MFCCFeatures,
    _stats,
)

__all__ = ["reference_features", "REFERENCES"]


def _mfcc(ex: MFCCFeatures, y: np.ndarray, sr: int) -> FeatureBatch:
    import librosa

    m = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=ex.n_mfcc, n_fft=ex.n_fft, hop_length=ex.hop_length,
                             n_mels=ex.n_mels, pad_mode="reflect")
    if ex.deltas:
        m = np.concatenate([m, librosa.feature.delta(m), librosa.feature.delta(m, order=2)], axis=-2)
    return FeatureBatch(_stats(m[None], ex.stats), m[None])


def _mel(ex: MelFeatures, y: np.ndarray, sr: int) -> FeatureBatch:
    import librosa

    S = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=ex.n_fft, hop_length=ex.hop_length, n_mels=ex.n_mels,
                                       fmin=ex.fmin, fmax=ex.fmax, pad_mode="reflect")
    S = librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None)
    return FeatureBatch(_stats(S[None], ex.stats), S[None])


def _classic(ex: ClassicFeatures, y: np.ndarray, sr: int) -> FeatureBatch:
    import librosa

    kw = {"n_fft": ex.n_fft, "hop_length": ex.hop_length, "pad_mode": "reflect"}
    feats = {
        "chroma_stft": librosa.feature.chroma_stft(y=y, sr=sr, **kw),
        "rms": librosa.feature.rms(y=y, frame_length=ex.n_fft, hop_length=ex.hop_length, pad_mode="reflect"),
        "spectral_centroid": librosa.feature.spectral_centroid(y=y, sr=sr, **kw),
        "spectral_bandwidth": librosa.feature.spectral_bandwidth(y=y, sr=sr, **kw),
        "rolloff": librosa.feature.spectral_rolloff(y=y, sr=sr, **kw),
        "zero_crossing_rate": librosa.feature.zero_crossing_rate(y, frame_length=ex.n_fft, hop_length=ex.hop_length),
    }
    # librosa.effects.hpss as before 0.10: istft without a length, then fix_length
    D = librosa.stft(y, **kw)
    H, P = librosa.decompose.hpss(D)
    n_out = ex.hop_length * (D.shape[-1] - 1)
    harmonic = librosa.util.fix_length(librosa.istft(H, hop_length=ex.hop_length, length=n_out), size=len(y))
    percussive = librosa.util.fix_length(librosa.istft(P, hop_length=ex.hop_length, length=n_out), size=len(y))
    cols = {}
    for key, f in {**feats, "harmony": harmonic, "perceptr": percussive}.items():
        cols[f"{key}_mean"], cols[f"{key}_var"] = f.mean(), f.var()
    onset = librosa.onset.onset_strength(y=y, sr=sr, n_fft=ex.n_fft, hop_length=ex.hop_length, aggregate=np.median,
                                         pad_mode="reflect")
    cols["tempo"] = librosa.feature.tempo(onset_envelope=onset, sr=sr, hop_length=ex.hop_length)[0]
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20, **kw)
    for i in range(20):
        cols[f"mfcc{i + 1}_mean"], cols[f"mfcc{i + 1}_var"] = mfcc[i].mean(), mfcc[i].var()
    return FeatureBatch(np.array([[cols[c] for c in KAGGLE_COLUMNS]], dtype=np.float32), None)


REFERENCES = {MFCCFeatures: _mfcc, MelFeatures: _mel, ClassicFeatures: _classic}
"""Plain librosa definition of each slice extractor class."""


def reference_features(extractor, y: np.ndarray, sr: int) -> FeatureBatch:
    """Features of one slice with plain librosa calls (slow; the definition of ``extractor``).

    Parameters
    ----------
    extractor : MFCCFeatures, MelFeatures or ClassicFeatures
        Its settings are used.
    y : np.ndarray [shape=(n,)]
        One mono slice.
    sr : int > 0

    Returns
    -------
    FeatureBatch
        ``vector`` [shape=(1, n_features)] and ``frames`` [shape=(1, n_bins, n_frames)] or None,
        what ``extractor(y[None], sr)`` returns up to float rounding.
    """
    try:
        fn = REFERENCES[type(extractor)]
    except KeyError:
        raise ValueError(f"no plain definition for {type(extractor).__name__}; "
                         f"choose one of {[c.__name__ for c in REFERENCES]}") from None
    return fn(extractor, np.asarray(y, dtype=np.float32), sr)
