"""Essentia's pretrained genre heads as a model: genre predictions without training.

A head (``genre_tzanetakis-msd-musicnn-1``, ``genre_tzanetakis-discogs-effnet-1``,
``genre_discogs400-discogs-effnet-1`` ...; see ``genrelab models list --kind head``) maps the
patch embeddings of one Essentia model to its own classes. As ``model=essentia_head
model.head=NAME`` it runs on the features stage's embeddings (``features=musicnn``,
``effnet_discogs`` or ``vggish`` with the head's upstream model) and is evaluated like any
other classifier; "training" only checks the embeddings and maps the head's labels onto the
dataset's genres (:func:`map_labels`). ``genrelab predict --head NAME`` runs one on audio
with no bundle at all (:func:`head_bundle`).

The head's output order is its own. Each head class goes to the dataset genre whose name
matches (case, spaces and punctuation ignored; an abbreviation such as ``hip`` matches
``hiphop``; a Discogs ``Parent---Style`` name matches by style, then by parent). Probabilities
of head classes that go to the same genre are summed, classes that match no genre are left
out, and each row is renormalised over the dataset's genres; both lists are recorded in the
bundle's card. For the multi-label ``genre_discogs400`` head (sigmoid outputs) the sum is a
heuristic, not a probability.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genrelab.config import ConfigError

__all__ = ["HEAD_DATA", "EssentiaHeadSettings", "EssentiaHeadModel", "LabelMap", "map_labels", "build_head",
           "load_head", "head_bundle"]

HEAD_DATA = {"genre_tzanetakis": "GTZAN (Tzanetakis & Cook 2002)", "genre_dortmund": "the Dortmund dataset",
             "genre_rosamerica": "the Rosamerica dataset", "genre_discogs400": "Discogs (400 styles)",
             "genre_electronic": "an electronic-music dataset", "fma_small": "FMA small"}
"""What each family of heads was trained on (the part of the name before the first ``-``)."""


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass(frozen=True)
class LabelMap:
    """How a head's classes go to a dataset's genres.

    Attributes
    ----------
    target : np.ndarray [shape=(n_head_classes,)], int
        Genre index of each head class, -1 where none matches.
    mapped : dict
        Head class -> genre.
    unmapped : list of str
        Head classes that match no genre (their probability is left out).
    uncovered : list of str
        Genres no head class maps to (the head never predicts them).
    """

    target: np.ndarray
    mapped: dict[str, str]
    unmapped: list[str]
    uncovered: list[str]

    def apply(self, proba: np.ndarray, n_genres: int) -> np.ndarray:
        """Head probabilities ``(n, n_head_classes)`` -> genre probabilities ``(n, n_genres)``, rows summing to 1."""
        proba = np.asarray(proba, dtype=np.float64)
        out = np.zeros((len(proba), n_genres))
        ok = self.target >= 0
        np.add.at(out.T, self.target[ok], proba[:, ok].T)
        total = out.sum(axis=1, keepdims=True)
        uniform = np.full(n_genres, 1.0 / n_genres)
        return np.where(total > 0, out / np.where(total > 0, total, 1.0), uniform)


def map_labels(head_classes: list[str] | tuple[str, ...], genres: list[str]) -> LabelMap:
    """Map a head's class names onto dataset genres by name (see the module notes).

    Parameters
    ----------
    head_classes : sequence of str
        The head's classes in output order.
    genres : list of str
        The dataset's genres in label order.

    Returns
    -------
    LabelMap
    """
    norm_genres = [_norm(g) for g in genres]

    def match(name: str) -> int:
        n = _norm(name)
        if not n:
            return -1
        if n in norm_genres:
            return norm_genres.index(n)
        prefix = [i for i, g in enumerate(norm_genres) if len(n) >= 3 and (g.startswith(n) or n.startswith(g))]
        return prefix[0] if len(prefix) == 1 else -1

    target = []
    for cls in head_classes:
        parts = str(cls).split("---")
        candidates = [parts[-1], parts[-1].split()[-1] if parts[-1].split() else "", parts[0]] if len(parts) > 1 \
            else [str(cls)]
        found = next((i for i in map(match, candidates) if i >= 0), -1)
        target.append(found)
    target_arr = np.asarray(target, dtype=np.int64)
    mapped = {str(c): genres[t] for c, t in zip(head_classes, target_arr) if t >= 0}
    return LabelMap(target=target_arr, mapped=mapped,
                    unmapped=[str(c) for c, t in zip(head_classes, target_arr) if t < 0],
                    uncovered=[g for i, g in enumerate(genres) if i not in set(target_arr.tolist())])


@dataclass(frozen=True)
class EssentiaHeadSettings:
    """Settings of ``model=essentia_head``.

    Attributes
    ----------
    head : str
        A registered classification head (``genrelab models list --kind head``).
    batch_size : int > 0
        Embeddings per TensorFlow call.
    """

    head: str = "genre_tzanetakis-msd-musicnn-1"
    batch_size: int = 64

    def __post_init__(self) -> None:
        from genrelab.embeddings.catalog import MODELS

        heads = sorted(n for n, s in MODELS.items() if s.kind == "head")
        if self.head not in heads:
            raise ConfigError(f"model.head: unknown choice {self.head!r}; valid choices: {', '.join(heads)}")
        if self.batch_size < 1:
            raise ConfigError(f"model.batch_size: must be positive, got {self.batch_size}")


def _trained_by(head: str) -> str:
    from genrelab.embeddings.catalog import get_spec

    spec = get_spec(head)
    data = HEAD_DATA.get(head.split("-")[0], "its authors' data")
    return f"Essentia's pretrained head {head} on {spec.upstream} embeddings, trained on {data}; not trained here"


@dataclass
class EssentiaHeadModel:
    """An Essentia genre head behind genrelab's model interface (``fit`` only checks and maps labels).

    Attributes
    ----------
    settings : EssentiaHeadSettings
    n_classes : int
        Number of dataset genres.
    models_dir : str or None
        Folder holding the head's ``.pb`` (and ``.json``); set by :meth:`fit` from the features'
        ``models_dir``, or given.
    labels : list of str
        Dataset genres (set by :meth:`fit`).
    label_map : LabelMap or None
    """

    settings: EssentiaHeadSettings
    n_classes: int
    models_dir: str | None = None
    labels: list[str] = field(default_factory=list)
    label_map: LabelMap | None = None
    head_classes: list[str] = field(default_factory=list)
    report: dict = field(default_factory=dict)
    input: str = "vector"
    _head: Any = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return "essentia_head"

    @property
    def spec(self):
        from genrelab.embeddings.catalog import get_spec

        return get_spec(self.settings.head)

    @property
    def pretrained(self) -> dict[str, Any]:
        """For the model card: who trained the head, and how its labels map."""
        m = self.label_map
        return {"summary": _trained_by(self.settings.head), "head": self.settings.head,
                "upstream": self.spec.upstream, "mapped": m.mapped if m else {},
                "unmapped_head_classes": m.unmapped if m else [],
                "genres_without_head_class": m.uncovered if m else []}

    def _genre_head(self):
        if self._head is None:
            from genrelab.embeddings import GenreHead

            if self.models_dir is None:
                raise ConfigError(f"model essentia_head: no folder for {self.settings.head}.pb; set models.dir")
            self._head = GenreHead(self.settings.head, models_dir=self.models_dir, batch_size=self.settings.batch_size)
        return self._head

    def fit(self, train, valid=None) -> EssentiaHeadModel:
        """Check the features are the head's upstream embeddings and map its labels (no training)."""
        t0 = time.perf_counter()
        spec = self.spec
        feats = dict(train.info.get("features") or {})
        model, output, pooling = feats.get("model"), feats.get("output", "embedding"), feats.get("pooling", "none")
        if model != spec.upstream or output != "embedding" or pooling == "meanstd":
            raise ConfigError(
                f"model.head: {spec.name} reads {spec.upstream} embeddings (its {spec.upstream} output node), "
                f"but the features are {feats.get('name')!r} with model {model!r}, output {output!r}, pooling "
                f"{pooling!r}; use features={_feature_name(spec.upstream)} (pooling none, mean or max)")
        if train.X.shape[1] != spec.input_dim:
            raise ConfigError(f"model.head: {spec.name} takes {spec.input_dim}-d embeddings; the features have "
                              f"{train.X.shape[1]} columns")
        self.models_dir = self.models_dir or feats.get("models_dir")
        self.labels = list(train.info["labels"])
        head = self._genre_head()
        self.head_classes = list(head.classes)
        self.label_map = map_labels(self.head_classes, self.labels)
        if not self.label_map.mapped:
            raise ConfigError(f"model.head: none of {spec.name}'s classes ({', '.join(self.head_classes[:10])} ...) "
                              f"matches a genre of the dataset ({', '.join(self.labels)})")
        self.report = {"fit_seconds": time.perf_counter() - t0, "head_classes_mapped": len(self.label_map.mapped),
                       "head_classes_unmapped": len(self.label_map.unmapped),
                       "genres_without_head_class": len(self.label_map.uncovered)}
        return self

    def predict_proba(self, features) -> np.ndarray:
        """Genre probabilities ``(n_slices, n_classes)`` from the head's own (see :class:`LabelMap`)."""
        if self.label_map is None:
            raise RuntimeError("essentia_head: call fit (or load a saved one) first")
        return self.label_map.apply(self._genre_head().predict(np.asarray(features.X, dtype=np.float32)),
                                    self.n_classes)

    def predict(self, features, *, proba: np.ndarray | None = None) -> np.ndarray:
        """Genre of each slice ``(n_slices,)``: the argmax of :meth:`predict_proba` (``proba`` when given)."""
        proba = self.predict_proba(features) if proba is None else proba
        return np.asarray(proba).argmax(axis=1).astype(np.int64)

    def save(self, folder: str | Path) -> None:
        """Write ``head.json``: the head's name, folder and label map (its weights stay in ``models_dir``)."""
        from genrelab.io import write_json

        assert self.label_map is not None
        write_json(Path(folder) / "head.json", {
            "head": self.settings.head, "batch_size": self.settings.batch_size, "models_dir": self.models_dir,
            "labels": self.labels, "head_classes": self.head_classes,
            "target": self.label_map.target.tolist(), "report": self.report})


