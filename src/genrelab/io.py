"""Atomic file output and audio decoding shared by every stage.

Every writer here goes through a temporary sibling file (or folder) that is renamed into
place only once it is complete, so an interrupted stage never leaves a half-written file
that a later stage would trust.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "AudioSettings",
    "AudioDecodeError",
    "atomic_path",
    "atomic_dir",
    "write_json",
    "read_json",
    "write_text",
    "write_audio",
    "load_audio",
    "save_npy",
]


@dataclass(frozen=True)
class AudioSettings:
    """Settings of the ``audio`` section.

    Attributes
    ----------
    sample_rate : int in [8000, 192000]
        Every track is decoded, mixed down and resampled to this rate (Hz).
    """

    sample_rate: int = 22050

    def __post_init__(self) -> None:
        if not 8000 <= self.sample_rate <= 192000:
            raise ValueError(f"sample_rate: must be between 8000 and 192000 Hz, got {self.sample_rate}")


class AudioDecodeError(ValueError):
    """Raised when a file cannot be decoded as audio, is empty, or is silent-length."""


def _umask() -> int:
    """The process's file mode creation mask (read by setting it, then restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    Parameters
    ----------
    path : str or PathLike
        Final destination. Parent folders are created.
    suffix : str, optional
        Suffix of the temporary file (defaults to the destination's, so that writers which
        infer the format from the extension, such as ``soundfile``, keep working).

    Yields
    ------
    tmp : Path
        Where the caller writes. Removed if the block raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())   # mkstemp makes 0600; an output is as readable as any file
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success it replaces ``path`` as a whole.

    Parameters
    ----------
    path : str or PathLike
        Final folder. An existing folder there is replaced only after the block succeeds.

    Yields
    ------
    tmp : Path
        An empty folder beside ``path``. Removed if the block raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())   # mkdtemp makes 0700
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically.

    numpy scalars and arrays are converted to plain Python numbers and lists.
    """

    def default(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"cannot serialise {type(o).__name__} to JSON")

    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Save one array as ``.npy`` atomically (readable later with ``mmap_mode='r'``)."""
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, array, allow_pickle=False)


def write_audio(path: str | os.PathLike, y: np.ndarray, sr: int, *, subtype: str = "PCM_16") -> None:
    """Write audio atomically; the format follows the extension (``.flac``, ``.wav`` ...).

    Parameters
    ----------
    path : str or PathLike
        Destination file.
    y : np.ndarray [shape=(n,) or (n, channels)]
        Samples in [-1, 1]; values outside are clipped.
    sr : int > 0
        Sample rate in Hz.
    subtype : str
        ``soundfile`` subtype; 16-bit PCM by default (compact, lossless for the generator's
        needs).
    """
    import soundfile as sf

    y = np.clip(np.asarray(y, dtype=np.float32), -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(tmp, y, int(sr), subtype=subtype)


def load_audio(
    path: str | os.PathLike,
    *,
    sr: int | None = 22050,
    mono: bool = True,
    offset: float = 0.0,
    duration: float | None = None,
) -> tuple[np.ndarray, int]:
    """Decode any common audio format, mix down and resample.

    wav, flac, ogg and GTZAN's ``.au`` are read with ``soundfile``; mp3 and anything else
    libsndfile cannot read fall back to ``librosa``/``audioread``.

    Parameters
    ----------
    path : str or PathLike
        Audio file.
    sr : int or None
        Target sample rate in Hz; ``None`` keeps the file's own rate.
    mono : bool
        Average the channels.
    offset, duration : float
        Seconds to skip, and at most how many seconds to read.

    Returns
    -------
    y : np.ndarray [shape=(n,) if mono else (channels, n)], float32
    sr : int
        The sample rate of ``y``.

    Raises
    ------
    AudioDecodeError
        If the file is missing, cannot be decoded, or holds no samples.
    """
    import librosa
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioDecodeError(f"{path}: no such file")
    y: np.ndarray | None = None
    native_sr = None
    try:
        with sf.SoundFile(path) as f:
            native_sr = f.samplerate
            start = int(round(offset * native_sr))
            frames = -1 if duration is None else int(round(duration * native_sr))
            f.seek(min(start, f.frames))
            y = f.read(frames=frames, dtype="float32", always_2d=True).T  # (channels, n)
    except Exception:  # libsndfile cannot read it: try audioread (mp3 on old libsndfile ...)
        y = None
    if y is None:
        try:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y, native_sr = librosa.load(path, sr=None, mono=False, offset=offset, duration=duration)
            y = np.atleast_2d(y).astype(np.float32)
        except Exception as exc:
            raise AudioDecodeError(f"{path}: cannot decode as audio ({type(exc).__name__}: {exc})") from exc
    if y.size == 0:
        raise AudioDecodeError(f"{path}: holds no audio samples")
    if not np.all(np.isfinite(y)):
        raise AudioDecodeError(f"{path}: holds non-finite samples")
    if mono:
        y = y.mean(axis=0)
    if sr is not None and native_sr != sr:
        y = librosa.resample(y, orig_sr=native_sr, target_sr=sr, res_type="soxr_hq")
        native_sr = sr
    return np.ascontiguousarray(y, dtype=np.float32), int(native_sr)
