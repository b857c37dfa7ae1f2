"""Reading ``params.yaml`` and validating each section at the edge.

Stage scripts never use ``@hydra.main`` (it ignores DVC's ``-S``); they read the composed
``params.yaml`` through :func:`load_params` and turn their own section into a typed, validated
settings object with :func:`from_mapping`. An unknown choice or an impossible value fails at
start-up with a :class:`ConfigError` that names the key and the valid choices.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

__all__ = ["ConfigError", "load_params", "get_section", "from_mapping", "require_choice", "compose"]

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
        What ``dvc exp run`` would write to ``params.yaml``.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(str(Path(config_dir).resolve()), version_base=None):
        cfg = hydra_compose(config_name="config", overrides=list(overrides or []))
    OmegaConf.resolve(cfg)
    return OmegaConf.to_container(cfg)  # type: ignore[return-value]


def compose_yaml(overrides: list[str] | None = None, *, config_dir: str | os.PathLike = "conf") -> str:
    """The text ``dvc exp run`` writes to ``params.yaml`` for these overrides."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(compose(overrides, config_dir=config_dir)))
