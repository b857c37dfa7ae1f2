"""Four-stem source separation (drums, bass, vocals, other) with pretrained Demucs models.

:class:`DemucsSeparator` wraps the ``demucs`` package (4.0.1) behind the separator interface
of :func:`genrelab.separation.separate_tracks`: ``separate(y, sr) -> {stem: array}`` at the
caller's sample rate, plus a ``stems`` attribute.

Installing demucs without torchaudio
------------------------------------
``demucs`` and ``openunmix`` declare a ``torchaudio`` dependency, but torchaudio cannot run
with this project's torch build, so both are installed with ``pip install --no-deps`` (see the
README). Only demucs modules that never import torchaudio are used here:
``demucs.apply``, ``demucs.repo``, ``demucs.states``, ``demucs.pretrained`` and the model
classes (``demucs.demucs``, ``demucs.hdemucs``, ``demucs.htdemucs``); ``demucs.audio`` and
``demucs.separate`` (which do) are not. One indirect import remains: the model modules run
``from openunmix.filtering import wiener``, and ``openunmix/__init__.py`` imports
``openunmix.utils``, which imports torchaudio. ``openunmix.filtering`` itself only needs torch,
so when torchaudio is unavailable :func:`_import_demucs` registers a bare ``openunmix`` package
module (right ``__path__``, no ``__init__`` code run) so that the submodule imports cleanly.
Nothing else in openunmix is used.

Weights
-------
A model name (``'htdemucs'``, ``'mdx_extra'`` ...) is a *bag*: a YAML file listing model
signatures; a signature (``'955717e8'``) is one model stored as ``<sig>-<sha256[:8]>.th``
(or ``<sig>.th``). With ``repo=None`` bags come from demucs' bundled ``remote/*.yaml`` and
weight files from the torch hub cache, ``$TORCH_HOME/hub/checkpoints`` (where
``demucs.pretrained.get_model`` downloads them). With ``repo=<folder>`` signatures are looked up
in that folder (as ``demucs.repo.LocalRepo`` does) and bags in the folder first, then among
demucs' bundled ones, so dropping ``955717e8-8726e21a.th`` into a folder is enough for
``htdemucs``. Nothing is downloaded unless ``download=True``; missing files raise
:class:`MissingWeightsError`, which names each file, its URL and the folder to put it in.

Every file whose name carries a checksum is verified (sha256 prefix, as demucs does: this
catches corruption, not forgery). Demucs packages pickle the model class, which
``torch.load``'s default ``weights_only=True`` (torch >= 2.6) rejects; they are loaded with the
demucs model classes and ``fractions.Fraction`` allowlisted, and only a file whose *whole*
sha256 is a known release (:data:`PUBLISHED_SHA256`) may fall back to a full unpickle if it needs
more; any other file that needs more is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import logging
import numbers
import pickle
import random
import sys
import types
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genrelab.separation.hpss import SeparationParameterError, resolve_device

__all__ = [
    "DEMUCS_STEMS",
    "PRECISIONS",
    "PUBLISHED_SHA256",
    "DemucsLoadError",
    "DemucsSeparator",
    "MissingWeightsError",
    "WeightFile",
    "load_demucs_model",
    "required_weight_files",
    "resolve_precision",
    "save_tiny_demucs",
]

logger = logging.getLogger(__name__)

DEMUCS_STEMS: tuple[str, ...] = ("drums", "bass", "vocals", "other")
"""The four stems of the standard Demucs models, in the order used for outputs."""


class MissingWeightsError(FileNotFoundError):
    """Raised when the weight files of a Demucs model are not on disk (and not downloaded).

    Attributes
    ----------
    model : str
        The model name or signature asked for.
    files : list of WeightFile
        What is missing: file name, source URL (when known) and destination folder.
    """

    def __init__(self, model: str, files: Sequence[WeightFile], *, reason: str = "") -> None:
        self.model = model
        self.files = list(files)
        lines = [f"Demucs model {model!r} needs weight file(s) that are not on this machine:"]
        for f in self.files:
            src = f"from {f.url}" if f.url else "(no public URL known: copy it from where the model was trained)"
            lines.append(f"  - {f.filename}  {src}")
            lines.append(f"    expected at {f.path}")
        folders = sorted({str(f.path.parent) for f in self.files})
        lines.append(
            f"Put the file(s) in {', '.join(folders)}, or pass repo=<folder> holding them (demucs' bag "
            "files <name>.yaml are found without copying), or construct with download=True on a machine "
            "with internet. The torch hub cache is $TORCH_HOME/hub/checkpoints (TORCH_HOME defaults to "
            "~/.cache/torch)."
        )
        if reason:
            lines.append(f"Download failed: {reason}")
        super().__init__("\n".join(lines))


class DemucsLoadError(RuntimeError):
    """Raised when a weight file exists but cannot be used (bad checksum, unknown content)."""


@dataclass(frozen=True)
class WeightFile:
    """One weight file of a Demucs model.

    Attributes
    ----------
    signature : str
        Model signature, e.g. ``'955717e8'``.
    filename : str
        File name, e.g. ``'955717e8-8726e21a.th'``.
    path : Path
        Where it is (or is expected).
    url : str or None
        Where demucs downloads it from, when it is a published model.
    checksum : str or None
        Expected sha256 prefix (from the file name), when there is one.
    """

    signature: str
    filename: str
    path: Path
    url: str | None
    checksum: str | None

    @property
    def exists(self) -> bool:
        return self.path.is_file()


# ---------------------------------------------------------------------------------------------
# Importing demucs without torchaudio
# ---------------------------------------------------------------------------------------------


def _install_openunmix_stub() -> None:
    """Make ``openunmix.filtering`` importable without running ``openunmix/__init__.py``."""
    spec = importlib.util.find_spec("openunmix")
    if spec is None or not spec.submodule_search_locations:
        return  # not installed: let the demucs import raise its own ImportError
    for name in [m for m in sys.modules if m == "openunmix" or m.startswith("openunmix.")]:
        del sys.modules[name]  # leftovers of a failed import
    stub = types.ModuleType("openunmix", "openunmix package without its __init__ (genrelab: no torchaudio)")
    stub.__path__ = list(spec.submodule_search_locations)
    stub.__file__ = spec.origin
    stub.__spec__ = spec
    stub.__package__ = "openunmix"
    sys.modules["openunmix"] = stub


def _import_demucs() -> types.SimpleNamespace:
    """Import the torchaudio-free parts of demucs (see the module docstring)."""
    if "openunmix" not in sys.modules:
        if importlib.util.find_spec("torchaudio") is None:
            _install_openunmix_stub()
        else:
            try:
                importlib.import_module("openunmix.filtering")
            except Exception:  # torchaudio present but broken (ABI mismatch ...)
                _install_openunmix_stub()
    try:
        apply = importlib.import_module("demucs.apply")
        pretrained = importlib.import_module("demucs.pretrained")
        repo = importlib.import_module("demucs.repo")
        states = importlib.import_module("demucs.states")
        model_classes = (
            importlib.import_module("demucs.demucs").Demucs,
            importlib.import_module("demucs.hdemucs").HDemucs,
            importlib.import_module("demucs.htdemucs").HTDemucs,
        )
    except ImportError as exc:
        raise ImportError(
            f"Demucs separation needs the demucs package and its torch-only dependencies ({exc}). Install with\n"
            "  pip install -c constraints.txt --no-deps demucs==4.0.1 openunmix==1.3.0\n"
            "  pip install -c constraints.txt dora-search einops julius lameenc"
        ) from exc
    return types.SimpleNamespace(
        apply=apply, pretrained=pretrained, repo=repo, states=states, model_classes=model_classes
    )


# ---------------------------------------------------------------------------------------------
# Resolving and loading weights
# ---------------------------------------------------------------------------------------------


def _hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def _remote_files(dm: types.SimpleNamespace) -> dict[str, str]:
    """Signature -> URL of every published model, from demucs' bundled ``remote/files.txt``."""
    return dm.pretrained._parse_remote_files(dm.pretrained.REMOTE_ROOT / "files.txt")


