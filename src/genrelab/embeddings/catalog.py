"""A registry of Essentia's pretrained TensorFlow models, and a local store for their files.

Every model the project knows is one :class:`EssentiaModelSpec` in :data:`MODELS`: where Essentia
publishes it (``https://essentia.upf.edu/models/...``), which Essentia algorithm runs it,
the sample rate and patching it expects, and the graph's input and output node names.
The files live flat in one folder (``models_dir``), under the published file names
(``msd-musicnn-1.pb`` plus its metadata ``msd-musicnn-1.json``).

Checksums
---------
Essentia publishes no checksums for its models, so ``sha1`` is ``None`` for every
published entry: nothing is verified against a known value on the first download. What
:func:`fetch` does instead is *trust on first use*: it computes the SHA-1 of each file it
downloads and records it in ``<models_dir>/checksums.json``; later fetches (and
:func:`verify`) check the file against that record, so a file that changes on disk or on
the server afterwards is caught. Where a checksum is known (the local MusiCNN stand-in
below), it is written in the registry and checked from the start.

URLs and node names were taken from Essentia's model pages and example scripts
(``https://essentia.upf.edu/models.html``; ``src/examples/python/models/models.yaml`` and
``scripts/`` in the Essentia repository). Two naming schemes coexist there:

* classification *heads* (``<task>-<embedding model>-<version>``, e.g.
  ``genre_tzanetakis-msd-musicnn-1``) under ``classification-heads/``: small graphs that
  map embeddings to class probabilities (run with ``TensorflowPredict2D``);
* *legacy* transfer-learning classifiers (``<task>-<architecture>-<source>-<version>``,
  e.g. ``genre_tzanetakis-musicnn-msd-1``) under ``classifiers/``: whole audio models
  (the MusiCNN or VGGish body plus a softmax) that map audio patches to probabilities.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from genrelab.io import read_json, write_json

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ModelsDirSettings",
    "BASE_URL",
    "EssentiaModelSpec",
    "MODELS",
    "KINDS",
    "MissingModelError",
    "UnknownModelError",
    "get_spec",
    "list_models",
    "model_path",
    "metadata_path",
    "read_metadata",
    "fetch",
    "verify",
    "recorded_checksums",
    "models_command",
]

log = logging.getLogger(__name__)

BASE_URL = "https://essentia.upf.edu/models"
CHECKSUMS_FILE = "checksums.json"

KINDS: dict[str, str] = {
    "embedding": "audio -> patch-level embeddings (feature extractor or tagger body)",
    "classifier": "audio -> patch-level class probabilities (legacy whole-audio classifier)",
    "head": "embeddings -> class probabilities (classification head, TensorflowPredict2D)",
}
"""What each ``EssentiaModelSpec.kind`` takes and returns."""


@dataclass(frozen=True)
class ModelsDirSettings:
    """Settings of the ``models`` section.

    Attributes
    ----------
    dir : str
        Folder of pretrained model files (Essentia ``.pb`` graphs and their ``.json``).
    """

    dir: str = "models"

    def __post_init__(self) -> None:
        if not self.dir:
            raise ValueError("dir: must name a folder (the default is models)")


class UnknownModelError(KeyError):
    """Raised for a model name that is not in :data:`MODELS`; the message lists the choices."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class MissingModelError(FileNotFoundError):
    """Raised when a model file is not in ``models_dir``.

    The message names the file, the URL it is published at and the folder to put it in.
    """


