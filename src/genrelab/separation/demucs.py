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

Every file whose name carries a checksum is verified (sha256 prefix, as demucs does). Demucs
packages pickle the model class, which ``torch.load``'s default ``weights_only=True``
(torch >= 2.6) rejects; they are loaded with the demucs model classes and ``fractions.Fraction``
allowlisted, and only a checksum-verified file falls back to a full unpickle if it needs more.
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genrelab.separation.hpss import SeparationParameterError, resolve_device

__all__ = [
    "DEMUCS_STEMS",
    "DemucsLoadError",
    "DemucsSeparator",
    "MissingWeightsError",
    "WeightFile",
    "load_demucs_model",
    "required_weight_files",
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


def _verify(file: WeightFile) -> bool:
    """Check the sha256 prefix in the file name; return whether a checksum was verified."""
    if not file.checksum:
        return False
    sha = hashlib.sha256()
    with open(file.path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
    actual = sha.hexdigest()[: len(file.checksum)]
    if actual != file.checksum:
        raise DemucsLoadError(
            f"{file.path}: checksum {actual} does not match {file.checksum} in its name; the file is corrupt "
            f"or truncated: delete it and fetch it again{f' from {file.url}' if file.url else ''}"
        )
    return True


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

    A file that needs more is fully unpickled only if it is a published demucs file whose
    checksum matched (``published``); anything else is refused.
    """
    allowed = [*dm.model_classes, Fraction]
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(file.path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not published:
            raise DemucsLoadError(
                f"{file.path} needs objects beyond the demucs model classes to unpickle ({exc}); it is not a "
                "checksum-verified published demucs file, so it is not unpickled blindly. Re-save it with "
                "demucs.states.serialize_model + save_with_checksum from an environment you trust"
            ) from exc
        logger.info("%s: full unpickle of a checksum-verified published file", file.path)
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
        verified = _verify(f)
        published = verified and f.url is not None and Path(f.url).name == f.filename
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
    batch_size : int > 0
        Clips of equal length separated per forward pass in :meth:`separate_batch`.
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

    def __init__(
        self,
        model: str = "htdemucs",
        *,
        repo: Path | str | None = None,
        segment: float | None = None,
        shifts: int = 0,
        overlap: float = 0.25,
        device: str | torch.device = "auto",
        batch_size: int = 1,
        progress: bool = True,
        download: bool = False,
        seed: int = 0,
    ) -> None:
        if isinstance(shifts, bool) or not isinstance(shifts, numbers.Integral) or shifts < 0:
            raise SeparationParameterError(f"shifts must be an integer >= 0, got {shifts!r}")
        if not isinstance(overlap, numbers.Real) or not 0 <= overlap < 1:
            raise SeparationParameterError(f"overlap must be in [0, 1), got {overlap!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise SeparationParameterError(f"batch_size must be a positive integer, got {batch_size!r}")
        if segment is not None and (not isinstance(segment, numbers.Real) or segment <= 0):
            raise SeparationParameterError(f"segment must be None or a positive number of seconds, got {segment!r}")
        self.model_name = model
        self.repo = None if repo is None else Path(repo)
        self.shifts = int(shifts)
        self.overlap = float(overlap)
        self.batch_size = int(batch_size)
        self.progress = bool(progress)
        self.seed = int(seed)
        self.device = resolve_device(device)
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

    def __repr__(self) -> str:
        return (
            f"DemucsSeparator(model={self.model_name!r}, repo={self.repo!r}, segment={self.segment}, "
            f"shifts={self.shifts}, overlap={self.overlap}, device='{self.device}', batch_size={self.batch_size})"
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

    def _run(self, mix: torch.Tensor) -> torch.Tensor:
        """Normalise each clip as demucs does, apply the model, undo; mix (batch, ch, n)."""
        ref = mix.mean(dim=1)  # (batch, n)
        mean = ref.mean(dim=-1)[:, None, None]
        std = ref.std(dim=-1)[:, None, None] if ref.shape[-1] > 1 else torch.zeros_like(mean)
        normed = (mix - mean) / (std + 1e-8)
        seed_ctx = _seeded_python_random(self.seed) if self.shifts else contextlib.nullcontext()
        with torch.inference_mode(), seed_ctx:
            est = self._dm.apply.apply_model(
                self.model, normed, shifts=self.shifts, split=True, overlap=self.overlap,
                progress=self.progress, device=self.device, segment=self.segment,
            )  # (batch, sources, channels, n)
        return est * (std[:, None] + 1e-8) + mean[:, None]

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