def _feature_name(upstream: str | None) -> str:
    from genrelab.features.extractors import EMBEDDING_MODELS

    return next((name for name, model in EMBEDDING_MODELS.items() if model == upstream), "musicnn")


def build_head(settings: EssentiaHeadSettings, *, n_classes: int, input_shape: tuple[int, ...], seed: int,
               device: str = "auto") -> EssentiaHeadModel:
    """Registry builder (``seed`` and ``device`` do not apply: nothing is trained)."""
    return EssentiaHeadModel(settings=settings, n_classes=n_classes)


def load_head(folder: Path) -> EssentiaHeadModel:
    """Load ``head.json`` (no pickle; the graph is loaded from ``models_dir`` on first use)."""
    from genrelab.io import read_json

    d = read_json(Path(folder) / "head.json")
    labels = list(d["labels"])
    target = np.asarray(d["target"], dtype=np.int64)
    mapped = {c: labels[t] for c, t in zip(d["head_classes"], target) if t >= 0}
    label_map = LabelMap(target=target, mapped=mapped, unmapped=[c for c, t in zip(d["head_classes"], target) if t < 0],
                         uncovered=[g for i, g in enumerate(labels) if i not in set(target.tolist())])
    return EssentiaHeadModel(settings=EssentiaHeadSettings(head=d["head"], batch_size=int(d["batch_size"])),
                             n_classes=len(labels), models_dir=d.get("models_dir"), labels=labels,
                             label_map=label_map, head_classes=list(d["head_classes"]), report=d.get("report", {}))