@dataclass(frozen=True)
class EssentiaModelSpec:
    """Everything needed to find, download and run one Essentia model.

    Attributes
    ----------
    name : str
        Registry key and file stem (``<name>.pb`` / ``<name>.json``).
    kind : {"embedding", "classifier", "head"}
        See :data:`KINDS`.
    algorithm : str
        Essentia algorithm that runs the graph (``TensorflowPredictMusiCNN`` ...). The
        extractor reproduces its front end and patching and feeds the graph through
        ``TensorflowPredict`` so that patches of many clips share one batch.
    url : str or None
        Published ``.pb`` URL; ``None`` for files that only exist locally.
    json_url : str or None
        Published metadata URL (same stem, ``.json``).
    sha1 : str or None
        Known SHA-1 of the ``.pb``; ``None`` when Essentia publishes none (see module notes).
    sample_rate : int
        Audio sample rate in Hz the model expects (16 kHz for all entries here).
    frontend : str or None
        Essentia log-mel front end (``TensorflowInputMusiCNN`` or ``TensorflowInputVGGish``).
    frame_size, hop_size : int or None
        STFT frame and hop in samples (at ``sample_rate``).
    n_bands : int or None
        Mel bands per frame.
    patch_size : int or None
        Frames per patch (the graph's input length).
    patch_hop : int or None
        Frames between patch starts: Essentia's default for this algorithm.
    input_node, output_node : str
        Graph input, and the output used by default (the embedding layer for ``embedding``
        models, the probabilities for ``classifier`` and ``head`` models).
    output_dim : int
        Size of ``output_node``'s last axis.
    tags_node : str or None
        Output with the model's own tag/class activations, where there is one.
    tags_dim : int or None
        Size of ``tags_node``'s last axis (its tag names are ``classes`` when they are known).
    fixed_batch : int or None
        Batch size the graph requires (EffNet-Discogs ``bs64`` graphs take exactly 64
        patches); ``None`` for any batch size.
    input_dim : int or None
        For heads: embedding size they take.
    upstream : str or None
        For heads: the embedding model (and its ``output_node``) they were trained on.
    classes : tuple of str
        Class or tag names in output order, where known without the metadata file.
    description : str
        One line for ``genrelab models list``.
    """

    name: str
    kind: str
    algorithm: str
    url: str | None
    json_url: str | None
    input_node: str
    output_node: str
    output_dim: int
    description: str
    sha1: str | None = None
    sample_rate: int = 16000
    frontend: str | None = None
    frame_size: int | None = None
    hop_size: int | None = None
    n_bands: int | None = None
    patch_size: int | None = None
    patch_hop: int | None = None
    tags_node: str | None = None
    tags_dim: int | None = None
    fixed_batch: int | None = None
    input_dim: int | None = None
    upstream: str | None = None
    classes: tuple[str, ...] = field(default=())

    @property
    def filename(self) -> str:
        """File name of the graph (``<name>.pb``)."""
        return f"{self.name}.pb"

    @property
    def json_filename(self) -> str:
        """File name of the metadata (``<name>.json``)."""
        return f"{self.name}.json"


# --------------------------------------------------------------------------------------
# the registry
# --------------------------------------------------------------------------------------
_MUSICNN = dict(
    algorithm="TensorflowPredictMusiCNN", frontend="TensorflowInputMusiCNN",
    frame_size=512, hop_size=256, n_bands=96, patch_size=187, patch_hop=93,
    input_node="model/Placeholder", tags_node="model/Sigmoid", tags_dim=50,
)
_VGGISH = dict(
    algorithm="TensorflowPredictVGGish", frontend="TensorflowInputVGGish",
    frame_size=400, hop_size=160, n_bands=64, patch_size=96, patch_hop=93,
    input_node="model/Placeholder",
)
_EFFNET = dict(
    algorithm="TensorflowPredictEffnetDiscogs", frontend="TensorflowInputMusiCNN",
    frame_size=512, hop_size=256, n_bands=96, patch_size=128, patch_hop=62,
    input_node="serving_default_melspectrogram", fixed_batch=64,
)
_HEAD = dict(algorithm="TensorflowPredict2D", input_node="model/Placeholder", output_node="model/Softmax")

MSD_TAGS = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock",
    "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill", "instrumental",
    "punk", "oldies", "blues", "hard rock", "ambient", "acoustic", "experimental",
    "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country", "easy listening", "sexy",
    "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop",
    "sad", "House", "happy",
)
"""The 50 Million Song Dataset tags of the MSD MusiCNN models, in output order."""

MTT_TAGS = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast",
    "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male",
    "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman",
    "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man", "classic", "choir", "voice",
    "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello", "no voice",
    "weird", "country", "metal", "female voice", "choral",
)
"""The 50 MagnaTagATune tags of the MTT MusiCNN model, in output order."""

TZANETAKIS_CLASSES = ("blu", "cla", "cou", "dis", "hip", "jaz", "met", "pop", "reg", "roc")
"""Output order of Essentia's ``genre_tzanetakis`` models (GTZAN genres, abbreviated)."""


