"""Atomic file output, audio decoding and the one audio validation shared by every stage.

Every writer here goes through a temporary sibling file (or folder) that is renamed into
place only once it is complete, so an interrupted stage never leaves a half-written file
that a later stage would trust; :func:`remove_temporaries` sweeps what a killed process
(``SIGKILL``) could not clean up.

Audio is validated in one place: :class:`AudioLimits` says what usable audio is (a plausible
sample rate and duration read from the header *before* decoding, finite samples with a sane
peak, a minimum length, not silent, not a constant DC level). :func:`load_audio` checks the
header and the samples of every file it decodes; :func:`check_signal` adds the minimum length,
silence and DC checks; :func:`scan_audio` streams a whole file through all of them (ingest).
Ingest, the features stage, ``genrelab predict`` and the web demo all use these, so a file is
refused for the same reason, with the same one-line message, wherever it enters.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genrelab.config import ConfigError

__all__ = [
    "AudioDecodeError",
    "AudioRejected",
    "AudioLimits",
    "AudioInfo",
    "AudioProbe",
    "AudioSettings",
    "DEFAULT_LIMITS",
    "read_audio_info",
    "check_header",
    "check_signal",
    "scan_audio",
    "remove_temporaries",
    "atomic_path",
    "atomic_dir",
    "write_json",
    "json_plain",
    "read_json",
    "write_text",
    "write_audio",
    "load_audio",
    "save_npy",
]


class AudioDecodeError(ValueError):
    """Raised when a file cannot be decoded as audio, is empty, or is silent-length."""


class AudioRejected(AudioDecodeError):
    """The file decodes (or has a header) but is not usable audio; ``reason`` is one line without the path.

    Attributes
    ----------
    reason : str
        Why, e.g. ``"silent: peak level -inf dBFS is below the -60 dBFS threshold"``.
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")

    def __reduce__(self):  # crosses process boundaries (compute.map_tracks workers) intact
        return (type(self), (self.path, self.reason))


# ------------------------------------------------------------------------------- audio checks
@dataclass(frozen=True)
class AudioLimits:
    """What counts as usable audio (see the module docstring).

    Attributes
    ----------
    min_sample_rate, max_sample_rate : int
        Plausible sample rates in Hz, read from the header before decoding (a header claiming
        1 Hz would otherwise make a 20 MB file decode and resample to 10^7 seconds).
    sample_rates : tuple of int
        When not empty, the only rates accepted: a dataset with a known format (GTZAN's 22050 Hz)
        catches a corrupted header that still looks plausible.
    min_duration_s, max_duration_s : float
        Shortest and longest accepted audio, in seconds (the longest is checked on the header).
    max_peak : float
        Largest plausible absolute sample value (full scale is 1.0; float files may exceed it a
        little). Beyond this, features overflow to inf/NaN.
    silence_db : float
        Peak level in dBFS below which a file is silent; a file whose every channel varies by
        less than this around a constant is "DC only".
    """

    min_sample_rate: int = 4000
    max_sample_rate: int = 768_000
    sample_rates: tuple[int, ...] = ()
    min_duration_s: float = 1.0
    max_duration_s: float = 3600.0
    max_peak: float = 100.0
    silence_db: float = -60.0

    def __post_init__(self) -> None:
        if not 0 < self.min_sample_rate <= self.max_sample_rate:
            raise ValueError(f"sample-rate limits must satisfy 0 < min <= max, got {self.min_sample_rate}, "
                             f"{self.max_sample_rate}")
        if not 0 <= self.min_duration_s <= self.max_duration_s:
            raise ValueError(f"duration limits must satisfy 0 <= min <= max, got {self.min_duration_s}, "
                             f"{self.max_duration_s}")
        if not self.max_peak > 0:
            raise ValueError(f"max_peak must be positive, got {self.max_peak}")

    @property
    def silence_amplitude(self) -> float:
        return 10.0 ** (self.silence_db / 20.0)