def _split_name(filename: str) -> tuple[str, str | None]:
    stem = Path(filename).stem
    if "-" in stem:
        sig, checksum = stem.split("-", 1)
        return sig, checksum
    return stem, None


def _scan_repo(repo: Path) -> dict[str, Path]:
    """Signature -> file for the ``*.th`` files of a local folder (demucs.repo.LocalRepo's rule)."""
    found: dict[str, Path] = {}
    for file in sorted(repo.iterdir()):
        if file.suffix == ".th":
            sig, _ = _split_name(file.name)
            if sig in found:
                raise DemucsLoadError(
                    f"{repo} holds two weight files for signature {sig}: {found[sig].name} and {file.name}; "
                    "delete all but one"
                )
            found[sig] = file
    return found


def _bag_files(dm: types.SimpleNamespace, repo: Path | None) -> dict[str, Path]:
    bags = {p.stem: p for p in sorted(Path(dm.pretrained.REMOTE_ROOT).glob("*.yaml"))}
    if repo is not None:
        bags.update({p.stem: p for p in sorted(repo.glob("*.yaml"))})
    return bags


@dataclass(frozen=True)
class _Plan:
    name: str
    files: tuple[WeightFile, ...]
    weights: list[list[float]] | None
    segment: float | None
    is_bag: bool


def _plan(dm: types.SimpleNamespace, name: str, repo: Path | None) -> _Plan:
    import yaml

    remote = _remote_files(dm)
    local = _scan_repo(repo) if repo is not None else {}
    folder = repo if repo is not None else _hub_checkpoints()

    def weight_file(sig: str) -> WeightFile:
        url = remote.get(sig)
        if sig in local:
            path = local[sig]
        else:
            path = folder / (Path(url).name if url else f"{sig}.th")
        return WeightFile(sig, path.name, path, url, _split_name(path.name)[1])

    singles = set(local) | set(remote)  # a published signature missing from repo is reported missing
    if name in singles:
        return _Plan(name, (weight_file(name),), None, None, is_bag=False)
    bags = _bag_files(dm, repo)
    if name not in bags:
        choices = sorted(bags) + sorted(local)
        raise SeparationParameterError(
            f"unknown Demucs model {name!r}{f' in repo {repo}' if repo is not None else ''}; "
            f"valid names: {', '.join(choices)} (or a published model signature such as 955717e8)"
        )
    with open(bags[name], encoding="utf-8") as fh:
        bag = yaml.safe_load(fh)
    sigs = list(bag["models"])
    return _Plan(
        name, tuple(weight_file(s) for s in sigs), bag.get("weights"), bag.get("segment"), is_bag=True
    )


