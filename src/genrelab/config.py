"""Reading ``params.yaml`` and validating each section at the edge.

Stage scripts never use ``@hydra.main`` (it ignores DVC's ``-S``); they read the composed
``params.yaml`` through :func:`load_params` and turn their own section into a typed, validated
settings object with :func:`from_mapping`. An unknown choice or an impossible value fails at
start-up with a :class:`ConfigError` that names the key and the valid choices.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import os
import types
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

__all__ = [
    "ConfigError",
    "load_params",
    "get_section",
    "from_mapping",
    "require_choice",
    "compose",
    "compose_yaml",
    "compose_each",
    "SECTIONS",
    "GlobalSettings",
    "validate_params",
    "conf_digest",
    "check_params_current",
    "register_resolver",
]

T = TypeVar("T")


class ConfigError(ValueError):
    """An invalid setting: the message names the key, the bad value and what is allowed."""


def load_params(path: str | os.PathLike = "params.yaml") -> dict[str, Any]:
    """Read the composed parameters file.

    Parameters
    ----------
    path : str or PathLike
        Usually ``params.yaml`` at the repository root (composed from ``conf/`` by
        ``dvc exp run``).

    Returns
    -------
    params : dict
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: parameters file not found (run from the repository root)")
    with open(path, encoding="utf-8") as fh:
        params = yaml.safe_load(fh) or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return params


def get_section(params: Mapping[str, Any], dotted: str) -> Any:
    """Return ``params[a][b]`` for ``dotted='a.b'``, with an error naming the missing key."""
    node: Any = params
    walked = []
    for key in dotted.split("."):
        walked.append(key)
        if not isinstance(node, Mapping) or key not in node:
            have = sorted(node) if isinstance(node, Mapping) else []
            raise ConfigError(f"params: missing '{'.'.join(walked)}' (present here: {have})")
        node = node[key]
    return node


def require_choice(key: str, value: Any, valid: Iterable[Any]) -> Any:
    """Check ``value`` is one of ``valid``; raise :class:`ConfigError` listing them otherwise."""
    valid = list(valid)
    if value not in valid:
        raise ConfigError(f"{key}: unknown choice {value!r}; valid choices: {', '.join(map(str, valid))}")
    return value