DEFAULT_LIMITS = AudioLimits()
"""The limits used when a caller gives none (any plausible recording of 1 s to 1 h)."""


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says, read without decoding it.

    Attributes
    ----------
    sample_rate : int
        Hz, as the header claims.
    channels : int
    frames : int or None
        Samples per channel; ``None`` when the header does not say.
    format : str
        Container name (``WAV``, ``AU``, ``MP3`` ...).
    """

    sample_rate: int
    channels: int
    frames: int | None
    format: str

    @property
    def duration_s(self) -> float | None:
        return None if self.frames is None or self.sample_rate <= 0 else self.frames / self.sample_rate


@dataclass(frozen=True)
class AudioProbe:
    """What a full decode of one file found (:func:`scan_audio`).

    Attributes
    ----------
    duration_s : float
        Seconds, counted from the decoded samples (a truncated file reports its real length).
    sample_rate : int
        The file's own rate in Hz.
    peak : float
        Largest absolute sample value.
    """

    duration_s: float
    sample_rate: int
    peak: float = 1.0


def _fmt_s(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def _db(amplitude: float) -> str:
    return "-inf" if amplitude <= 0 else f"{20.0 * math.log10(amplitude):.0f}"


def read_audio_info(path: str | os.PathLike) -> AudioInfo:
    """Read a file's header (sample rate, channels, length) without decoding its samples.

    ``soundfile`` reads wav, au, aiff, flac, ogg and mp3 headers; anything else is opened with
    ``audioread`` (which decodes lazily, so nothing is read beyond the header either).

    Raises
    ------
    AudioDecodeError
        If the file is missing, empty, or neither library recognises it.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioDecodeError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioDecodeError(f"{path}: holds no audio (an empty file: 0 bytes)")
    try:
        info = sf.info(str(path))
    except Exception:  # noqa: BLE001 - libsndfile does not know it: try audioread
        info = None
    if info is not None and str(info.format).upper() == "RAW":  # a headerless .au/.snd: any bytes "decode"
        raise AudioDecodeError(f"{path}: cannot decode as audio (no audio header: its bytes would be read as raw "
                               "8 kHz mu-law noise)")
    if info is not None:
        frames = int(info.frames) if info.frames and info.frames > 0 else None
        return AudioInfo(int(info.samplerate), int(info.channels), frames, str(info.format))
    try:
        import audioread

        with audioread.audio_open(str(path)) as f:
            frames = int(round(f.duration * f.samplerate)) if f.duration else None
            return AudioInfo(int(f.samplerate), int(f.channels), frames, type(f).__name__)
    except Exception as exc:  # any failure of any backend means the same to the caller
        raise AudioDecodeError(f"{path}: cannot decode as audio (neither libsndfile nor audioread recognise "
                               "its format)") from exc


def check_header(info: AudioInfo, limits: AudioLimits = DEFAULT_LIMITS, *, path: str | os.PathLike = "",
                 whole: bool = True) -> None:
    """Refuse a header with an implausible sample rate, channel count or duration.

    Parameters
    ----------
    info : AudioInfo
        From :func:`read_audio_info`.
    limits : AudioLimits
    path : path
        Named in the error.
    whole : bool
        The whole file will be decoded, so its length must be within ``limits.max_duration_s``
        (a caller reading a bounded prefix passes False and checks the length it gets).

    Raises
    ------
    AudioRejected
    """
    sr = info.sample_rate
    if limits.sample_rates and sr not in limits.sample_rates:
        expected = ", ".join(str(r) for r in limits.sample_rates)
        raise AudioRejected(path, f"the header says {sr} Hz but this dataset's files are {expected} Hz "
                                  "(a corrupted header?)")
    if not limits.min_sample_rate <= sr <= limits.max_sample_rate:
        raise AudioRejected(path, f"implausible sample rate {sr} Hz in the header (expected "
                                  f"{limits.min_sample_rate}-{limits.max_sample_rate} Hz; a corrupted header?)")
    if not 1 <= info.channels <= 64:
        raise AudioRejected(path, f"implausible channel count {info.channels} in the header")
    duration = info.duration_s
    if whole and duration is not None and duration > limits.max_duration_s:
        raise AudioRejected(path, f"too long: the header says {duration:.1f} s, more than the "
                                  f"{_fmt_s(limits.max_duration_s)} limit")


def _check_level(peak: float, half_range: float, limits: AudioLimits, path: str | os.PathLike) -> None:
    if peak > limits.max_peak:
        raise AudioRejected(path, f"implausible sample peak {peak:.3g} (full scale is 1; more than "
                                  f"{limits.max_peak:g} is broken audio)")
    if peak < limits.silence_amplitude:
        raise AudioRejected(path, f"silent: peak level {_db(peak)} dBFS is below the {limits.silence_db:.0f} "
                                  "dBFS threshold")
    if half_range < limits.silence_amplitude:
        raise AudioRejected(path, f"DC offset only: a constant level of {_db(peak)} dBFS with no signal above "
                                  f"the {limits.silence_db:.0f} dBFS threshold")