def required_weight_files(model: str = "htdemucs", *, repo: str | Path | None = None) -> list[WeightFile]:
    """List the weight files a Demucs model needs, where they go and where they come from.

    Parameters
    ----------
    model : str
        Bag name (``'htdemucs'``) or model signature.
    repo : str or Path, optional
        Local folder of weights; ``None`` means the torch hub cache.

    Returns
    -------
    list of WeightFile
        ``.exists`` tells whether each is on disk.
    """
    dm = _import_demucs()
    repo_path = _check_repo(repo)
    return list(_plan(dm, model, repo_path).files)


def _check_repo(repo: str | Path | None) -> Path | None:
    if repo is None:
        return None
    repo = Path(repo)
    if not repo.is_dir():
        raise SeparationParameterError(f"repo={str(repo)!r} is not a folder; pass a folder holding <sig>.th files")
    return repo


PUBLISHED_SHA256: dict[str, str] = {
    # htdemucs
    "955717e8-8726e21a.th": "8726e21a993978c7ba086d3872e7608d7d5bfca646ca4aca459ffda844faa8b4",
    # htdemucs_ft (drums, bass, other, vocals)
    "f7e0c4bc-ba3fe64a.th": "ba3fe64ae8ef66ac9a4857222ce48efbdc5eb3ad375cb79dd13debee5aaa4066",
    "d12395a8-e57c48e6.th": "e57c48e6b0e38af4f7118d7bd08c49f0a0c0edf7d09143bdd902ea0d237303e6",
    "92cfc3b6-ef3bcb9c.th": "ef3bcb9c8b40d14ae5d51b6db2587339cc12c6b77c0be151ce6d69002e087bf2",
    "04573f0d-f3cf25b2.th": "f3cf25b222c4eed7cd49dd8b2c9597d50c18bd154090f7b919cfa5f93cf22c49",
    # htdemucs_6s
    "5c90dfd2-34c22ccb.th": "34c22ccb381c6f9fdbf324f04e1e2fe21aaaf293f5ded163a162697ff9a02ddd",
}
"""Full SHA-256 of released Demucs weight files (from dl.fbaipublicfiles.com/demucs/hybrid_transformer/).

demucs itself publishes only the first 8 hex digits (in each file name, ``remote/files.txt``),
a 32-bit match that a crafted file can be brute-forced to meet. These full digests were taken
from several independent public projects that pin the same downloads and agree with each other
and with the 8-digit prefixes. Only a file whose whole digest is listed here may be fully
unpickled (:func:`_load_package`); every other file, including the other published models
(``hdemucs_mmi``, ``mdx*``, ``repro*``), loads weights-only with the demucs model classes
allowlisted, or not at all."""