def _coerce(key: str, value: Any, tp: Any) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(key, value, arg)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin is typing.Literal:
        return require_choice(key, value, args)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        item_tp = args[0] if args else Any
        items = [_coerce(f"{key}[{i}]", v, item_tp) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    return value


def from_mapping(cls: type[T], mapping: Mapping[str, Any] | None, *, section: str) -> T:
    """Build the dataclass ``cls`` from a params section, checking keys and types.

    Unknown keys are an error (a typo must not silently fall back to a default). The
    dataclass's own ``__post_init__`` then checks ranges.

    Parameters
    ----------
    cls : dataclass type
    mapping : mapping or None
        The section of ``params.yaml``.
    section : str
        Its dotted name, used in error messages (``'features'``, ``'split'`` ...).
    """
    mapping = dict(mapping or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        raise ConfigError(f"{section}: unknown key(s) {unknown}; valid keys: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _coerce(f"{section}.{name}", value, hints[name]) for name, value in mapping.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{section}: {exc}") from exc


@dataclass(frozen=True)
class GlobalSettings:
    """The top-level scalars of ``params.yaml``.

    Attributes
    ----------
    seed : int >= 0
        Seed of the split, the leaky slice assignment and the bootstrap.
    recipe : str, optional
        Name of the recipe (``conf/experiment/``) the configuration was composed with.
    conf_digest : str, optional
        Digest of the ``conf/`` files it was composed from (see :func:`conf_digest`).
    """

    seed: int = 0
    recipe: str | None = None
    conf_digest: str | None = None

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ConfigError(f"seed: must be an integer >= 0, got {self.seed}")


SECTIONS: dict[str, str] = {
    "dataset": "genrelab.datasets:dataset_settings",
    "split": "genrelab.splits:SplitSettings",
    "variant": "genrelab.variants:VariantSettings",
    "separation": "genrelab.variants:SeparationSettings",
    "audio": "genrelab.io:AudioSettings",
    "slicing": "genrelab.features.slicing:SliceSettings",
    "features": "genrelab.features.extractors:features_settings",
    "models": "genrelab.embeddings.catalog:ModelsDirSettings",
    "model": "genrelab.models.registry:model_settings",
    "train": "genrelab.models.train:TrainStageSettings",
    "evaluate": "genrelab.evaluate:EvaluateSettings",
    "compute": "genrelab.compute:ComputeSettings",
    "store": "genrelab.store:StoreSettings",
}
"""Section of ``params.yaml`` -> ``"module:attr"`` of what validates it: a settings dataclass
(checked with :func:`from_mapping`), or a function ``check(mapping) -> settings`` for a
section whose dataclass depends on a choice inside it (``dataset.name``, ``features.name``,
``model.name``). Imported lazily, and only modules that import cheaply (no torch, no
TensorFlow), so that checking a whole configuration takes about a second. The top-level
scalars are :class:`GlobalSettings`."""


def _validator(section: str) -> Any:
    module, attr = SECTIONS[section].split(":")
    return getattr(importlib.import_module(module), attr)


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate every section of a composed configuration, cheaply and before any work.

    Parameters
    ----------
    params : mapping
        The contents of ``params.yaml`` (or a composition of ``conf/``).

    Returns
    -------
    settings : dict
        Section name -> its validated settings object; ``'global'`` -> :class:`GlobalSettings`.

    Raises
    ------
    ConfigError
        Naming the first bad key (``model.C: expected a number, got 'abc'``), an unknown
        section, or an unknown choice with the valid ones.
    """
    if not isinstance(params, Mapping):
        raise ConfigError(f"params: expected a mapping of sections, got {type(params).__name__}")
    scalars = {f.name for f in dataclasses.fields(GlobalSettings)}
    unknown = sorted(set(params) - set(SECTIONS) - scalars)
    if unknown:
        raise ConfigError(f"params: unknown section(s) {unknown}; valid sections: {sorted(SECTIONS)}, "
                          f"and the values {sorted(scalars)}")
    out: dict[str, Any] = {"global": from_mapping(GlobalSettings, {k: params[k] for k in scalars if k in params},
                                                  section="params")}
    for section in SECTIONS:
        if section not in params:
            continue
        value = params[section]
        if not isinstance(value, Mapping):
            raise ConfigError(f"{section}: expected a mapping of settings, got {value!r}")
        check = _validator(section)
        out[section] = (from_mapping(check, value, section=section) if dataclasses.is_dataclass(check)
                        else check(value))
    return out


def conf_digest(config_dir: str | os.PathLike = "conf") -> str:
    """A short digest of every ``.yaml`` file under ``config_dir`` (names and contents).

    Composition stores it in ``params.yaml`` (``conf_digest``), so that a stage can tell
    whether ``conf/`` was edited after ``params.yaml`` was written.
    """
    root = Path(config_dir)
    h = hashlib.sha1()
    for path in sorted(root.rglob("*.yaml")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:10]


_COMPOSED_FROM: list[Path] = []   # the primary config folder of the latest Hydra initialisation


def _record_config_dir(path: str | os.PathLike) -> None:
    """Remember which ``conf/`` Hydra composes (called by the genrelab Hydra plugin)."""
    path = str(path)
    if path.startswith("file://"):
        path = path[len("file://"):]
    _COMPOSED_FROM[:] = [Path(path)]


RESOLVER = "genrelab_check"


def _check_resolver(*, _root_: Any) -> str:
    """``${genrelab_check:}``: validate the whole composition; return the digest of its ``conf/``."""
    from omegaconf import OmegaConf

    keys = [k for k in _root_ if k != "conf_digest"]
    params = OmegaConf.to_container(OmegaConf.masked_copy(_root_, keys), resolve=True)
    validate_params(params)  # type: ignore[arg-type]
    if not _COMPOSED_FROM:
        raise ConfigError("conf_digest: cannot tell which conf/ folder is being composed (is the genrelab "
                          "Hydra plugin, src/hydra_plugins, importable?)")
    return conf_digest(_COMPOSED_FROM[0])


def register_resolver() -> None:
    """Register ``${genrelab_check:}`` with OmegaConf (the Hydra plugin does it for DVC)."""
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver(RESOLVER, _check_resolver, replace=True)


def check_params_current(params: Mapping[str, Any], *, config_dir: str | os.PathLike = "conf",
                         params_path: str | os.PathLike = "params.yaml") -> None:
    """Fail when ``params.yaml`` was composed from another ``conf/`` than the one on disk.

    Plain ``dvc repro`` does not compose ``conf/``: after editing it, ``params.yaml`` is stale
    until ``genrelab params`` (or ``dvc exp run``) rewrites it. Without a ``conf/`` folder
    (parameters written by hand, or another layout) there is nothing to compare.

    Raises
    ------
    ConfigError
        Saying how to fix it.
    """
    if not Path(config_dir).is_dir():
        return
    fix = (f"run `genrelab params` to rewrite {params_path} (or `dvc exp run`, which composes {config_dir}/), "
           "then commit both")
    have = params.get("conf_digest")
    if have is None:
        raise ConfigError(f"{params_path} was not composed by this version of genrelab (no conf_digest): {fix}")
    want = conf_digest(config_dir)
    if have != want:
        raise ConfigError(f"{params_path} is older than {config_dir}/ (composed from conf_digest {have}, "
                          f"{config_dir}/ is now {want}): {fix}")


def compose(overrides: list[str] | None = None, *, config_dir: str | os.PathLike = "conf") -> dict[str, Any]:
    """Compose ``conf/`` with Hydra exactly as ``dvc exp run`` does.

    Parameters
    ----------
    overrides : list of str
        Hydra overrides such as ``["model=rf", "slicing.length_s=5"]``.
    config_dir : path
        The Hydra config folder.

    Returns
    -------
    params : dict
        What ``dvc exp run`` would write to ``params.yaml``: validated (every section, with
        :func:`validate_params`) and stamped with the digest of ``config_dir``.

    Raises
    ------
    ConfigError
        If an override does not compose or a value is invalid (the message names the key).
    """
    for _, params in compose_each([list(overrides or [])], config_dir=config_dir):
        return params
    raise AssertionError("unreachable")


def compose_each(override_lists: Iterable[Sequence[str]], *, config_dir: str | os.PathLike = "conf"
                 ) -> Iterator[tuple[list[str], dict[str, Any]]]:
    """Compose and validate many override lists in one Hydra initialisation (the slow part).

    Parameters
    ----------
    override_lists : iterable of list of str
        One list of Hydra overrides per composition.
    config_dir : path
        The Hydra config folder.

    Yields
    ------
    overrides, params : list of str, dict
        Each list and its composed, validated parameters (see :func:`compose`).

    Raises
    ------
    ConfigError
        At the first list that does not compose or holds an invalid value.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    register_resolver()
    folder = Path(config_dir).resolve()
    _record_config_dir(folder)
    with initialize_config_dir(str(folder), version_base=None):
        for overrides in override_lists:
            try:
                cfg = hydra_compose(config_name="config", overrides=list(overrides))
                OmegaConf.resolve(cfg)
            except Exception as exc:  # hydra and omegaconf raise several unrelated types
                raise ConfigError(composition_error(exc)) from exc
            yield list(overrides), OmegaConf.to_container(cfg)  # type: ignore[misc]


def composition_error(exc: BaseException) -> str:
    """The one line that explains why a composition failed.

    A :class:`ConfigError` raised while resolving ``${genrelab_check:}`` reaches the caller
    wrapped by OmegaConf; its own message (which names the key) is the useful one.
    """
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        if isinstance(node, ConfigError):
            return str(node)
        seen.add(id(node))
        node = node.__cause__ or node.__context__
    text = str(exc).split("Config search path:")[0]   # hydra's list of folders only buries the reason
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines)[:400] if lines else type(exc).__name__


def compose_yaml(overrides: list[str] | None = None, *, config_dir: str | os.PathLike = "conf") -> str:
    """The text ``dvc exp run`` writes to ``params.yaml`` for these overrides."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(compose(overrides, config_dir=config_dir)))