def check_signal(y: np.ndarray, sr: int, limits: AudioLimits = DEFAULT_LIMITS, *, path: str | os.PathLike = "",
                 need: str | None = None) -> None:
    """Refuse decoded audio that is not finite, too loud, too short, silent or only a DC level.

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (channels, n)]
        Decoded samples.
    sr : int > 0
        Their sample rate in Hz.
    limits : AudioLimits
    path : path
        Named in the error.
    need : str, optional
        Says why the minimum length is needed (``"the model needs at least one slice of 3 s"``).

    Raises
    ------
    AudioRejected
        With a one-line reason, checked in this order: non-finite samples, implausible peak,
        too short, silent, DC only.
    """
    y = np.atleast_2d(np.asarray(y))
    if y.size and not np.isfinite(y).all():
        raise AudioRejected(path, "holds non-finite samples (NaN or inf)")
    duration = y.shape[-1] / sr if sr > 0 else 0.0
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > limits.max_peak:
        _check_level(peak, peak, limits, path)
    if duration < limits.min_duration_s or y.size == 0:
        raise AudioRejected(path, f"too short: {duration:.2f} s of audio, "
                                  f"{need or f'at least {limits.min_duration_s:g} s is needed'}")
    half_range = float(np.max((y.max(axis=-1) - y.min(axis=-1)) / 2.0))
    _check_level(peak, half_range, limits, path)


def scan_audio(path: str | os.PathLike, limits: AudioLimits = DEFAULT_LIMITS) -> AudioProbe:
    """Validate a whole file: its header, then every sample, streamed block by block.

    The header is checked before anything is decoded (:func:`check_header`); the samples are
    then streamed (constant memory) through the checks of :func:`check_signal`. The duration
    is counted from the decoded samples, so a truncated file reports its real length.

    Parameters
    ----------
    path : str or PathLike
        Audio file.
    limits : AudioLimits

    Returns
    -------
    probe : AudioProbe

    Raises
    ------
    AudioDecodeError
        If the file is missing, empty or undecodable; :class:`AudioRejected` (a subclass) if it
        decodes but is not usable. The message says which.
    """
    import soundfile as sf

    path = Path(path)
    info = read_audio_info(path)
    check_header(info, limits, path=path)
    try:
        f = sf.SoundFile(path)
    except Exception:  # noqa: BLE001 - libsndfile cannot open it: decode it whole with the fallback
        f = None
    if f is None:
        y, sr = load_audio(path, sr=None, mono=False, limits=limits)
        check_signal(y, sr, limits, path=path)
        return AudioProbe(duration_s=y.shape[-1] / sr, sample_rate=sr, peak=float(np.max(np.abs(y))))
    n, peak = 0, 0.0
    lo = np.full(info.channels, np.inf)
    hi = np.full(info.channels, -np.inf)
    with f:
        sr = int(f.samplerate)
        try:
            for block in f.blocks(blocksize=1 << 16, dtype="float32", always_2d=True):
                if not np.isfinite(block).all():
                    raise AudioRejected(path, "holds non-finite samples (NaN or inf)")
                n += len(block)
                if len(block):
                    peak = max(peak, float(np.abs(block).max()))
                    lo = np.minimum(lo, block.min(axis=0))
                    hi = np.maximum(hi, block.max(axis=0))
                if n > limits.max_duration_s * sr:
                    raise AudioRejected(path, f"too long: more than {_fmt_s(limits.max_duration_s)} of audio "
                                              "(the header said less)")
        except AudioDecodeError:
            raise
        except Exception as exc:  # noqa: BLE001 - corrupt stream part-way through
            raise AudioDecodeError(f"{path}: decoding failed after {n} frames ({exc})") from exc
    if n == 0:
        raise AudioDecodeError(f"{path}: holds no audio samples")
    if peak > limits.max_peak:
        _check_level(peak, peak, limits, path)
    duration = n / sr
    if duration < limits.min_duration_s:
        raise AudioRejected(path, f"too short: {duration:.2f} s of audio, at least {limits.min_duration_s:g} s "
                                  "is needed")
    _check_level(peak, float(np.max((hi - lo) / 2.0)), limits, path)
    return AudioProbe(duration_s=duration, sample_rate=sr, peak=peak)