def _specs() -> dict[str, EssentiaModelSpec]:
    fe, ch, legacy = f"{BASE_URL}/feature-extractors", f"{BASE_URL}/classification-heads", f"{BASE_URL}/classifiers"

    def urls(folder: str, name: str) -> dict[str, str]:
        return {"url": f"{folder}/{name}.pb", "json_url": f"{folder}/{name}.json"}

    specs = [
        # ---- embedding models (feature extractors) --------------------------------
        EssentiaModelSpec(name="msd-musicnn-1", kind="embedding", **_MUSICNN, **urls(f"{fe}/musicnn", "msd-musicnn-1"),
                  output_node="model/dense/BiasAdd", output_dim=200, classes=MSD_TAGS,
                  description="MusiCNN trained on the Million Song Dataset (50 tags); 200-d embeddings"),
        EssentiaModelSpec(name="mtt-musicnn-1", kind="embedding", **_MUSICNN,
                  **urls(f"{BASE_URL}/autotagging/mtt", "mtt-musicnn-1"),
                  output_node="model/dense/BiasAdd", output_dim=200, classes=MTT_TAGS,
                  description="MusiCNN trained on MagnaTagATune (50 tags); 200-d embeddings"),
        EssentiaModelSpec(name="msd-musicnn-frozen", kind="embedding", **_MUSICNN, url=None, json_url=None,
                  sha1="3d31c7c6e2336a9e56d615f681a06c653c698582",
                  output_node="model/batch_normalization_10/batchnorm/add_1", output_dim=200, classes=MSD_TAGS,
                  description="local stand-in for msd-musicnn-1: the musicnn 0.1.0 MSD_musicnn checkpoint "
                              "frozen to a graph (shared/models/musicnn); 200-d penultimate layer"),
        EssentiaModelSpec(name="audioset-vggish-3", kind="embedding", **_VGGISH,
                  **urls(f"{fe}/vggish", "audioset-vggish-3"),
                  output_node="model/vggish/embeddings", output_dim=128,
                  description="VGGish (AudioSet / YouTube-8M); 128-d embeddings per 0.96 s patch"),
        EssentiaModelSpec(name="discogs-effnet-bs64-1", kind="embedding", **_EFFNET,
                  **urls(f"{fe}/discogs-effnet", "discogs-effnet-bs64-1"),
                  output_node="PartitionedCall:1", output_dim=1280, tags_node="PartitionedCall:0", tags_dim=400,
                  description="EfficientNet-B0 trained on 400 Discogs styles; 1280-d embeddings; "
                              "fixed batch of 64 patches"),
        # ---- legacy whole-audio genre classifiers ---------------------------------
        EssentiaModelSpec(name="genre_tzanetakis-musicnn-msd-1", kind="classifier",
                  **{**_MUSICNN, "tags_node": None, "tags_dim": None},
                  **urls(f"{legacy}/genre_tzanetakis", "genre_tzanetakis-musicnn-msd-1"),
                  output_node="model/Softmax", output_dim=10, classes=TZANETAKIS_CLASSES,
                  description="legacy GTZAN genre classifier: MusiCNN (MSD) body + softmax, takes audio"),
        EssentiaModelSpec(name="genre_tzanetakis-vggish-audioset-1", kind="classifier", **_VGGISH,
                  **urls(f"{legacy}/genre_tzanetakis", "genre_tzanetakis-vggish-audioset-1"),
                  output_node="model/Softmax", output_dim=10, classes=TZANETAKIS_CLASSES,
                  description="legacy GTZAN genre classifier: VGGish body + softmax, takes audio (288 MB)"),
        # ---- classification heads (embeddings -> probabilities) -------------------
        EssentiaModelSpec(name="genre_tzanetakis-msd-musicnn-1", kind="head", **_HEAD,
                  **urls(f"{ch}/genre_tzanetakis", "genre_tzanetakis-msd-musicnn-1"),
                  output_dim=10, input_dim=200, upstream="msd-musicnn-1", classes=TZANETAKIS_CLASSES,
                  description="GTZAN genre head on msd-musicnn-1 embeddings (model/dense/BiasAdd)"),
        EssentiaModelSpec(name="genre_tzanetakis-audioset-vggish-1", kind="head", **_HEAD,
                  **urls(f"{ch}/genre_tzanetakis", "genre_tzanetakis-audioset-vggish-1"),
                  output_dim=10, input_dim=128, upstream="audioset-vggish-3", classes=TZANETAKIS_CLASSES,
                  description="GTZAN genre head on audioset-vggish-3 embeddings"),
        EssentiaModelSpec(name="genre_tzanetakis-discogs-effnet-1", kind="head", **_HEAD,
                  **urls(f"{ch}/genre_tzanetakis", "genre_tzanetakis-discogs-effnet-1"),
                  output_dim=10, input_dim=1280, upstream="discogs-effnet-bs64-1", classes=TZANETAKIS_CLASSES,
                  description="GTZAN genre head on discogs-effnet-bs64-1 embeddings"),
        EssentiaModelSpec(name="genre_discogs400-discogs-effnet-1", kind="head", algorithm="TensorflowPredict2D",
                  **urls(f"{ch}/genre_discogs400", "genre_discogs400-discogs-effnet-1"),
                  input_node="serving_default_model_Placeholder", output_node="PartitionedCall:0",
                  output_dim=400, input_dim=1280, upstream="discogs-effnet-bs64-1",
                  description="400 Discogs styles (multi-label sigmoid) on discogs-effnet-bs64-1 embeddings; "
                              "class names come from its .json"),
    ]
    return {s.name: s for s in specs}


