"""Settings files: one YAML reader and one builder of frozen dataclasses from plain data.

Every configuration file of the project (training runs, the data engine) is read here, so
that an unknown key, a section that is not a mapping, or a missing file gets the same clear
error naming the file and the key.
"""
from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import yaml


def load_yaml_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """The top-level mapping of a YAML file (empty for an empty file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the {what} must be a mapping")
    return data


def _dataclass_items(kind: Any) -> type | None:
    """The dataclass ``X`` of a ``tuple[X, ...]`` hint, else None."""
    if typing.get_origin(kind) is tuple:
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis and dataclasses.is_dataclass(args[0]):
            return args[0]
    return None


def _as_tuple(value: list) -> tuple:
    return tuple(tuple(v) if isinstance(v, list) else v for v in value)


def build_dataclass(cls: type, data: Any, where: str):
    """A (frozen) dataclass from a dict: nested dataclasses and tuples of them recursively,
    other lists to tuples; an unknown key is an error naming it and ``where`` it was."""
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{where} has unknown keys: {sorted(unknown)}")
    kwargs = {}
    for name, value in data.items():
        kind, items = hints[name], _dataclass_items(hints[name])
        if dataclasses.is_dataclass(kind):
            value = build_dataclass(kind, value or {}, f"{where}.{name}")
        elif items is not None:
            value = tuple(build_dataclass(items, v, f"{where}.{name}[{i}]")
                          for i, v in enumerate(value or ()))
        elif isinstance(value, list):
            value = _as_tuple(value)
        kwargs[name] = value
    return cls(**kwargs)
