"""How the store's row types become JSON-ready dicts for the API, the dashboard and the CLI:
every field as it is, but a timestamp in ISO 8601 and a mapping as a plain dict."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

__all__ = ["JsonRow"]


class JsonRow:
    """Mixed into a row dataclass: `as_dict()` holds every attribute of the row (a subclass's
    too), so a row that must leave some out (`DeviceRecord`) writes its own."""

    def as_dict(self) -> dict[str, Any]:
        return {name: _json_ready(value) for name, value in vars(self).items()}


def _json_ready(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    return value
