"""Model cards: what a bundle was trained on, how it scored, and at which revision.

A card has three parts, kept where each can be reproduced byte for byte:

* **training** -- written by the train stage into ``bundle.json`` (``card``): the dataset and
  its size per split, the split method and what it groups by, the genres, features, variant,
  model, seeds and the genrelab version. Nothing in it depends on the clock or on git, so
  identical runs give identical bundles.
* **evaluation** -- written by the evaluate stage into its ``card.json`` output: the whole
  training part again, the test metrics with their interval, and the digest of the bundle
  they belong to (:func:`bundle_digest`), so a reader can tell whether a ``card.json`` describes
  the bundle at hand.
* **provenance** -- the project revision and the date, derived when the card is read, never
  stored in a DVC output (a date or a commit id in an output would change ``dvc.lock`` on every
  fresh ``dvc repro``). DVC records the md5 of ``card.json`` in ``dvc.lock``; the first git
  commit whose ``dvc.lock`` holds that md5 is the revision that recorded the result, and its
  commit date is the card's date. A card that no commit records yet is described by the
  working tree (``git describe --always --dirty``) and the file's modification time.

``genrelab card [BUNDLE]`` prints the whole card; ``genrelab predict`` and the web demo show
:meth:`ModelCard.line` and, for a model trained on the built-in synthetic dataset,
:data:`SYNTHETIC_WARNING`.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genrelab.io import read_json, write_json

__all__ = ["CARD_FORMAT", "SYNTHETIC_WARNING", "ModelCard", "training_card", "evaluation_summary", "bundle_digest",
           "write_card", "load_card", "provenance", "card_command"]

CARD_FORMAT = 1

SYNTHETIC_WARNING = (
    "trained on genrelab's built-in SYNTHETIC dataset, so its predictions on real music are not meaningful. "
    "For real music, train on GTZAN or FMA (`dvc exp run -S dataset=gtzan -S dataset.source=/path/to/gtzan`, "
    "or `-S dataset=fma_small`), or use a pretrained Essentia genre head "
    "(`genrelab models fetch msd-musicnn-1`, `genrelab models fetch genre_tzanetakis-msd-musicnn-1`, then "
    "`genrelab predict --head genre_tzanetakis-msd-musicnn-1 FILES`)."
)
"""What predict and the demo say about a model trained on the built-in synthetic dataset."""

DATASET_DESCRIPTIONS = {
    "synthetic": "genrelab's built-in synthetic genre dataset (generated, not real music)",
    "gtzan": "GTZAN (1000 30-s clips, 10 genres)",
    "fma_small": "FMA small (8000 30-s clips, 8 genres)",
    "fma_medium": "FMA medium (25000 30-s clips, 16 genres)",
    "table": "a published feature table",
    "embeddings": "precomputed embeddings (.npz)",
}
"""One line per dataset name, for the card."""

_LOCATION_KEYS = ("source", "metadata_source", "audio_source", "cache_dir", "base_urls", "urls", "sha1", "md5",
                  "tracks_csv", "train", "valid", "test", "labels_file")
"""Dataset settings that say where files are, not what the data is: left out of the card."""

_SPLIT_DETAILS = {"grouped": ("fractions",), "leaky": ("fractions",), "kfold": ("n_folds", "fold")}
"""Split settings worth recording for each method."""


# ------------------------------------------------------------------------------------ writing
def training_card(params: dict[str, Any], *, tracks: dict[str, int], slices: dict[str, int], labels: list[str],
                  pretrained: dict | None = None) -> dict[str, Any]:
    """The training part of a model card (what ``bundle.json`` holds under ``card``).

    Parameters
    ----------
    params : dict
        The composed parameters (``dataset``, ``split``, ``features``, ``variant``, ``model``,
        ``train`` sections are read where present).
    tracks, slices : dict
        Count of tracks and of slices per split (``train``, ``valid``, ``test``).
    labels : list of str
        The genres, in label order.
    pretrained : dict, optional
        For a model that was not trained here (an Essentia head): who trained it and on what.

    Returns
    -------
    card : dict
        Plain JSON-ready dict, with no date, path or revision in it (see the module notes).
    """
    from genrelab import __version__

    dataset = dict(params.get("dataset") or {})
    name = str(dataset.get("name", "unknown"))
    if name == "table" and dataset.get("kind"):
        name = f"table:{dataset['kind']}"
    split = dict(params.get("split") or {})
    features = dict(params.get("features") or {})
    model = dict(params.get("model") or {})
    return {
        "format": CARD_FORMAT,
        "dataset": {
            "name": name, "synthetic": name == "synthetic" and pretrained is None,
            "description": DATASET_DESCRIPTIONS.get(name.split(":")[0], name),
            "settings": {k: v for k, v in dataset.items() if k not in ("name", "genres", *_LOCATION_KEYS)},
            "tracks": {k: int(v) for k, v in tracks.items()},
            "slices": {k: int(v) for k, v in slices.items()},
        },
        "split": {k: split[k] for k in ("method", "group_by", *_SPLIT_DETAILS.get(split.get("method"), ()))
                  if k in split},
        "genres": list(labels),
        "features": features.get("name"),
        "variant": (params.get("variant") or {}).get("name"),
        "model": model.get("name"),
        "seeds": list((params.get("train") or {}).get("seeds", [])),
        "pretrained": pretrained,
        "genrelab_version": __version__,
    }


def evaluation_summary(metrics: dict[str, Any], *, split: str) -> dict[str, Any]:
    """The headline numbers of the evaluate stage's metrics, for the card.

    Parameters
    ----------
    metrics : dict
        What :func:`genrelab.evaluate.evaluate_bundle` returns (possibly nested under ``leaky``).
    split : str
        The split they were measured on.

    Returns
    -------
    summary : dict
        ``split``, ``leaky``, ``n_tracks``, ``track_accuracy`` (mean probability), its 95%
        interval ``track_accuracy_ci95`` as ``[low, high]``, ``track_vote_accuracy``,
        ``slice_accuracy`` and ``macro_f1`` -- each only where the metrics hold it.
    """
    leaky = "leaky" in metrics and isinstance(metrics["leaky"], dict)
    m = metrics["leaky"] if leaky else metrics

    def get(*keys: str) -> Any:
        node: Any = m
        for k in keys:
            if not isinstance(node, dict) or k not in node:
                return None
            node = node[k]
        return node

    out: dict[str, Any] = {"split": split, "leaky": leaky, "n_tracks": get("n_tracks"),
                           "track_accuracy": get("track_mean", "accuracy"),
                           "track_vote_accuracy": get("track_vote", "accuracy"),
                           "slice_accuracy": get("slice", "accuracy"), "macro_f1": get("track_mean", "macro_f1")}
    ci = get("track_mean", "accuracy_ci95") or get("track_accuracy_ci95")   # the latter: before genrelab 0.2
    if isinstance(ci, dict) and "low" in ci and "high" in ci:
        out["track_accuracy_ci95"] = [float(ci["low"]), float(ci["high"])]
    elif isinstance(ci, (list, tuple)) and len(ci) == 2:
        out["track_accuracy_ci95"] = [float(ci[0]), float(ci[1])]
    return {k: v for k, v in out.items() if v is not None}


def bundle_digest(folder: str | Path) -> str:
    """SHA-256 of a bundle's files (relative paths and contents), independent of where it lies.

    Parameters
    ----------
    folder : path
        The bundle folder.

    Returns
    -------
    digest : str
        ``"sha256:<hex>"``.
    """
    folder = Path(folder)
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if any(part.startswith(".") or part == "__pycache__" for part in Path(rel).parts):
            continue
        h.update(rel.encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return "sha256:" + h.hexdigest()


def write_card(path: str | Path, bundle_folder: str | Path, evaluation: dict[str, Any]) -> dict[str, Any]:
    """Write the evaluate stage's ``card.json``: the bundle's training card plus its evaluation.

    Parameters
    ----------
    path : path
        The ``card.json`` to write (atomically).
    bundle_folder : path
        The evaluated bundle.
    evaluation : dict
        From :func:`evaluation_summary`.

    Returns
    -------
    card : dict
        What was written.
    """
    meta = read_json(Path(bundle_folder) / "bundle.json")
    card = {"bundle_digest": bundle_digest(bundle_folder), "model": meta.get("model"),
            "training": meta.get("card"), "evaluation": evaluation}
    write_json(path, card)
    return card


# ------------------------------------------------------------------------------------ reading
def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _project_root(path: Path) -> Path | None:
    for parent in [path.resolve(), *path.resolve().parents]:
        if (parent / "dvc.yaml").is_file():
            return parent
    return None


def provenance(card_file: str | Path | None) -> dict[str, str]:
    """The revision and date of an evaluated card, derived from git and ``dvc.lock`` (see module notes).

    Parameters
    ----------
    card_file : path or None
        The evaluate stage's ``card.json``.

    Returns
    -------
    provenance : dict
        ``revision`` and ``date`` (ISO 8601), and ``how``: ``"committed"`` (the first commit
        whose ``dvc.lock`` records this card), ``"working tree"`` (no commit records it yet:
        the working tree's ``git describe`` and the file's time), or ``"unknown"``.
    """
    from genrelab import __version__

    unknown = {"revision": f"genrelab {__version__}", "date": "unknown", "how": "unknown"}
    if card_file is None or not Path(card_file).is_file():
        return unknown
    card_file = Path(card_file)
    mtime = _dt.datetime.fromtimestamp(card_file.stat().st_mtime, tz=_dt.UTC).isoformat(timespec="seconds")
    root = _project_root(card_file.parent)
    if root is None or not (root / "dvc.lock").is_file():
        return {**unknown, "date": mtime}
    md5 = hashlib.md5(card_file.read_bytes()).hexdigest()
    found = _git(root, "log", "--all", "--reverse", "--format=%h%x09%cI", f"-S{md5}", "--", "dvc.lock")
    if found:
        revision, date = found.splitlines()[0].split("\t")
        return {"revision": revision, "date": date, "how": "committed"}
    describe = _git(root, "describe", "--always", "--dirty")
    if describe is None:
        return {**unknown, "date": mtime}
    return {"revision": f"{describe} (not committed yet)", "date": mtime, "how": "working tree"}


@dataclass
class ModelCard:
    """A bundle's card, assembled for display.

    Attributes
    ----------
    model : str
        Model name.
    labels : list of str
    training : dict or None
        The training part (``None`` for a bundle made before model cards).
    evaluation : dict or None
        The evaluate stage's summary, when a ``card.json`` for this very bundle was found.
    provenance : dict
        ``revision``, ``date``, ``how`` (see :func:`provenance`).
    source : str
        Where the card came from (for ``genrelab card``).
    """

    model: str
    labels: list[str]
    training: dict | None
    evaluation: dict | None = None
    provenance: dict = field(default_factory=dict)
    source: str = ""

    @property
    def missing(self) -> bool:
        """Whether the bundle predates model cards."""
        return self.training is None

    @property
    def synthetic(self) -> bool:
        """Whether the model was trained on the built-in synthetic dataset."""
        return bool(self.training and self.training.get("dataset", {}).get("synthetic"))

    @property
    def warning(self) -> str | None:
        """A plain warning about what the predictions are worth, or ``None``."""
        if self.missing:
            return ("this bundle has no model card (it was made before genrelab recorded one): what it was trained "
                    "on is unknown; re-run the 'train' stage to record it")
        return SYNTHETIC_WARNING if self.synthetic else None

    def _trained(self) -> str:
        t = self.training or {}
        if t.get("pretrained"):
            return str(t["pretrained"].get("summary", "pretrained elsewhere"))
        d = t.get("dataset", {})
        n = d.get("tracks", {})
        split = t.get("split", {})
        method = split.get("method", "?")
        how = f"{method} split" + (f" by {split['group_by']}" if method in ("grouped", "kfold")
                                   and split.get("group_by") else "")
        size = f"{n.get('train', '?')} train tracks" + (f", {n['valid']} valid" if n.get("valid") else "")
        name = "SYNTHETIC data" if d.get("synthetic") else d.get("name", "?")
        return f"trained on {name} ({size}; {how})"

    def _scored(self) -> str:
        e = self.evaluation
        if (not e or e.get("track_accuracy") is None) and (self.training or {}).get("pretrained"):
            return "not evaluated here (evaluate it as model=essentia_head in the pipeline)"
        if not e or e.get("track_accuracy") is None:
            return "test metrics not recorded for this bundle (run the 'evaluate' stage)"
        ci = e.get("track_accuracy_ci95")
        interval = f" [95% CI {100 * ci[0]:.0f}-{100 * ci[1]:.0f}%]" if ci else ""
        leaky = " on a LEAKY split" if e.get("leaky") else ""
        return (f"{e.get('split', 'test')} accuracy {100 * e['track_accuracy']:.1f}%{interval} "
                f"on {e.get('n_tracks', '?')} tracks{leaky}")

    def line(self) -> str:
        """One line: model, features, training data, test accuracy, revision."""
        if self.missing:
            return f"model card missing: {self.model} with {len(self.labels)} genres; " + str(self.warning)
        t = self.training or {}
        rev = self.provenance.get("revision")
        date = self.provenance.get("date", "unknown")
        when = f"; {rev}" + (f", {date[:10]}" if date != "unknown" else "") if rev else ""
        return (f"model: {self.model} on {t.get('features')} features ({t.get('variant')} variant), "
                f"{len(self.labels)} genres, {self._trained()}; {self._scored()}{when}")

    def lines(self) -> list[str]:
        """The whole card, one fact per line (``genrelab card``)."""
        t = self.training or {}
        out = [f"model card of {self.source}" if self.source else "model card"]
        if self.missing:
            return [*out, f"  model     {self.model}", f"  genres    {', '.join(self.labels)}",
                    f"  card      missing: {self.warning}"]
        d = t.get("dataset", {})
        out += [f"  model     {self.model} (seeds {', '.join(map(str, t.get('seeds', [])))})",
                f"  features  {t.get('features')}, variant {t.get('variant')}",
                f"  dataset   {d.get('name')}: {d.get('description')}"]
        if d.get("settings"):
            out.append("            " + ", ".join(f"{k}={v}" for k, v in d["settings"].items()))
        if t.get("pretrained"):
            out.append(f"  trained   {t['pretrained'].get('summary')}")
            for key in ("mapped", "unmapped_head_classes", "genres_without_head_class"):
                if t["pretrained"].get(key):
                    out.append(f"            {key.replace('_', ' ')}: {t['pretrained'][key]}")
        sizes = ", ".join(f"{k} {v}" for k, v in d.get("tracks", {}).items())
        slices = ", ".join(f"{k} {v}" for k, v in d.get("slices", {}).items())
        split = t.get("split", {})
        out += [f"  tracks    {sizes} (slices: {slices})",
                f"  split     {', '.join(f'{k}={v}' for k, v in split.items())}",
                f"  genres    {', '.join(self.labels)}",
                f"  test      {self._scored()}"]
        e = self.evaluation or {}
        extra = [f"{k.replace('_', ' ')} {100 * e[k]:.1f}%" for k in ("track_vote_accuracy", "slice_accuracy",
                                                                        "macro_f1") if e.get(k) is not None]
        if extra:
            out.append("            " + ", ".join(extra))
        p = self.provenance
        out += [f"  revision  {p.get('revision', 'unknown')} ({p.get('how', 'unknown')})",
                f"  date      {p.get('date', 'unknown')}",
                f"  genrelab  {t.get('genrelab_version', '?')}"]
        if self.warning:
            out.append(f"  WARNING   {self.warning}")
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the one-line summary, the warning, and every part."""
        return {"line": self.line(), "warning": self.warning, "synthetic": self.synthetic, "missing": self.missing,
                "model": self.model, "labels": list(self.labels), "training": self.training,
                "evaluation": self.evaluation, "provenance": self.provenance}


