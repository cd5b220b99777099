"""Reading typed configuration sections from TOML or YAML files.

Each subsystem owns its settings and the loader of its section, beside them:
``sim.params.load_world_params`` (``[world]``), ``marl.config.load_train_config`` (``[train]``),
``ledger.config.load_ledger_config`` (``[ledger]``). This module, at the bottom of the layers,
only reads files and turns a mapping into one of those dataclasses, rejecting unknown keys and
wrong types with a message that names the offending field.
"""

from __future__ import annotations

import dataclasses
import numbers
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from chainsense.errors import ConfigError

T = TypeVar("T")


def is_number(value: object) -> bool:
    """Whether ``value`` is a real number (numpy's too) and not a bool: ``True`` would pass
    every range check as 1, so a flag typed where a number belongs is caught here."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_integer(value: object) -> bool:
    """Whether ``value`` is an integer (numpy's too) and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_number(field: str, value: object, low: float, high: float) -> None:
    """ConfigError naming ``field`` unless ``value`` is a number (not a bool) in [low, high]
    (NaN is in no range)."""
    if not (is_number(value) and low <= value <= high):  # type: ignore[operator]
        raise ConfigError(field, f"must be a number in [{low:g}, {high:g}], got {value!r}")


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file into a dict."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("config", f"file not found: {p}")
    try:
        text = p.read_text(encoding="utf-8")
        if p.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif p.suffix in {".yaml", ".yml"}:
            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError("config", f"unsupported file type {p.suffix!r} (use .toml or .yaml)")
    except (tomllib.TOMLDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError("config", f"cannot parse {p.name}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError("config", f"{p.name} must hold a table of sections")
    return data


def _coerce(field: str, value: Any, annotation: Any) -> Any:
    """Check ``value`` against a simple annotation (int, float, bool, str, tuples, Literal)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        if value not in typing.get_args(annotation):
            raise ConfigError(field, f"must be one of {typing.get_args(annotation)}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None and len(args) < len(typing.get_args(annotation)):
            return None
        for arg in args:
            try:
                return _coerce(field, value, arg)
            except ConfigError:
                continue
        raise ConfigError(field, f"has the wrong type: {value!r}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(field, f"must be a list, got {value!r}")
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(f"{field}[{i}]", v, args[0]) for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(field, f"must have {len(args)} entries, got {len(value)}")
        return tuple(
            _coerce(f"{field}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(field, f"must be true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(field, f"must be an integer, got {value!r}")
        return value
    if annotation is float:
        if not is_number(value):
            raise ConfigError(field, f"must be a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(field, f"must be a string, got {value!r}")
        return value
    return value


def from_mapping(cls: type[T], data: Mapping[str, Any], section: str = "") -> T:
    """Build the dataclass ``cls`` from ``data``; unknown keys and bad types name the field.

    Values are only type-checked here; range checks belong to the dataclass's own
    ``__post_init__`` so that they also guard objects built in code.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(section or cls.__name__, "must be a table of settings")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    prefix = f"{section}." if section else ""
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{prefix}{unknown[0]}", f"unknown setting (known: {', '.join(sorted(names))})"
        )
    kwargs = {k: _coerce(f"{prefix}{k}", v, hints[k]) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        if section and not exc.field.startswith(prefix):
            raise ConfigError(f"{prefix}{exc.field}", str(exc).split(": ", 1)[-1]) from exc
        raise


def read_section(config: str | Path | None, name: str) -> dict[str, Any]:
    """The ``[name]`` table of a config file; empty without a file or without that section."""
    if config is None:
        return {}
    section = load_file(config).get(name, {})
    if not isinstance(section, dict):
        raise ConfigError(name, "must be a table of settings")
    return section
