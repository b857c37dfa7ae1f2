"""Predict the genre of any audio file with a trained model bundle.

A recording goes through the same steps as the training data: decoded and resampled to the
bundle's ``audio.sample_rate`` (mono), turned into the bundle's variant (separated in memory
for HPSS or Demucs variants), cut into the bundle's slices, featurised by the bundle's
extractor, and classified slice by slice. The track's genre is the one with the highest
mean slice probability (silent slices left out).

Every run first prints the model card's line (what the model was trained on, its test
accuracy; :mod:`genrelab.models.card`), with a plain warning for a model trained on the
built-in synthetic dataset. Each prediction carries warnings where it may mean little: the
signal's own problems (DC offset, very low level, clipping, noise) and inputs "unlike
anything the model was trained on" (:mod:`genrelab.models.novelty`).

Command line::

    genrelab predict song.mp3 more/songs/ [--model data/model] [--top-k 3]
                     [--slices slices.csv|slices.json] [--json] [--trust]
    genrelab predict song.mp3 --head genre_tzanetakis-msd-musicnn-1 [--models-dir models]

Every file goes through the project's one audio validation (:mod:`genrelab.io`: plausible
header, finite samples, sane peak, long enough, not silent, not DC only). Files that cannot be
used (not audio, unreadable, broken links, silent, shorter than one slice ...) get a one-line
reason and the others go on, whatever happens to one. The exit status is 0 when every file was
classified, 1 when any failed, 2 when the model cannot be used (or a usage error), 3 when the
command itself crashed (with a traceback). File names starting with ``-`` work (as existing
paths, or after ``--``); names with control characters are printed escaped, on one line.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import math
import os
import stat
import sys
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genrelab.config import ConfigError, from_mapping
from genrelab.features import FeatureSet, SliceSettings, make_extractor
from genrelab.io import (
    DEFAULT_LIMITS,
    AudioDecodeError,
    AudioLimits,
    AudioRejected,
    AudioSettings,
    check_signal,
    load_audio,
    write_text,
)
from genrelab.models import Bundle
from genrelab.variants import VariantSettings

__all__ = [
    "AUDIO_EXTENSIONS", "AudioInputError", "FilePrediction", "InputRecipe", "bundle_recipe", "predict_file",
    "predict_paths", "iter_predictions", "collect_audio_files", "SLICE_WRITERS", "card_notes", "predict_command",
    "shown_path", "EXIT_CODES",
]

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".wave", ".au", ".snd", ".mp3", ".ogg", ".oga", ".opus", ".flac",
                                     ".aif", ".aiff", ".aifc")
"""File endings picked up when a folder is walked (files named explicitly are always tried)."""

SILENCE_DB = -60.0
"""Peak level (dBFS) below which a recording, or a slice, counts as silent."""


EXIT_CODES: dict[int, str] = {
    0: "every file classified",
    1: "some files failed (each with a one-line reason)",
    2: "the model cannot be used, or a usage error",
    3: "genrelab predict crashed (a bug: the traceback is printed)",
}
"""Exit status of ``genrelab predict``."""


class AudioInputError(ValueError):
    """A recording cannot be classified; the message is a one-line reason (what and why)."""


def shown_path(text: str | os.PathLike) -> str:
    """A file name safe to print on one line: control characters and undecodable bytes escaped.

    ``"a\\nb.wav"`` (a newline in the name) is shown as ``a\\nb.wav``; printable characters,
    non-ASCII letters included, are kept.
    """
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


# ------------------------------------------------------------------------------------- recipe
@dataclass(frozen=True)
class InputRecipe:
    """How a bundle turns audio into model input (validated from its ``bundle.json``).

    Attributes
    ----------
    sample_rate : int
        Rate in Hz audio is resampled to.
    variant : VariantSettings
    slicing : SliceSettings
    extractor : callable
        The bundle's feature extractor.
    separator : object or None
        In-memory separator of the variant (``None`` for the mix).
    input : {'vector', 'frames'}
        Which features the model reads.
    n_features : int or None
        Length of the feature vector the model was trained on (when recorded).
    """

    sample_rate: int
    variant: VariantSettings
    slicing: SliceSettings
    extractor: Any
    separator: Any
    input: str
    n_features: int | None


def bundle_recipe(bundle: Bundle) -> InputRecipe:
    """Validate that ``bundle`` can classify new audio and build its preprocessing.

    Raises
    ------
    ConfigError
        If the bundle lacks a section, or its variant reads oracle stems (the synthetic
        generator's ground truth, absent from new recordings).
    """
    from genrelab.variants import make_variant_separator

    params = bundle.meta.get("params", {})
    if (params.get("features") or {}).get("name") == "table":
        raise ConfigError(f"{bundle.folder}: this model was trained on precomputed features (a feature table or "
                          "embedding files), which genrelab cannot compute from audio; train on audio features "
                          "(e.g. features=mfcc or musicnn) to classify recordings")
    missing = [k for k in ("features", "variant", "slicing", "audio") if k not in params]
    if missing:
        raise ConfigError(f"{bundle.folder}/bundle.json: params lacks {missing}; re-run the 'train' stage "
                          "with this version of genrelab")
    variant = from_mapping(VariantSettings, params["variant"], section="variant")
    names = bundle.meta.get("feature_names")
    return InputRecipe(
        sample_rate=from_mapping(AudioSettings, params["audio"], section="audio").sample_rate, variant=variant,
        slicing=from_mapping(SliceSettings, params["slicing"], section="slicing"),
        extractor=make_extractor(params["features"], models_dir=params.get("models", {}).get("dir")),
        separator=make_variant_separator(variant, params.get("separation")),
        input=str(bundle.meta.get("input", "vector")), n_features=len(names) if names else None)


# --------------------------------------------------------------------------------- prediction
@dataclass
class FilePrediction:
    """The prediction for one file, or why there is none.

    Attributes
    ----------
    path : str
        The file, as given (or the name shown for an upload).
    labels : list of str
        Genre names, in the model's class order.
    error : str or None
        One-line reason when the file could not be classified; then the arrays are None.
    duration_s : float or None
        Length of the decoded audio in seconds.
    proba : np.ndarray [shape=(n_classes,)] or None
        Track probabilities: mean over the non-silent slices.
    starts_s : np.ndarray [shape=(n_slices,)] or None
        Start of each slice in seconds.
    slice_proba : np.ndarray [shape=(n_slices, n_classes)] or None
        Probabilities of each slice.
    silent : np.ndarray [shape=(n_slices,)], bool, or None
        Slices left out of the track mean because their peak is below the silence threshold.
    slice_length_s : float
    top_k : int
        How many genres :attr:`top` lists.
    seconds : float
        Processing time (decoding included).
    warnings : list of str
        Why the prediction may mean little: the signal's own problems (DC offset, very low
        level, clipping, noise) and, when the bundle has an out-of-distribution detector,
        "unlike anything the model was trained on" (see :mod:`genrelab.models.novelty`).
    novelty : dict or None
        The detector's measurement (``flagged``, ``ratio``, ``fraction``, ``n_slices``).
    """

    path: str
    labels: list[str]
    error: str | None = None
    duration_s: float | None = None
    proba: np.ndarray | None = None
    starts_s: np.ndarray | None = None
    slice_proba: np.ndarray | None = None
    silent: np.ndarray | None = None
    slice_length_s: float = 0.0
    top_k: int = 3
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    novelty: dict | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def top(self) -> list[tuple[str, float]]:
        """The ``top_k`` most probable genres with their probabilities, best first."""
        if self.proba is None:
            return []
        order = np.argsort(-self.proba, kind="stable")[: self.top_k]
        return [(self.labels[i], float(self.proba[i])) for i in order]

    @property
    def genre(self) -> str | None:
        """The predicted genre (``None`` on error)."""
        return self.top[0][0] if self.ok else None

    def to_dict(self, *, slices: bool = False) -> dict[str, Any]:
        """Plain JSON-ready dict (``slices``: add the per-slice timeline)."""
        if not self.ok:
            return {"path": self.path, "ok": False, "error": self.error}
        assert self.proba is not None and self.starts_s is not None and self.slice_proba is not None
        out: dict[str, Any] = {
            "path": self.path, "ok": True, "genre": self.genre,
            "top": [{"genre": g, "probability": round(p, 4)} for g, p in self.top],
            "probabilities": {g: round(float(p), 4) for g, p in zip(self.labels, self.proba)},
            "duration_s": round(float(self.duration_s or 0.0), 3), "n_slices": int(len(self.starts_s)),
            "slice_length_s": self.slice_length_s, "seconds": round(self.seconds, 3),
            "warnings": list(self.warnings), "novelty": self.novelty,
        }
        if slices:
            out["slices"] = [
                {"start_s": round(float(s), 3), "genre": self.labels[int(np.argmax(p))],
                 "silent": bool(q), "probabilities": [round(float(v), 4) for v in p]}
                for s, p, q in zip(self.starts_s, self.slice_proba, self.silent)]
        return out

    def slice_table(self) -> pd.DataFrame:
        """One row per slice: ``path, slice_idx, start_s, end_s, genre, probability, silent`` and
        one probability column per genre (empty on error)."""
        cols = ["path", "slice_idx", "start_s", "end_s", "genre", "probability", "silent", *self.labels]
        if not self.ok:
            return pd.DataFrame(columns=cols)
        assert self.starts_s is not None and self.slice_proba is not None
        best = self.slice_proba.argmax(axis=1)
        table = pd.DataFrame({
            "path": self.path, "slice_idx": np.arange(len(self.starts_s)), "start_s": np.round(self.starts_s, 3),
            "end_s": np.round(self.starts_s + self.slice_length_s, 3), "genre": [self.labels[i] for i in best],
            "probability": np.round(self.slice_proba.max(axis=1), 4), "silent": self.silent})
        probs = pd.DataFrame(np.round(self.slice_proba, 4), columns=self.labels)
        return pd.concat([table, probs], axis=1)[cols]


def _peak_db(y: np.ndarray) -> float:
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def predict_file(bundle: Bundle, path: str | Path, *, top_k: int = 3, max_duration_s: float | None = None,
                 silence_db: float = SILENCE_DB, name: str | None = None,
                 recipe: InputRecipe | None = None) -> FilePrediction:
    """Classify one recording.

    Parameters
    ----------
    bundle : Bundle
        From :func:`genrelab.models.load_bundle`.
    path : str or Path
        Audio file in any format :func:`genrelab.io.load_audio` decodes (wav, au, flac, ogg,
        mp3 ...), at any sample rate, mono or multichannel, of any length of at least one slice.
    top_k : int > 0
        How many genres :attr:`FilePrediction.top` lists (at most the number of genres).
    max_duration_s : float, optional
        Refuse recordings longer than this (only that much more is decoded to find out).
    silence_db : float
        Peak level in dBFS below which the recording (or a slice) is silent.
    name : str, optional
        What to call the file in the result (default: ``path``).
    recipe : InputRecipe, optional
        :func:`bundle_recipe` of ``bundle``, to reuse over many files.

    Returns
    -------
    FilePrediction

    Raises
    ------
    AudioInputError
        If the file is not audio, cannot be read, has an implausible header or peak, is longer
        than ``max_duration_s``, silent, DC only, or shorter than one slice, or its features are
        not finite. The message is one line.
    ConfigError
        If the bundle cannot classify new audio (see :func:`bundle_recipe`).
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    t0 = time.perf_counter()
    recipe = recipe or bundle_recipe(bundle)
    sr, slicing = recipe.sample_rate, recipe.slicing
    shown = str(path) if name is None else name
    limits = AudioLimits(min_duration_s=float(slicing.length_s), silence_db=silence_db,
                         max_duration_s=DEFAULT_LIMITS.max_duration_s if max_duration_s is None
                         else max(float(max_duration_s), float(slicing.length_s)))
    try:
        y, _ = load_audio(path, sr=sr, mono=True, limits=limits,
                          duration=None if max_duration_s is None else float(max_duration_s) + 1.0)
    except AudioDecodeError as exc:
        raise AudioInputError(_decode_reason(Path(path), exc)) from exc
    duration = len(y) / sr
    if max_duration_s is not None and duration > max_duration_s:
        raise AudioInputError(f"too long: more than {_fmt_s(max_duration_s)} of audio (the limit); "
                              "cut it shorter")
    try:  # the project's one audio validation: finite, sane peak, one slice long, not silent, not DC only
        check_signal(y, sr, limits, path=path, need=f"the model needs at least one slice of {slicing.length_s:g} s")
    except AudioRejected as exc:
        raise AudioInputError(exc.reason) from exc
    from genrelab.features import track_features
    from genrelab.features.checks import NonFiniteFeaturesError
    from genrelab.models.novelty import signal_warnings
    from genrelab.variants import variant_audio

    warnings = signal_warnings(y, sr)

    channels = variant_audio(y, sr, recipe.variant, separator=recipe.separator)
    try:
        feats = track_features(channels, sr, extractor=recipe.extractor, slicing=slicing)
    except NonFiniteFeaturesError as exc:
        raise AudioInputError(str(exc)) from exc
    if recipe.n_features is not None and feats.vector.shape[1] != recipe.n_features:
        raise ConfigError(f"{bundle.folder}: the model was trained on {recipe.n_features} features but its "
                          f"recipe gives {feats.vector.shape[1]}; re-run the 'train' stage")
    n = len(feats.starts_s)
    meta = pd.DataFrame({"track_id": shown, "slice_idx": np.arange(n), "start_s": feats.starts_s,
                         "label": np.zeros(n, dtype=np.int64)})
    fs = FeatureSet(X=feats.vector, S=feats.frames, meta=meta,
                    info={"labels": bundle.labels, "feature_names": bundle.meta.get("feature_names")})
    proba = np.asarray(bundle.predict_proba(fs), dtype=np.float64)
    length = int(round(slicing.length_s * sr))
    starts = np.round(feats.starts_s * sr).astype(int)
    silent = np.array([_peak_db(y[s:s + length]) < silence_db for s in starts], dtype=bool)
    keep = ~silent if (~silent).any() else np.ones(n, dtype=bool)
    novelty = None
    if bundle.novelty is not None:
        result = bundle.novelty.assess(feats.vector[keep], None if feats.frames is None else feats.frames[keep])
        novelty = result.to_dict()
        if result.flagged:
            warnings.append(result.message())
    return FilePrediction(
        path=shown, labels=bundle.labels, duration_s=duration, proba=proba[keep].mean(axis=0),
        starts_s=feats.starts_s, slice_proba=proba, silent=silent, slice_length_s=float(slicing.length_s),
        top_k=min(int(top_k), len(bundle.labels)), seconds=time.perf_counter() - t0, warnings=warnings,
        novelty=novelty)