MODELS: dict[str, EssentiaModelSpec] = _specs()
"""Every known model, by name."""


def get_spec(name: str) -> EssentiaModelSpec:
    """Look a model up in :data:`MODELS`.

    Raises
    ------
    UnknownModelError
        If ``name`` is not registered; the message lists the valid names.
    """
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise UnknownModelError(
            f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))} "
            f"(`genrelab models list` shows what each one is)"
        ) from None


def list_models(*, kind: str | None = None, models_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """Table of the registered models.

    Parameters
    ----------
    kind : {"embedding", "classifier", "head"}, optional
        Keep only models of this kind.
    models_dir : str or PathLike, optional
        When given, a ``present`` column says whether ``<name>.pb`` is in that folder.

    Returns
    -------
    table : pd.DataFrame
        One row per model, indexed by name, with ``kind``, ``algorithm``, ``sample_rate``,
        ``patch_size``, ``patch_hop``, ``output_node``, ``output_dim``, ``fixed_batch``,
        ``upstream``, ``sha1``, ``url``, ``description`` (and ``present``).
    """
    import pandas as pd

    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not a model kind; choose one of {sorted(KINDS)}")
    cols = ["kind", "algorithm", "sample_rate", "patch_size", "patch_hop", "output_node", "output_dim",
            "fixed_batch", "upstream", "sha1", "url", "description"]
    rows = [{c: asdict(s)[c] for c in cols} | {"name": s.name}
            for s in MODELS.values() if kind is None or s.kind == kind]
    table = pd.DataFrame(rows, columns=["name", *cols]).set_index("name")
    if models_dir is not None:
        table["present"] = [(Path(models_dir) / MODELS[n].filename).is_file() for n in table.index]
    return table


# --------------------------------------------------------------------------------------
# local files
# --------------------------------------------------------------------------------------
def _missing_message(spec: EssentiaModelSpec, models_dir: Path) -> str:
    where = models_dir.resolve()
    if spec.url is None:
        how = (f"it is not published anywhere; copy it from the machine that has it "
               f"(e.g. shared/models/musicnn/{spec.filename}) into {where}/")
    else:
        how = (f"download it from\n    {spec.url}\n  (and its metadata {spec.json_url})\n"
               f"  into the folder\n    {where}/\n"
               f"  for example with `genrelab models fetch {spec.name} --dir {models_dir}`")
    return f"model file {spec.filename!r} for {spec.name!r} is missing from {where}: {how}"


def model_path(name: str, models_dir: str | os.PathLike) -> Path:
    """Path of a model's ``.pb`` file, checked to exist.

    Parameters
    ----------
    name : str
        Registered model name (see :func:`list_models`).
    models_dir : str or PathLike
        Folder holding the model files under their published names.

    Returns
    -------
    path : Path
        ``models_dir / "<name>.pb"``.

    Raises
    ------
    UnknownModelError
        If ``name`` is not registered.
    MissingModelError
        If the file is absent; the message gives the file name, its URL and the folder.
    """
    spec = get_spec(name)
    models_dir = Path(models_dir)
    path = models_dir / spec.filename
    if not path.is_file():
        raise MissingModelError(_missing_message(spec, models_dir))
    return path


def metadata_path(name: str, models_dir: str | os.PathLike) -> Path | None:
    """Path of a model's ``.json`` metadata, or ``None`` when it is not in ``models_dir``."""
    path = Path(models_dir) / get_spec(name).json_filename
    return path if path.is_file() else None


def read_metadata(name: str, models_dir: str | os.PathLike) -> dict | None:
    """A model's parsed ``.json`` metadata (class names, schema ...), or ``None`` if absent."""
    path = metadata_path(name, models_dir)
    if path is None:
        return None
    try:
        return read_json(path)
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); delete it and fetch it again") from exc


