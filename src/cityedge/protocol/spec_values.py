"""The scalar grammars of the use-case spec: durations with units, '40 fps', '24h raw, ...'.

Pure: each takes the YAML value of one field and returns a typed value or raises ValueError
with a message that says what was expected; `protocol.spec` adds the line and the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cityedge.protocol.spec_model import INCIDENT_KINDS, AcceptanceTest, LatencySlo, RetentionSpec, SyncSlo

__all__ = [
    "acceptance",
    "count",
    "latency",
    "milliseconds",
    "mix",
    "parse_duration",
    "retention",
    "sync",
    "throughput",
]

_NUMBER = r"(\d+(?:\.\d+)?)"
_UNITS = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(rf"^{_NUMBER}\s*([a-z]+)$")


def parse_duration(text: str) -> float:
    """'150ms', '5 s', '24h' -> seconds; ValueError names the bad unit."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a duration (a number and a unit: ms, s, min, h, d)")
    if m.group(2) not in _UNITS:
        raise ValueError(f"unknown unit {m.group(2)!r} in {text!r} (use ms, s, min, h or d)")
    return float(m.group(1)) * _UNITS[m.group(2)]


def latency(value: Any) -> LatencySlo:
    if isinstance(value, Mapping):
        return LatencySlo(milliseconds(_get(value, "target")), float(value.get("percentile", 99.0)))
    text = str(value).strip()
    if text.endswith("local"):
        text = text.removesuffix("local").strip()
    return LatencySlo(milliseconds(text))


def milliseconds(value: Any) -> float:
    return parse_duration(str(value).lstrip("<").strip()) * 1000.0


def throughput(value: Any) -> float:
    m = re.match(rf"^{_NUMBER}\s*(\w+)$", str(value).strip())
    if not m:
        raise ValueError(f"{value!r} is not a frame rate such as '40 fps'")
    if m.group(2) != "fps":
        raise ValueError(f"unknown unit {m.group(2)!r} (throughput is in fps)")
    return float(m.group(1))


def retention(value: Any) -> RetentionSpec:
    m = re.match(r"^(.+?)\s+raw\s*(?:,\s*metadata\s*->\s*cloud)?$", str(value).strip())
    if not m:
        raise ValueError(f"{value!r} is not like '24h raw, metadata -> cloud'")
    return RetentionSpec(parse_duration(m.group(1)), "metadata" in str(value))


_ACCEPTANCE = re.compile(
    rf"^controlled run\s+(.+?),\s*(\d+)\s+incidents,\s*<\s*{_NUMBER}\s*%\s*fp$", re.IGNORECASE
)


def acceptance(value: Any) -> AcceptanceTest:
    if isinstance(value, Mapping):
        return AcceptanceTest(
            parse_duration(str(_get(value, "run"))) / 3600.0,
            int(_get(value, "incidents")),
            float(str(_get(value, "max_fp")).rstrip("%")) / 100.0,
            float(value.get("min_recall", 0.9)),
        )
    m = _ACCEPTANCE.match(str(value).strip())
    if not m:
        raise ValueError(f"{value!r} is not like 'Controlled run 48h, 10 incidents, <5% FP'")
    return AcceptanceTest(parse_duration(m.group(1)) / 3600.0, int(m.group(2)), float(m.group(3)) / 100.0)


def sync(value: Any) -> SyncSlo:
    if isinstance(value, Mapping):
        return SyncSlo(
            milliseconds(_get(value, "target")) / 1000.0,
            float(value.get("percentile", 99.0)),
            milliseconds(value.get("drain", "30s")) / 1000.0,
        )
    return SyncSlo(milliseconds(value) / 1000.0)


def _get(mapping: Mapping[str, Any], key: str) -> Any:
    if key not in mapping:
        raise ValueError(f"missing {key!r}")
    return mapping[key]


def count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not a whole number")
    return value


def mix(value: Any) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise ValueError("expected a mapping of incident kind to count per slot")
    out = {}
    for kind, n in value.items():
        if kind not in INCIDENT_KINDS:
            raise ValueError(f"unknown incident kind {kind!r} (known: {', '.join(INCIDENT_KINDS)})")
        if count(n) not in (0, 1):
            raise ValueError(f"{kind}: {n} per slot; a camera stages 0 or 1 of each kind per slot")
        out[str(kind)] = n
    return out
