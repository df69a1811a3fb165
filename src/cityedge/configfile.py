"""Load one typed config object from YAML; errors name the file and the field.

Every process has one pydantic config (unknown keys rejected) validated at start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from cityedge.protocol.errors import ConfigError

__all__ = ["load_config", "parse_config"]

T = TypeVar("T", bound=BaseModel)


def parse_config(model: type[T], data: Any, source: str) -> T:
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{source}: invalid config: {problems}") from None


def load_config(model: type[T], path: Path) -> T:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_config(model, data, str(path))