def recorded_checksums(models_dir: str | os.PathLike) -> dict[str, str]:
    """SHA-1 of each file recorded by :func:`fetch` in ``<models_dir>/checksums.json``."""
    path = Path(models_dir) / CHECKSUMS_FILE
    if not path.is_file():
        return {}
    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of file name -> sha1; delete it to start over")
    return {str(k): str(v) for k, v in data.items()}


def _record(models_dir: Path, filename: str, sha1: str) -> None:
    sums = recorded_checksums(models_dir)
    if sums.get(filename) != sha1:
        sums[filename] = sha1
        write_json(models_dir / CHECKSUMS_FILE, dict(sorted(sums.items())))


def _expected_sha1(spec: EssentiaModelSpec, filename: str, models_dir: Path) -> str | None:
    if filename == spec.filename and spec.sha1:
        return spec.sha1
    return recorded_checksums(models_dir).get(filename)


def verify(name: str, models_dir: str | os.PathLike, *, progress: bool = False) -> Path:
    """Check a present model file against its known or recorded SHA-1.

    Returns
    -------
    path : Path
        The ``.pb`` file.

    Raises
    ------
    MissingModelError
        If the file is absent.
    genrelab.download.ChecksumError
        If its SHA-1 differs from the registry's or from the one recorded at download.
    """
    from genrelab.download import verify_checksum

    spec = get_spec(name)
    path = model_path(name, models_dir)
    want = _expected_sha1(spec, spec.filename, Path(models_dir))
    if want is None:
        log.warning("%s: no known or recorded checksum; nothing to verify against", path)
        return path
    return verify_checksum(path, sha1=want, progress=progress)


def fetch(
    name: str,
    models_dir: str | os.PathLike,
    *,
    urls: Mapping[str, str | Sequence[str]] | None = None,
    progress: bool = True,
    force: bool = False,
) -> Path:
    """Download a model's ``.pb`` and ``.json`` into ``models_dir``.

    Each file is streamed into ``<file>.part`` (resumable) and renamed into place only once
    complete and, where a checksum is known or recorded, verified (see
    :func:`genrelab.download.download`). The SHA-1 of every file fetched without a known
    checksum is recorded in ``<models_dir>/checksums.json`` and checked from then on.

    Parameters
    ----------
    name : str
        Registered model name.
    models_dir : str or PathLike
        Destination folder (created).
    urls : mapping, optional
        Mirrors overriding the published URLs: ``{"pb": url_or_urls, "json": url_or_urls}``
        (either key may be left out to keep the published URL).
    progress : bool
        Show progress (bars on a terminal, log lines otherwise).
    force : bool
        Download again even if a verified file is present.

    Returns
    -------
    path : Path
        The ``.pb`` file.

    Raises
    ------
    UnknownModelError
        If ``name`` is not registered.
    MissingModelError
        If the model has no public URL and none is given in ``urls``.
    genrelab.download.DownloadError
        If no URL delivered the file, or the checksum did not match (the bad download is
        deleted; an existing file is kept).
    """
    from genrelab.download import DownloadError, download, file_digest

    spec = get_spec(name)
    models_dir = Path(models_dir)
    urls = dict(urls or {})
    unknown = set(urls) - {"pb", "json"}
    if unknown:
        raise ValueError(f"urls has unknown keys {sorted(unknown)}; use 'pb' and/or 'json'")
    jobs = [(spec.filename, urls.get("pb", spec.url)), (spec.json_filename, urls.get("json", spec.json_url))]
    if jobs[0][1] is None:
        raise MissingModelError(_missing_message(spec, models_dir))

    models_dir.mkdir(parents=True, exist_ok=True)
    for filename, src in jobs:
        if src is None:
            log.info("%s: no metadata URL; skipping %s", spec.name, filename)
            continue
        dest = models_dir / filename
        want = _expected_sha1(spec, filename, models_dir)
        if force and dest.exists():
            # keep the old copy until a verified new one is in place
            backup = dest.with_name(dest.name + ".old")
            os.replace(dest, backup)
        else:
            backup = None
        try:
            download(src, dest, sha1=want, progress=progress)
        except DownloadError as exc:
            if backup is not None and not dest.exists():
                os.replace(backup, dest)
            hint = ("" if want is None or want == spec.sha1 else
                    f"\n  (the expected sha1 {want} was recorded in {models_dir / CHECKSUMS_FILE} when the "
                    f"file was first downloaded; delete that entry if the server's file changed on purpose)")
            raise type(exc)(f"{exc}{hint}") from exc
        finally:
            if backup is not None and backup.exists() and dest.exists():
                backup.unlink()
        if want is None:
            _record(models_dir, filename, file_digest(dest, "sha1", progress=progress))
            log.info("%s: no published checksum; recorded sha1 in %s", dest, models_dir / CHECKSUMS_FILE)
    return models_dir / spec.filename