def _fmt_s(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def _decode_reason(path: Path, exc: AudioDecodeError) -> str:
    """One line saying why a file could not be decoded (without repeating its path)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    prefix = f"{path}: "
    text = text[len(prefix):] if text.startswith(prefix) else text
    if text.startswith("cannot decode"):
        exts = ", ".join(e.lstrip(".") for e in AUDIO_EXTENSIONS)
        return f"not a readable audio file ({text}); supported formats: {exts}"
    return text


# ------------------------------------------------------------------------------ many files
def _path_problem(path: Path) -> str | None:
    """Why ``path`` (named or found) cannot be read as a file, or None for a regular file."""
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop (the link points back to itself)"
        if exc.errno == errno.ENOENT and os.path.islink(path):
            return f"broken symbolic link (its target {shown_path(os.readlink(path))} does not exist)"
        if exc.errno == errno.ENOENT:
            return "no such file or folder"
        return f"cannot read it ({exc.strerror or exc})"
    if stat.S_ISDIR(st.st_mode):
        return "is a folder"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file (a FIFO, device or socket): reading it could block"
    return None


def _walk_folder(top: Path) -> list[tuple[Path, str | None]]:
    """Audio files under ``top`` (links followed, each folder once), and what could not be read.

    Hidden files and folders are skipped. Broken or looping links named like audio files, folders
    named like audio files that hold none, and unreadable folders are reported, not dropped.
    """
    found: list[tuple[Path, str | None]] = []
    seen: set[tuple[int, int]] = set()

    def visit(folder: Path) -> None:
        try:
            st = folder.stat()
            if (st.st_dev, st.st_ino) in seen:  # a link back to a folder already searched
                log.info("%s: already searched (a link to it)", shown_path(folder))
                return
            seen.add((st.st_dev, st.st_ino))
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            found.append((folder, f"cannot read this folder ({exc.strerror or exc})"))
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            audio_name = path.suffix.lower() in AUDIO_EXTENSIONS
            try:
                is_dir = entry.is_dir()  # follows links
            except OSError:
                is_dir = False
            if is_dir:
                before = len(found)
                visit(path)
                if audio_name and not any(problem is None for _, problem in found[before:]):
                    found.append((path, "a folder named like an audio file, holding no audio files"))
            elif audio_name:
                found.append((path, _path_problem(path)))

    visit(top)
    return found


def collect_audio_files(paths: Iterable[str | Path]) -> list[tuple[Path, str | None]]:
    """Expand files and folders (recursively, by :data:`AUDIO_EXTENSIONS`) into a file list.

    Returns
    -------
    items : list of (Path, str or None)
        Each file with ``None``, or what cannot be read with the reason: a missing path, a
        broken or looping symbolic link, a FIFO or device, an unreadable folder, a folder
        named like an audio file but holding none, a folder without audio files. Files named
        explicitly are tried whatever their ending; in folders, hidden files are skipped.
    """
    items: list[tuple[Path, str | None]] = []
    for arg in paths:
        p = Path(arg)
        problem = _path_problem(p)
        if problem == "is a folder":
            found = _walk_folder(p)
            if not found:
                items.append((p, f"no audio files in this folder (looked for {', '.join(AUDIO_EXTENSIONS)})"))
            items.extend(found)
        else:
            items.append((p, problem))
    return items


def iter_predictions(bundle: Bundle, paths: Iterable[str | Path], *, top_k: int = 3, progress: bool = True,
                     max_duration_s: float | None = None,
                     silence_db: float = SILENCE_DB) -> Iterator[FilePrediction]:
    """Like :func:`predict_paths`, yielding each file's prediction as soon as it is made."""
    yield from _predict_items(bundle, collect_audio_files(paths), top_k=top_k, progress=progress,
                              max_duration_s=max_duration_s, silence_db=silence_db)


def _predict_items(bundle: Bundle, items: list[tuple[Path, str | None]], *, top_k: int, progress: bool,
                   max_duration_s: float | None, silence_db: float) -> Iterator[FilePrediction]:
    from genrelab.progress import progress_bar

    recipe = bundle_recipe(bundle)
    for path, problem in progress_bar(items, desc="predict", unit="file", disable=not progress):
        if problem is not None:
            yield FilePrediction(path=str(path), labels=bundle.labels, error=problem)
            continue
        try:
            yield predict_file(bundle, path, top_k=top_k, max_duration_s=max_duration_s, silence_db=silence_db,
                               recipe=recipe)
        except AudioInputError as exc:
            log.info("%s: %s", shown_path(path), exc)
            yield FilePrediction(path=str(path), labels=bundle.labels, error=str(exc))
        except ConfigError:  # the model cannot classify anything: stop
            raise
        except MemoryError:
            yield FilePrediction(path=str(path), labels=bundle.labels,
                                 error="failed: out of memory while classifying it (too long? cut it shorter)")
        except Exception as exc:  # one bad file never stops the others
            log.debug("%s failed", path, exc_info=True)
            reason = str(exc).splitlines()[0] if str(exc) else ""
            yield FilePrediction(path=str(path), labels=bundle.labels,
                                 error=f"failed: {type(exc).__name__}: {reason}".rstrip(": "))


def predict_paths(bundle: Bundle, paths: Sequence[str | Path] | str | Path, *, top_k: int = 3,
                  progress: bool = True, max_duration_s: float | None = None,
                  silence_db: float = SILENCE_DB) -> list[FilePrediction]:
    """Classify many files; folders are walked recursively for audio files.

    Parameters
    ----------
    bundle : Bundle
    paths : path or sequence of paths
        Files (tried whatever their ending) and folders.
    top_k : int
    progress : bool
        Show progress (a bar on a terminal, log lines otherwise) over files.
    max_duration_s, silence_db : see :func:`predict_file`

    Returns
    -------
    predictions : list of FilePrediction
        One per file (and per argument that yielded no file); failures have ``error`` set and
        did not stop the others.

    Raises
    ------
    ConfigError
        If the bundle cannot classify new audio (raised before any file is read).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    return list(iter_predictions(bundle, paths, top_k=top_k, progress=progress, max_duration_s=max_duration_s,
                                 silence_db=silence_db))


# ---------------------------------------------------------------------------- slice output
def _write_slices_csv(path: Path, preds: Sequence[FilePrediction]) -> None:
    tables = [p.slice_table() for p in preds if p.ok]
    table = pd.concat(tables, ignore_index=True) if tables else preds[0].slice_table() if preds else pd.DataFrame()
    if len(table):  # undecodable bytes of a file name (surrogates) cannot be written as UTF-8: escape them
        table["path"] = [str(v).encode("utf-8", "backslashreplace").decode("utf-8") for v in table["path"]]
    write_text(path, table.to_csv(index=False))


def _write_slices_json(path: Path, preds: Sequence[FilePrediction]) -> None:
    labels = preds[0].labels if preds else []
    body = {"labels": labels, "files": [p.to_dict(slices=True) for p in preds]}
    write_text(path, json.dumps(body, indent=1) + "\n")


SLICE_WRITERS = {".csv": _write_slices_csv, ".json": _write_slices_json}
"""Per-slice output writers by file ending (``--slices``)."""


# ---------------------------------------------------------------------------- command line
def _line(pred: FilePrediction, width: int) -> str:
    name = shown_path(pred.path)
    if not pred.ok:
        return f"{name:<{width}}  error: {pred.error}"
    tops = "  ".join(f"{g} {p:4.0%}" for g, p in pred.top)
    n_silent = int(pred.silent.sum()) if pred.silent is not None else 0
    silent = f", {n_silent} silent" if n_silent else ""
    n = len(pred.starts_s) if pred.starts_s is not None else 0
    line = f"{name:<{width}}  {tops}   ({pred.duration_s:.1f} s, {n} slice{'s' * (n != 1)}{silent})"
    return line + "".join(f"\n{'':<{width}}  warning: {w}" for w in pred.warnings)


def card_notes(card, bundle: Bundle) -> list[str]:
    """What ``genrelab predict`` prints before the predictions: the card's line and its warnings."""
    lines = [card.line()]
    if card.warning and not card.missing:
        lines.append(f"  note: {card.warning}")
    if bundle.novelty is None:
        why = bundle.meta.get("novelty") or "this bundle was made before genrelab recorded its training inputs"
        if bundle.meta.get("model") == "essentia_head":
            why = "a pretrained head carries no statistics of its training data"
        lines.append(f"  note: no out-of-distribution check ({why}); only the signal checks apply")
    return lines


def _file_arguments(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """Let file names that start with ``-`` through: after ``--``, or where such a path exists.

    A name that is no option of ``parser`` but an existing path (``-song.wav``) is passed as
    ``./-song.wav``, which argparse reads as a positional and which prints as ``-song.wav``.
    """
    head, tail = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    options = {o for action in parser._actions for o in action.option_strings}

    def as_path(arg: str) -> str:
        return os.path.join(".", arg) if arg.startswith("-") else arg

    head = [as_path(a) if a.startswith("-") and len(a) > 1 and a.split("=", 1)[0] not in options
            and os.path.lexists(a) else a for a in head]
    return head + [as_path(a) for a in tail]


def predict_command(argv: list[str]) -> int:
    """``genrelab predict FILES_OR_FOLDERS...``: the genre of each recording."""
    p = argparse.ArgumentParser(
        prog="genrelab predict", description="Predict the genre of audio files with a trained model bundle.",
        epilog="exit status: " + "; ".join(f"{k} {v}" for k, v in EXIT_CODES.items())
               + ". File names starting with '-' work as existing paths or after '--'.")
    p.add_argument("paths", nargs="+", help="audio files, or folders to search recursively for "
                                            f"{', '.join(e.lstrip('.') for e in AUDIO_EXTENSIONS)}")
    p.add_argument("--model", default="data/model", help="model bundle folder (default: %(default)s)")
    p.add_argument("--top-k", type=int, default=3, help="genres to list per file (default: %(default)s)")
    p.add_argument("--slices", metavar="OUT.csv|OUT.json", help="also write per-slice predictions")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    p.add_argument("--trust", action="store_true",
                   help="allow a pickled (scikit-learn) bundle that is not the train stage's own output in the "
                        "repository genrelab runs from; unpickling runs code, so only for bundles you made or trust")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--card", default="data/eval/card.json",
                   help="the evaluate stage's model card, shown when it belongs to the bundle (default: %(default)s)")
    p.add_argument("--head", metavar="NAME",
                   help="instead of a bundle, run an Essentia pretrained genre head (e.g. "
                        "genre_tzanetakis-msd-musicnn-1; see `genrelab models list --kind head`) on its embeddings")
    p.add_argument("--models-dir", default="models",
                   help="folder with the head's and its embedding model's files (default: %(default)s)")
    args = p.parse_intermixed_args(_file_arguments(list(argv), p))
    if args.top_k < 1:
        p.error(f"--top-k must be at least 1, got {args.top_k}")
    writer = None
    if args.slices:
        suffix = Path(args.slices).suffix.lower()
        if suffix not in SLICE_WRITERS:
            p.error(f"--slices {args.slices}: unknown ending {suffix!r}; use one of {', '.join(SLICE_WRITERS)}")
        writer = SLICE_WRITERS[suffix]
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        return _run_predict(args, writer)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception:  # a bug, not a bad file: say so, with the traceback, under its own exit status
        traceback.print_exc()
        print("error: genrelab predict crashed (exit status 3); the traceback above shows where", file=sys.stderr)
        return 3


def _run_predict(args: argparse.Namespace, writer) -> int:
    from genrelab.embeddings import EssentiaWorkerError
    from genrelab.models import UntrustedBundleError, load_bundle
    from genrelab.models.card import load_card
    from genrelab.progress import write_line

    try:
        if args.head:
            from genrelab.models.heads import head_bundle

            bundle = head_bundle(args.head, args.models_dir)
        else:
            bundle = load_bundle(args.model, trust=args.trust)
        card = load_card(bundle, None if args.head else args.card)
        if not args.json:
            print("\n".join(card_notes(card, bundle)), flush=True)
        preds: list[FilePrediction] = []
        items = collect_audio_files(args.paths)
        width = min(48, max((len(shown_path(f)) for f, _ in items), default=10))
        for pred in _predict_items(bundle, items, top_k=args.top_k, progress=not args.no_progress,
                                   max_duration_s=None, silence_db=SILENCE_DB):
            preds.append(pred)
            if not args.json:
                write_line(_line(pred, width))
    except (ConfigError, FileNotFoundError, UntrustedBundleError, EssentiaWorkerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"model": card.to_dict(), "files": [x.to_dict() for x in preds]}, indent=1))
    if writer is not None:
        try:
            writer(Path(args.slices), preds)
        except OSError as exc:
            print(f"error: cannot write --slices {shown_path(args.slices)}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    failed = sum(not x.ok for x in preds)
    print(f"{len(preds) - failed} of {len(preds)} files classified"
          + (f", {failed} failed" if failed else "") + (f"; slices in {args.slices}" if writer else ""),
          file=sys.stderr)
    return 1 if failed else 0