def _verify(file: WeightFile) -> str:
    """Check the sha256 prefix in the file name (corruption); return the file's full sha256."""
    with open(file.path, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    if file.checksum and digest[: len(file.checksum)] != file.checksum:
        raise DemucsLoadError(
            f"{file.path}: checksum {digest[: len(file.checksum)]} does not match {file.checksum} in its name; the "
            f"file is corrupt or truncated: delete it and fetch it again{f' from {file.url}' if file.url else ''}"
        )
    return digest


def _download(plan: _Plan, missing: list[WeightFile]) -> None:
    for f in missing:
        if f.url is None:
            raise MissingWeightsError(plan.name, missing, reason=f"{f.filename} has no known URL")
        f.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # torch.hub writes to a temporary file and renames it: atomic, hash-checked.
            torch.hub.download_url_to_file(f.url, str(f.path), hash_prefix=f.checksum, progress=True)
        except Exception as exc:  # offline, HTTP error, bad hash
            raise MissingWeightsError(plan.name, missing, reason=f"{type(exc).__name__}: {exc}") from exc


def _load_package(dm: types.SimpleNamespace, file: WeightFile, *, published: bool) -> dict:
    """Unpickle a demucs package, allowing only the demucs model classes and ``Fraction``.

    A file that needs more is fully unpickled only if it is a released demucs file whose whole
    sha256 is in :data:`PUBLISHED_SHA256` (``published``); anything else is refused.
    """
    allowed = [*dm.model_classes, Fraction]
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(file.path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not published:
            raise DemucsLoadError(
                f"{file.path} needs objects beyond the demucs model classes to unpickle ({exc}); its full sha256 "
                "is not one of the released demucs files genrelab knows (PUBLISHED_SHA256), so it is not unpickled "
                "(that could run arbitrary code). Re-save it with demucs.states.serialize_model + "
                "save_with_checksum from an environment you trust"
            ) from exc
        logger.info("%s: full unpickle of a released file (whole sha256 verified)", file.path)
        return torch.load(file.path, map_location="cpu", weights_only=False)


def load_demucs_model(
    model: str = "htdemucs", *, repo: str | Path | None = None, download: bool = False
) -> torch.nn.Module:
    """Load a pretrained Demucs model or bag of models, offline unless asked otherwise.

    Parameters
    ----------
    model : str
        Bag name (``'htdemucs'``, ``'htdemucs_ft'``, ``'mdx_extra'`` ...) or a model signature.
    repo : str or Path, optional
        Folder of ``<sig>[-<checksum>].th`` files (and optionally ``<name>.yaml`` bags);
        ``None`` uses the torch hub cache.
    download : bool
        Fetch missing published files into the cache (or ``repo``) from demucs' server.

    Returns
    -------
    torch.nn.Module
        A ``demucs.apply.BagOfModels`` for a bag, else the single model; in eval mode, on CPU.

    Raises
    ------
    MissingWeightsError
        If files are missing and ``download`` is False or fails.
    DemucsLoadError
        If a file is corrupt or cannot be unpickled safely.
    SeparationParameterError
        If the name is unknown (the message lists the valid names) or ``repo`` is not a folder.
    """
    dm = _import_demucs()
    repo_path = _check_repo(repo)
    plan = _plan(dm, model, repo_path)
    missing = [f for f in plan.files if not f.exists]
    if missing:
        if not download:
            raise MissingWeightsError(model, missing)
        _download(plan, missing)
    models = []
    for f in plan.files:
        digest = _verify(f)
        published = PUBLISHED_SHA256.get(f.filename) == digest
        package = _load_package(dm, f, published=published)
        if package.get("state", {}).get("__quantized") and importlib.util.find_spec("diffq") is None:
            # demucs would call sys.exit() here (dora.log.fatal); fail with an exception instead.
            raise DemucsLoadError(f"{f.path} is a quantised model (*_q): it needs `pip install diffq`")
        models.append(dm.states.load_model(package))
    if plan.is_bag:
        net = dm.apply.BagOfModels(models, plan.weights, plan.segment)
    else:
        net = models[0]
    return net.eval()


# ---------------------------------------------------------------------------------------------
# Separator
# ---------------------------------------------------------------------------------------------


PRECISIONS: tuple[str, ...] = ("auto", "fp32", "fp16", "bf16")
"""Values of ``precision``: ``fp32`` is exact (no TF32 either); ``fp16``/``bf16`` run the network
under autocast with the STFT and iSTFT kept in float32; ``auto`` is ``fp16`` on CUDA, ``fp32`` on
the CPU."""

MAX_AUTO_BATCH = 128
"""Largest batch ``batch_size='auto'`` picks (past 64 clips the H200 gained little)."""

AUTO_BATCH_MEMORY_SHARE = 0.7
"""Share of the free GPU memory ``batch_size='auto'`` plans to use (the rest: allocator slack,
output buffers, resampling)."""


def resolve_precision(precision: str, device: str | torch.device) -> str:
    """The precision a separator really uses: ``'auto'`` becomes ``'fp16'`` on CUDA, else ``'fp32'``.

    It changes the stems (fp16 within about 2e-3 relative L2 of fp32), so it belongs in the
    key of stored stems, resolved: ``'auto'`` alone does not say what was computed.

    Parameters
    ----------
    precision : {'auto', 'fp32', 'fp16', 'bf16'}
    device : str or torch.device
        Where the model runs (``'auto'`` is resolved as :func:`genrelab.devices.resolve_device` does).

    Returns
    -------
    str
        ``'fp32'``, ``'fp16'`` or ``'bf16'``.
    """
    if precision not in PRECISIONS:
        raise SeparationParameterError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    return "fp16" if resolve_device(device).type == "cuda" else "fp32"


def _autocast_dtype(precision: str) -> torch.dtype | None:
    return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)


@contextlib.contextmanager
def _fp32_matmul(tf32: bool) -> Iterator[None]:
    """TF32 for float32 matmuls and convolutions on (``tf32``) or off (exact fp32); restored after.

    Uses torch's ``fp32_precision`` switches where they exist (torch >= 2.9; mixing them with the
    legacy ``allow_tf32`` flags is an error there), else the legacy flags.
    """
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn
    value = "tf32" if tf32 else "ieee"
    if hasattr(matmul, "fp32_precision") and hasattr(getattr(conv, "conv", None), "fp32_precision"):
        old = (matmul.fp32_precision, conv.conv.fp32_precision)
        matmul.fp32_precision, conv.conv.fp32_precision = value, value
        try:
            yield
        finally:
            matmul.fp32_precision, conv.conv.fp32_precision = old
    else:  # pragma: no cover - torch < 2.9
        old = (matmul.allow_tf32, conv.allow_tf32)
        matmul.allow_tf32, conv.allow_tf32 = tf32, tf32
        try:
            yield
        finally:
            matmul.allow_tf32, conv.allow_tf32 = old


def _spectral_in_fp32(model: torch.nn.Module) -> None:
    """Make every hybrid (H/HT)Demucs inside ``model`` take its STFT, mask and iSTFT in float32.

    Under autocast the network runs in half precision; these three steps then get float32
    inputs with autocast off, because cuFFT has no bfloat16 (``cuFFT doesn't support tensor of
    type: BFloat16``) and half-precision spectra cost accuracy. Only this instance is changed
    (instance attributes shadow the methods); doing it twice is harmless.
    """
    for sub in getattr(model, "models", [model]):
        if getattr(sub, "_genrelab_fp32_spectral", False) or not all(
                hasattr(sub, m) for m in ("_spec", "_ispec", "_mask")):
            continue
        spec, ispec, mask = sub._spec, sub._ispec, sub._mask

        def spec32(x, *args, _f=spec, **kwargs):
            with torch.autocast(x.device.type, enabled=False):
                return _f(x.float(), *args, **kwargs)

        def ispec32(z, *args, _f=ispec, **kwargs):
            with torch.autocast(z.device.type, enabled=False):
                return _f(z.to(torch.complex64) if z.is_complex() else z.float(), *args, **kwargs)

        def mask32(z, m, *args, _f=mask, **kwargs):
            with torch.autocast(m.device.type, enabled=False):
                return _f(z.to(torch.complex64) if z.is_complex() else z.float(), m.float(), *args, **kwargs)

        sub._spec, sub._ispec, sub._mask = spec32, ispec32, mask32
        sub._genrelab_fp32_spectral = True


def plan_batch_size(free_bytes: int, peak_1: int, peak_2: int, *, share: float = AUTO_BATCH_MEMORY_SHARE,
                    limit: int = MAX_AUTO_BATCH) -> int:
    """Clips per forward pass that fit in ``share`` of the free GPU memory.

    Parameters
    ----------
    free_bytes : int
        Free device memory before the work (``torch.cuda.mem_get_info``).
    peak_1, peak_2 : int
        Peak memory (bytes above the model's own) of one segment at batch 1 and batch 2.

    Returns
    -------
    int in [1, limit]
        ``(share * free - fixed) // per_clip``, with ``per_clip = peak_2 - peak_1`` and
        ``fixed = peak_1 - per_clip`` (cuDNN workspaces and the like).
    """
    per_clip = max(int(peak_2) - int(peak_1), 1)
    fixed = max(int(peak_1) - per_clip, 0)
    n = (share * int(free_bytes) - fixed) // per_clip
    return int(min(max(n, 1), limit))


@contextlib.contextmanager
def _seeded_python_random(seed: int) -> Iterator[None]:
    """Seed Python's ``random`` (which ``demucs.apply`` uses for shifts) and restore it after."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


class DemucsSeparator:
    """Separate music into drums, bass, vocals and other with a pretrained Demucs model.

    The model is loaded at construction, so missing weights fail before any work starts.

    Parameters
    ----------
    model : str
        Bag name (``'htdemucs'``, 4 stems, 44.1 kHz) or model signature; see
        :func:`load_demucs_model`.
    repo : Path, optional
        Local folder of weights; ``None`` uses the torch hub cache.
    segment : float, optional
        Seconds per chunk given to the network; ``None`` keeps the model's (7.8 s for
        htdemucs, which cannot go higher). Smaller uses less memory.
    shifts : int >= 0
        Random time shifts averaged (the "shift trick"); 0 is deterministic and fastest.
    overlap : float in [0, 1)
        Overlap between chunks.
    device : {'auto', 'cpu', 'cuda', 'cuda:N'}
        ``'auto'`` uses CUDA when ``torch.cuda.is_available()``.
    batch_size : int > 0 or 'auto'
        Clips of equal length separated per forward pass in :meth:`separate_batch` and
        :meth:`separate_stream`. ``'auto'``: 1 on the CPU (batching gains nothing there); on
        CUDA, what fits in 70% of the free memory (measured with a probe of one segment at
        batch 1 and 2 at construction; at most 128). It never changes the stems.
    precision : {'auto', 'fp32', 'fp16', 'bf16'}
        ``'fp32'``: exact float32 (TF32 off). ``'fp16'``/``'bf16'``: the network under
        autocast in that type, STFT/iSTFT in float32, TF32 for what stays float32 and cuDNN
        autotuning (``cudnn.benchmark``); stems within 1e-2 relative L2 of fp32 (1.6e-3 for
        fp16 measured on an H200). ``'auto'``: fp16 on CUDA, fp32 on the CPU. Part of the
        result: see :func:`resolve_precision`.
    progress : bool
        Show demucs' per-chunk progress bar.
    download : bool
        Download missing published weights (default: offline, raise :class:`MissingWeightsError`).
    seed : int
        Seed of the shifts (used only when ``shifts > 0``; Python's global ``random`` state is
        restored afterwards).

    Attributes
    ----------
    stems : tuple of str
        Output stems, ``('drums', 'bass', 'vocals', 'other')`` for the standard models.
    samplerate : int
        The model's sample rate (44100 Hz); inputs are resampled to it and back.
    audio_channels : int
        Channels the model expects (2).

    Examples
    --------
    >>> sep = DemucsSeparator("htdemucs", device="auto")            # doctest: +SKIP
    >>> stems = sep.separate(y, sr=22050)  # y: (n,) or (2, n)      # doctest: +SKIP
    >>> stems["drums"].shape == y.shape                               # doctest: +SKIP
    True
    """

    VERSION: int = 1
    """Bump when the output changes: the store recomputes this separator's stems."""

    def __init__(
        self,
        model: str = "htdemucs",
        *,
        repo: Path | str | None = None,
        segment: float | None = None,
        shifts: int = 0,
        overlap: float = 0.25,
        device: str | torch.device = "auto",
        batch_size: int | str = "auto",
        progress: bool = True,
        download: bool = False,
        seed: int = 0,
        precision: str = "auto",
    ) -> None:
        if isinstance(shifts, bool) or not isinstance(shifts, numbers.Integral) or shifts < 0:
            raise SeparationParameterError(f"shifts must be an integer >= 0, got {shifts!r}")
        if not isinstance(overlap, numbers.Real) or not 0 <= overlap < 1:
            raise SeparationParameterError(f"overlap must be in [0, 1), got {overlap!r}")
        if batch_size != "auto" and (isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral)
                                     or batch_size < 1):
            raise SeparationParameterError(f"batch_size must be a positive integer or 'auto', got {batch_size!r}")
        if segment is not None and (not isinstance(segment, numbers.Real) or segment <= 0):
            raise SeparationParameterError(f"segment must be None or a positive number of seconds, got {segment!r}")
        self.model_name = model
        self.repo = None if repo is None else Path(repo)
        self.shifts = int(shifts)
        self.overlap = float(overlap)
        self.batch_size = 1 if batch_size == "auto" else int(batch_size)  # 'auto' is settled below
        self.progress = bool(progress)
        self.seed = int(seed)
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self._dm = _import_demucs()
        self.model = load_demucs_model(model, repo=self.repo, download=download).to(self.device)
        max_segment = self._max_segment()
        if segment is not None and segment > max_segment:
            raise SeparationParameterError(
                f"segment={segment} s is longer than model {model!r} allows ({float(max_segment):.2f} s); "
                "use a smaller value or None"
            )
        self.segment = None if segment is None else float(segment)
        self.samplerate = int(self.model.samplerate)
        self.audio_channels = int(self.model.audio_channels)
        sources = list(self.model.sources)
        # Standard stems first in DEMUCS_STEMS order, then any extra ones (guitar, piano ...).
        self.stems: tuple[str, ...] = tuple(
            [s for s in DEMUCS_STEMS if s in sources] + [s for s in sources if s not in DEMUCS_STEMS]
        )
        if self.precision != "fp32":
            _spectral_in_fp32(self.model)
        if batch_size == "auto" and self.device.type == "cuda":
            self.batch_size = self._auto_batch_size()

    def __repr__(self) -> str:
        return (
            f"DemucsSeparator(model={self.model_name!r}, repo={self.repo!r}, segment={self.segment}, "
            f"shifts={self.shifts}, overlap={self.overlap}, precision={self.precision!r}, device='{self.device}', "
            f"batch_size={self.batch_size})"
        )

    def _max_segment(self) -> float:
        htdemucs = self._dm.model_classes[2]
        if isinstance(self.model, self._dm.apply.BagOfModels):
            return float(self.model.max_allowed_segment)
        if isinstance(self.model, htdemucs):
            return float(self.model.segment)
        return float("inf")

    # -- input/output conversion ------------------------------------------------------------

    def _check_input(self, y: Any, sr: Any, *, name: str = "y") -> np.ndarray:
        if isinstance(sr, bool) or not isinstance(sr, numbers.Integral) or sr <= 0:
            raise SeparationParameterError(f"sr must be a positive integer sample rate in Hz, got {sr!r}")
        arr = np.asarray(y)
        if arr.ndim == 1:
            arr = arr[None]
        if arr.ndim != 2 or arr.shape[0] not in (1, self.audio_channels):
            raise SeparationParameterError(
                f"{name} must have shape (n,) or (channels, n) with 1 or {self.audio_channels} channels, "
                f"got {np.shape(y)}; mix other layouts down first"
            )
        if arr.shape[1] == 0:
            raise SeparationParameterError(f"{name} is empty")
        if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            raise SeparationParameterError(f"{name} must hold real numbers, got dtype {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            raise SeparationParameterError(f"{name} holds NaN or infinite samples")
        return np.ascontiguousarray(arr, dtype=np.float32)

    def _to_model(self, arr: np.ndarray, sr: int) -> torch.Tensor:
        import julius

        x = torch.from_numpy(arr).to(self.device)
        if sr != self.samplerate:
            x = julius.resample_frac(x, sr, self.samplerate)
        if x.shape[0] == 1:
            x = x.expand(self.audio_channels, -1)
        return x

    def _from_model(self, out: torch.Tensor, sr: int, n: int, in_channels: int) -> dict[str, np.ndarray]:
        import julius

        # out: (sources, channels, n_model)
        if in_channels == 1:
            out = out.mean(dim=1, keepdim=True)
        if sr != self.samplerate:
            out = julius.resample_frac(out, self.samplerate, sr, output_length=n)
        out = out[..., :n].float().cpu().numpy()
        index = {s: i for i, s in enumerate(self.model.sources)}
        return {s: np.ascontiguousarray(out[index[s]]) for s in self.stems}

    @contextlib.contextmanager
    def _numerics(self) -> Iterator[None]:
        """Autocast, TF32 and cuDNN autotuning for :attr:`precision` (all restored after)."""
        dtype = _autocast_dtype(self.precision)
        fast = dtype is not None
        with contextlib.ExitStack() as stack:
            stack.enter_context(_fp32_matmul(tf32=fast))
            if self.device.type == "cuda":
                old_benchmark = torch.backends.cudnn.benchmark
                torch.backends.cudnn.benchmark = fast
                stack.callback(setattr, torch.backends.cudnn, "benchmark", old_benchmark)
            if fast:
                stack.enter_context(torch.autocast(self.device.type, dtype=dtype))
            yield

    def _run(self, mix: torch.Tensor) -> torch.Tensor:
        """Normalise each clip as demucs does, apply the model, undo; mix (batch, ch, n), float32 out."""
        ref = mix.mean(dim=1)  # (batch, n)
        mean = ref.mean(dim=-1)[:, None, None]
        std = ref.std(dim=-1)[:, None, None] if ref.shape[-1] > 1 else torch.zeros_like(mean)
        normed = (mix - mean) / (std + 1e-8)
        seed_ctx = _seeded_python_random(self.seed) if self.shifts else contextlib.nullcontext()
        with torch.inference_mode(), seed_ctx, self._numerics():
            est = self._dm.apply.apply_model(
                self.model, normed, shifts=self.shifts, split=True, overlap=self.overlap,
                progress=self.progress, device=self.device, segment=self.segment,
            )  # (batch, sources, channels, n)
        return est.float() * (std[:, None] + 1e-8) + mean[:, None]

    def _segment_samples(self) -> int:
        seconds = self.segment if self.segment is not None else self._max_segment()
        if not np.isfinite(seconds):  # models without a training segment: demucs' own default
            seconds = 10.0
        return int(float(seconds) * self.samplerate)

    def _auto_batch_size(self) -> int:  # pragma: no cover - needs CUDA
        """Batch size from free GPU memory: peak memory of one segment at batch 1 and 2."""
        torch.cuda.synchronize(self.device)
        torch.cuda.empty_cache()
        free, _ = torch.cuda.mem_get_info(self.device)
        peaks = []
        for batch in (1, 2):
            base = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            probe = torch.zeros(batch, self.audio_channels, self._segment_samples(), device=self.device)
            probe[..., ::7] = 0.1  # not silent: std > 0
            self._run(probe)
            torch.cuda.synchronize(self.device)
            peaks.append(torch.cuda.max_memory_allocated(self.device) - base)
            del probe
        torch.cuda.empty_cache()
        size = plan_batch_size(free, peaks[0], peaks[1])
        logger.info("Demucs on %s (%s): batch_size=%d (%.1f GiB free, %.2f GiB per clip)", self.device,
                    self.precision, size, free / 2**30, max(peaks[1] - peaks[0], 0) / 2**30)
        return size

    # -- public API -------------------------------------------------------------------------

    def separate(self, y: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        """Separate one clip into stems at its own sample rate.

        Parameters
        ----------
        y : np.ndarray [shape=(n,) or (channels, n)]
            Audio with 1 or ``audio_channels`` channels, finite. Mono input is duplicated to
            stereo for the model and the stems are averaged back to mono.
        sr : int > 0
            Sample rate of ``y`` in Hz (resampled to the model's 44100 Hz and back with
            ``julius``).

        Returns
        -------
        dict of str to np.ndarray [same shape as y], float32
            One entry per name in :attr:`stems`.

        Raises
        ------
        SeparationParameterError
            On bad shapes, empty or non-finite audio, or a bad ``sr``.
        """
        return self.separate_batch([y], sr)[0]

    def separate_batch(self, ys: Sequence[np.ndarray], sr: int) -> list[dict[str, np.ndarray]]:
        """Separate several clips; equal-shape clips go through the model ``batch_size`` at a time.

        Clips of different lengths are never padded together (padding would change the
        result of the last chunk), so each result is that of :meth:`separate` up to float
        rounding.

        Parameters
        ----------
        ys : sequence of np.ndarray [shape=(n_i,) or (channels, n_i)]
        sr : int > 0
            Sample rate of every clip, in Hz.

        Returns
        -------
        list of dict of str to np.ndarray
            In the order of ``ys``.
        """
        clips = [self._check_input(y, sr, name=f"ys[{i}]") for i, y in enumerate(ys)]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, c in enumerate(clips):
            groups.setdefault(c.shape, []).append(i)
        results: list[dict[str, np.ndarray] | None] = [None] * len(clips)
        for (channels, n), idx in groups.items():
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start : start + self.batch_size]
                mix = torch.stack([self._to_model(clips[i], sr) for i in chunk])
                est = self._run(mix)
                for row, i in enumerate(chunk):
                    stems = self._from_model(est[row], sr, n, channels)
                    if np.ndim(ys[i]) == 1:
                        stems = {k: v[0] for k, v in stems.items()}
                    results[i] = stems
        return results  # type: ignore[return-value]

    def separate_stream(
        self, items: Iterable[Any], load: Callable[[Any], np.ndarray], sr: int, *, decode_threads: int = 2,
    ) -> Iterator[tuple[int, dict[str, np.ndarray] | Exception]]:
        """Decode clips ahead in threads while the model separates earlier ones, in batches.

        While a batch is on the model (the GPU, or the CPU's torch threads), ``decode_threads``
        threads decode the next ``2 * batch_size`` clips, so that the device does not wait for
        decoding. Consecutive clips of equal shape are separated ``batch_size`` at a time.

        Parameters
        ----------
        items : iterable
            What ``load`` takes (paths, track rows ...).
        load : callable
            ``load(item) -> np.ndarray [shape=(n,) or (channels, n)]`` at ``sr`` (e.g. a
            ``functools.partial`` of :func:`genrelab.io.load_audio` that drops the rate). Runs in
            worker threads: it must be thread-safe (decoding with soundfile/librosa is).
        sr : int > 0
            Sample rate of what ``load`` returns, in Hz.
        decode_threads : int > 0

        Yields
        ------
        (int, dict or Exception)
            The item's position and its stems (as :meth:`separate` returns them), or the
            exception that decoding or separating it raised (a batch that fails is retried clip
            by clip, so one bad clip fails alone). A failed decode is yielded at once; stems
            come out in input order otherwise.
        """
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        if isinstance(decode_threads, bool) or not isinstance(decode_threads, numbers.Integral) or decode_threads < 1:
            raise SeparationParameterError(f"decode_threads must be a positive integer, got {decode_threads!r}")
        ahead = max(2 * self.batch_size, int(decode_threads))
        source = iter(enumerate(items))
        pool = ThreadPoolExecutor(int(decode_threads), thread_name_prefix="demucs-decode")
        queued: deque = deque()

        def refill() -> None:
            while len(queued) < ahead:
                try:
                    index, item = next(source)
                except StopIteration:
                    return
                queued.append((index, pool.submit(load, item)))

        def flush(batch: list[tuple[int, np.ndarray]]) -> Iterator[tuple[int, Any]]:
            try:
                outs: list[Any] = self.separate_batch([y for _, y in batch], sr)
            except Exception as exc:  # noqa: BLE001 - find the bad clip one by one
                if len(batch) == 1:
                    outs = [exc]
                else:
                    logger.warning("a batch of %d clips failed (%s); separating them one by one", len(batch), exc)
                    outs = []
                    for _, y in batch:
                        try:
                            outs.append(self.separate(y, sr))
                        except Exception as exc_one:  # noqa: BLE001 - a bad clip's error is its result
                            outs.append(exc_one)
            for (index, _), out in zip(batch, outs):
                yield index, out

        try:
            refill()
            batch: list[tuple[int, np.ndarray]] = []
            while queued:
                index, future = queued.popleft()
                refill()
                try:
                    y = future.result()
                    shape = np.shape(y)
                except Exception as exc:  # noqa: BLE001 - a file that does not decode is its result
                    yield index, exc
                    continue
                if batch and np.shape(batch[0][1]) != shape:
                    yield from flush(batch)
                    batch = []
                batch.append((index, y))
                if len(batch) >= self.batch_size:
                    yield from flush(batch)
                    batch = []
            if batch:
                yield from flush(batch)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def save_tiny_demucs(
    folder: str | Path,
    *,
    signature: str = "0123abcd",
    bag: str | None = "tinybag",
    seed: int = 0,
    segment: float = 1.0,
) -> Path:
    """Save a tiny, randomly initialised HTDemucs in demucs' own format, for tests and benchmarks.

    Uses ``demucs.states.serialize_model`` and ``save_with_checksum`` (what demucs' training
    writes), so loading it goes through exactly the code used for published weights. The
    stems are meaningless: the weights are random.

    Parameters
    ----------
    folder : str or Path
        Where to write ``<signature>-<sha256[:8]>.th`` (created).
    signature : str
        Model signature (8 hex digits by demucs' convention, no ``'-'``).
    bag : str or None
        Also write a bag file ``<bag>.yaml`` listing the model.
    seed : int
        Seed of the weight initialisation (a local ``torch.Generator`` state, restored after).
    segment : float > 0
        Training segment in seconds (the model's longest chunk).

    Returns
    -------
    Path
        The weight file.
    """
    from omegaconf import OmegaConf

    if "-" in signature or not signature:
        raise SeparationParameterError(f"signature must be non-empty without '-', got {signature!r}")
    dm = _import_demucs()
    htdemucs = dm.model_classes[2]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = htdemucs(
            sources=["drums", "bass", "other", "vocals"], channels=4, depth=4, nfft=2048, t_layers=1,
            t_heads=1, t_hidden_scale=1.0, dconv_comp=2, dconv_depth=1, segment=segment,
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    package = dm.states.serialize_model(model, OmegaConf.create({}), half=False)
    dm.states.save_with_checksum(package, folder / f"{signature}.th")
    if bag is not None:
        (folder / f"{bag}.yaml").write_text(f"models: ['{signature}']\nsegment: {segment}\n", encoding="utf-8")
    return next(folder.glob(f"{signature}-*.th"))