@dataclass(frozen=True)
class AudioSettings:
    """Settings of the ``audio`` section.

    Attributes
    ----------
    sample_rate : int
        Rate in Hz every track is decoded, mixed down and resampled to (4000-192000).
    """

    sample_rate: int = 22050

    def __post_init__(self) -> None:
        if isinstance(self.sample_rate, bool) or not isinstance(self.sample_rate, int) \
                or not 4000 <= self.sample_rate <= 192_000:
            raise ConfigError(f"audio.sample_rate: must be an integer number of Hz in 4000-192000 (e.g. 22050), "
                              f"got {self.sample_rate!r}")
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


_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.[^.]+)?$")
"""Names :func:`atomic_path` and :func:`atomic_dir` give their temporaries (``.<name>.<random>.tmp[.ext]``)."""


def remove_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete what interrupted atomic writes left under ``folder`` (recursively).

    :func:`atomic_path` and :func:`atomic_dir` remove their temporaries on any exception,
    including ``KeyboardInterrupt`` and the ``SystemExit`` that :func:`genrelab.stage.run_stage`
    raises on ``SIGTERM``; only a process killed outright (``SIGKILL``, power loss) leaves them.
    A stage that writes into a persistent output folder calls this first, so a leftover never
    reaches a DVC output hash or a later stage.

    Returns
    -------
    removed : list of Path
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for root, dirs, files in os.walk(folder):
        for name in [d for d in dirs if _TEMPORARY.match(d) or (d.startswith(".") and d.endswith(".old"))]:
            shutil.rmtree(Path(root) / name, ignore_errors=True)
            dirs.remove(name)
            removed.append(Path(root) / name)
        for name in files:
            if _TEMPORARY.match(name):
                with contextlib.suppress(FileNotFoundError):
                    (Path(root) / name).unlink()
                removed.append(Path(root) / name)
    return removed


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def json_plain(o: Any) -> Any:
    """``json.dumps``' ``default``: numpy scalars and arrays as plain numbers and lists, paths as strings.

    Raises
    ------
    TypeError
        For any other type (what ``json`` expects of a ``default``).
    """
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"cannot serialise {type(o).__name__} to JSON")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically.

    numpy scalars and arrays are converted to plain Python numbers and lists.
    """

    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=json_plain) + "\n")


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
    limits: AudioLimits | None = None,
) -> tuple[np.ndarray, int]:
    """Decode any common audio format, mix down and resample.

    wav, flac, ogg, mp3 and GTZAN's ``.au`` are read with ``soundfile``; anything else
    libsndfile cannot read falls back to ``librosa``/``audioread``. The header is checked
    before anything is decoded (:func:`check_header`: plausible sample rate, channel count
    and, when the whole file is read, duration), and the decoded samples must be finite with a
    plausible peak; silence, DC and minimum length are :func:`check_signal`'s job.

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
    limits : AudioLimits, optional
        Plausible sample rates, longest file and largest peak (default :data:`DEFAULT_LIMITS`).

    Returns
    -------
    y : np.ndarray [shape=(n,) if mono else (channels, n)], float32
    sr : int
        The sample rate of ``y``.

    Raises
    ------
    AudioDecodeError
        If the file is missing, cannot be decoded, or holds no samples; :class:`AudioRejected`
        if its header or its samples are implausible.
    """
    import librosa
    import soundfile as sf

    path = Path(path)
    limits = DEFAULT_LIMITS if limits is None else limits
    check_header(read_audio_info(path), limits, path=path, whole=duration is None)
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
    lo, hi = float(y.min()), float(y.max())  # NaN propagates to both, and inf is one of them
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise AudioRejected(path, "holds non-finite samples (NaN or inf)")
    peak = max(-lo, hi)
    if peak > limits.max_peak:
        _check_level(peak, peak, limits, path)
    if mono:
        y = y[0] if y.shape[0] == 1 else y.mean(axis=0)  # the mean of one row costs a pass for nothing
    if sr is not None and native_sr != sr:
        y = librosa.resample(y, orig_sr=native_sr, target_sr=sr, res_type="soxr_hq")
        native_sr = sr
    return np.ascontiguousarray(y, dtype=np.float32), int(native_sr)