def head_bundle(head: str, models_dir: str | Path, *, genres: tuple[str, ...] | list[str] | None = None):
    """A bundle that runs a head on audio (``genrelab predict --head``): no training, no ``data/model``.

    Parameters
    ----------
    head : str
        A registered classification head.
    models_dir : path
        Folder holding the head and its upstream embedding model (``genrelab models fetch``).
    genres : sequence of str, optional
        Names to show for the head's classes where they match (default: the ten GTZAN genres,
        so ``blu`` shows as ``blues``); classes that match none keep the head's own name.

    Returns
    -------
    Bundle
        With the head's classes as labels (renamed where they match ``genres``), one model,
        the embedding extractor's settings, and a card saying who trained the head.

    Raises
    ------
    genrelab.config.ConfigError
        If ``head`` is not a registered head.
    genrelab.embeddings.MissingModelError
        If the head's or its upstream model's file is missing (the message says where to get it).
    """
    from genrelab import GENRES
    from genrelab.embeddings.catalog import get_spec, model_path
    from genrelab.models.bundle import Bundle

    settings = EssentiaHeadSettings(head=head)
    spec = get_spec(head)
    upstream = get_spec(spec.upstream)
    model_path(spec.name, models_dir)
    model_path(upstream.name, models_dir)  # checked now: a missing file is named before any audio is read
    model = EssentiaHeadModel(settings=settings, n_classes=0, models_dir=str(models_dir))
    classes = list(model._genre_head().classes)
    shown = map_labels(classes, list(genres or GENRES))
    labels = [shown.mapped.get(c, c) for c in classes]
    if len(set(labels)) != len(labels):
        labels = classes
    model.labels, model.head_classes, model.n_classes = labels, classes, len(classes)
    model.label_map = LabelMap(target=np.arange(len(classes)), mapped=dict(zip(classes, labels)), unmapped=[],
                               uncovered=[])
    feature = _feature_name(upstream.name)
    params = {
        "features": {"name": feature, "model": upstream.name, "pooling": "none", "patch_hop": None, "batch_size": 1},
        "variant": {"name": "normal", "separator": "none", "channels": [["mix"]]},
        "slicing": {"length_s": round(upstream.patch_size * upstream.hop_size / upstream.sample_rate, 3),
                    "overlap": 0.0},
        "audio": {"sample_rate": int(upstream.sample_rate)}, "models": {"dir": str(models_dir)},
        "model": {"name": "essentia_head", "head": head},
    }
    card = {"format": 1, "dataset": {"name": HEAD_DATA.get(head.split("-")[0], "unknown"), "synthetic": False},
            "split": {}, "genres": labels, "features": feature, "variant": "normal", "model": "essentia_head",
            "seeds": [0], "pretrained": {**model.pretrained, "mapped": {}, "genres_without_head_class": []}}
    meta = {"format": 1, "model": "essentia_head", "input": "vector", "labels": labels, "seeds": [0],
            "params": params, "feature_names": None, "card": card}
    return Bundle(folder=Path(models_dir), meta=meta, models={"seed_0": model})