# --------------------------------------------------------------------------------------
# command line: `genrelab models list|fetch`
# --------------------------------------------------------------------------------------
def _cmd_list(args: argparse.Namespace) -> int:
    import shutil

    import pandas as pd

    table = list_models(kind=args.kind, models_dir=args.dir)
    if args.long:
        with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 250,
                               "display.max_colwidth", 100):
            print(table.fillna("-").to_string())
        return 0
    width = min(shutil.get_terminal_size((120, 24)).columns, 120)
    name_w = max(len("name"), *(len(n) for n in table.index))
    head = f"{'name':<{name_w}}  {'kind':<10}  {'dim':>4}  {'here':<4}  "
    room = max(20, width - len(head))
    print(head + "description")
    for name, row in table.iterrows():
        desc = str(row["description"] or "")
        desc = desc if len(desc) <= room else desc[: room - 1] + "…"
        dim = "-" if pd.isna(row["output_dim"]) else str(int(row["output_dim"]))
        print(f"{name:<{name_w}}  {row['kind']:<10}  {dim:>4}  {'yes' if row['present'] else 'no':<4}  {desc}")
    print(f"\n{int(table['present'].sum())} of {len(table)} present in {args.dir}")
    print("download one: genrelab models fetch NAME; every column: genrelab models list --long")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    urls = {k: v for k, v in (("pb", args.url), ("json", args.json_url)) if v}
    path = fetch(args.name, args.dir, urls=urls or None, progress=not args.no_progress, force=args.force)
    print(path)
    return 0


def models_command(argv: Sequence[str] | None = None) -> int:
    """``genrelab models``: list the known Essentia models or download one.

    Usage::

        genrelab models list [--kind KIND] [--dir DIR] [--long]
        genrelab models fetch NAME [--dir DIR] [--force] [--no-progress]

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments after ``models`` (``sys.argv[2:]`` when None).

    Returns
    -------
    status : int
        0 on success, 2 on a usage error or a known failure (message on stderr).
    """
    # a literal, not genrelab.cli.describe: this module is pipeline code (features, train), the CLI is not
    parser = argparse.ArgumentParser(prog="genrelab models",
                                     description="List the known Essentia models or download one.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="show the registered models")
    p_list.add_argument("--kind", choices=sorted(KINDS), help="only models of this kind")
    p_list.add_argument("--dir", default="models", help="models folder, to show which files are present")
    p_list.add_argument("--long", action="store_true", help="show every column (URLs, node names, checksums)")
    p_list.set_defaults(func=_cmd_list)
    p_fetch = sub.add_parser("fetch", help="download a model's .pb and .json")
    p_fetch.add_argument("name", help="model name (see `genrelab models list`)")
    p_fetch.add_argument("--dir", default="models", help="destination folder (default: %(default)s)")
    p_fetch.add_argument("--url", help="mirror URL of the .pb, instead of the published one")
    p_fetch.add_argument("--json-url", help="mirror URL of the .json, instead of the published one")
    p_fetch.add_argument("--force", action="store_true", help="download again even if present")
    p_fetch.add_argument("--no-progress", action="store_true", help="no progress bars")
    p_fetch.set_defaults(func=_cmd_fetch)
    args = parser.parse_args(sys.argv[2:] if argv is None else list(argv))
    from genrelab.download import DownloadError

    try:
        return args.func(args)
    except (UnknownModelError, MissingModelError, DownloadError, ValueError) as exc:
        print(f"genrelab models {args.command}: {exc}", file=sys.stderr)
        return 2