def load_card(bundle: Any, card_file: str | Path | None = None) -> ModelCard:
    """Assemble a bundle's card.

    Parameters
    ----------
    bundle : Bundle
        A loaded bundle (its ``meta`` and ``folder`` are read).
    card_file : path, optional
        The evaluate stage's ``card.json``. It is used only if it was written for this very
        bundle (same :func:`bundle_digest`); otherwise the card says the test metrics are not
        recorded.

    Returns
    -------
    ModelCard
    """
    meta = bundle.meta
    card = ModelCard(model=str(meta.get("model")), labels=list(meta.get("labels", [])), training=meta.get("card"),
                     source=str(bundle.folder))
    if card.missing:
        return card
    evaluated = None
    if card_file is not None and Path(card_file).is_file():
        try:
            doc = read_json(card_file)
        except ValueError:
            doc = None
        folder = Path(bundle.folder)
        if (isinstance(doc, dict) and (folder / "bundle.json").is_file()
                and doc.get("bundle_digest") == bundle_digest(folder)):
            card.evaluation = doc.get("evaluation")
            evaluated = card_file
    card.provenance = provenance(evaluated)
    return card


# ------------------------------------------------------------------------------- command line
def card_command(argv: list[str]) -> int:
    """``genrelab card [BUNDLE]``: print a model bundle's whole card."""
    import json

    from genrelab.models.bundle import Bundle

    p = argparse.ArgumentParser(prog="genrelab card", description="Print the model card of a bundle: what it was "
                                "trained on, its test metrics, revision and date. Reads only JSON: no --trust needed.")
    p.add_argument("bundle", nargs="?", default="data/model", help="model bundle folder (default: %(default)s)")
    p.add_argument("--card", default="data/eval/card.json",
                   help="the evaluate stage's card.json (used when it belongs to this bundle; default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the card as JSON")
    args = p.parse_args(argv)
    folder = Path(args.bundle)
    try:
        meta = read_json(folder / "bundle.json")
    except (FileNotFoundError, NotADirectoryError):
        print(f"error: {folder}: not a model bundle (no bundle.json); run the 'train' stage first", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {folder}/bundle.json: not valid JSON ({exc})", file=sys.stderr)
        return 2
    card = load_card(Bundle(folder=folder, meta=meta, models={}), args.card)
    if args.json:
        print(json.dumps(card.to_dict(), indent=1))
    else:
        print("\n".join(card.lines()))
    return 0
