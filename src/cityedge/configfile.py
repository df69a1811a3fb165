"""Load one typed config object from YAML; errors name the file and the field.

Every process has one pydantic config (unknown keys rejected) validated at start-up. Other
config-like inputs (camera sections, zone files) use the same reader and error format.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from cityedge.protocol.errors import ConfigError

__all__ = ["load_config", "load_with_overrides", "parse_config", "read_yaml"]

T = TypeVar("T", bound=BaseModel)


def parse_config(model: type[T], data: Any, source: str, what: str = "invalid config") -> T:
    """Validate `data` as `model`; the error says `source: what: field: problem; ...`."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{source}: {what}: {problems}") from None


def read_yaml(path: Path, what: str = "config") -> Any:
    """The parsed YAML of `path`; a missing file or bad YAML is a ConfigError naming the line."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} not valid YAML: {getattr(exc, 'problem', exc)}") from None


def load_config(model: type[T], path: Path) -> T:
    return parse_config(model, read_yaml(path), str(path))


def _set(data: dict[str, Any], dotted: str, value: Any, path: Path | None) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{path}: {key} must be a mapping (it holds {leaf})")
    node[leaf] = value


def load_with_overrides(model: type[T], path: Path | None, overrides: Mapping[str, Any]) -> T:
    """`model` from the YAML at `path` (if any) with command-line `overrides` on top.

    Override keys are dotted paths into the file (`api.port`); None means "not given", so the
    file's value (or the model's default) stays.
    """
    data = read_yaml(path) if path is not None else {}
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    merged: dict[str, Any] = dict(data or {})
    given = {k: v for k, v in overrides.items() if v is not None}
    for dotted, value in given.items():
        _set(merged, dotted, value, path)
    flags = ", ".join(f"--{k.split('.')[-1].replace('_', '-')}" for k in given)
    source = " + ".join(x for x in (str(path) if path else "", flags and f"options {flags}") if x)
    return parse_config(model, merged, source or "options")
