"""What a record may be: one contract, checked at the node's door and again by ingest.

A record that breaks it is refused for what it is (never retried): too big, nested too
deep, a timestamp outside the range the stores and clocks handle, a string the stores cannot
hold (NUL), a number outside 64-bit integers or not finite. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from cityedge.protocol.envelope import Envelope
from cityedge.protocol.errors import ContractError

__all__ = [
    "CONTRACT_REASONS",
    "DEFAULT_LIMITS",
    "ContractReason",
    "RecordLimits",
    "check_envelope",
    "check_size",
]

ContractReason = Literal["too_big", "too_deep", "bad_ts", "bad_string", "bad_number", "malformed", "no_id"]
CONTRACT_REASONS: Final[tuple[ContractReason, ...]] = (
    "too_big",
    "too_deep",
    "bad_ts",
    "bad_string",
    "bad_number",
    "malformed",
    "no_id",
)

_INT64: Final = 2**63
# Every digit to "9", everything else to " ": a run of 19 nines is a number of 19+ digits.
_DIGITS_ONLY: Final = bytes(57 if 48 <= b <= 57 else 32 for b in range(256))
_NINETEEN: Final = b"9" * 19
TS_MIN: Final = datetime(1970, 1, 1, tzinfo=UTC)
TS_MAX: Final = datetime(2200, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RecordLimits:
    """Bounds on one record. One uplink message (a batch) must hold at least one record,
    so `max_record_bytes` stays well under ingest's message limit (256 KiB by default)."""

    max_record_bytes: int = 64 * 1024
    max_depth: int = 32


DEFAULT_LIMITS: Final = RecordLimits()


def check_size(size: int, limits: RecordLimits = DEFAULT_LIMITS, what: str = "record") -> None:
    """Refuse bytes over the limit before anyone spends time parsing them."""
    if size > limits.max_record_bytes:
        raise ContractError(
            "too_big", f"{what} is {size} bytes, over the limit of {limits.max_record_bytes} bytes"
        )


def check_envelope(env: Envelope, limits: RecordLimits = DEFAULT_LIMITS, raw: bytes | None = None) -> None:
    """Raise ContractError (with its reason) when `env` breaks the contract.

    `raw`, the JSON `env` was decoded from, allows a fast path: JSON cannot hold a non-finite
    number, so when the text has too few brackets to nest too deep, no escaped NUL and no
    integer of 19 digits or more, only the timestamp is left to check.
    """
    _check_ts(env.ts)
    if raw is not None and _plainly_fine(raw, limits):
        return
    _check_strings_and_numbers(env.kind, "kind")
    for key, value in env.ver.items():
        _check_strings_and_numbers(key, "ver")
        _check_strings_and_numbers(value, f"ver.{key}")
    _check_tree(env.body, "body", limits.max_depth)
    if env.extra:
        _check_tree(env.extra, "extra field", limits.max_depth)


def _plainly_fine(raw: bytes, limits: RecordLimits) -> bool:
    return (
        raw.count(b"{") + raw.count(b"[") <= limits.max_depth
        and b"\\u0000" not in raw
        and _NINETEEN not in raw.translate(_DIGITS_ONLY)
    )


def _check_ts(ts: datetime) -> None:
    if ts.tzinfo is None:
        raise ContractError("bad_ts", "ts has no UTC offset")
    try:
        utc = ts.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ContractError("bad_ts", f"ts {ts.isoformat()} cannot be expressed in UTC") from None
    if not TS_MIN <= utc < TS_MAX:
        raise ContractError(
            "bad_ts", f"ts {utc.isoformat()} is outside {TS_MIN.year}-01-01 .. {TS_MAX.year}-01-01 UTC"
        )


def _check_tree(root: Any, where: str, max_depth: int) -> None:
    """Walk without recursion, so a hostile nesting cannot exhaust the stack."""
    stack: list[tuple[Any, str, int]] = [(root, where, 1)]
    while stack:
        value, path, depth = stack.pop()
        if depth > max_depth:
            raise ContractError("too_deep", f"{where} is nested deeper than {max_depth} levels (at {path})")
        for child, child_path in _children(value, path):
            stack.append((child, child_path, depth + 1))


def _children(value: Any, path: str) -> Iterator[tuple[Any, str]]:
    if isinstance(value, dict):
        for key, child in value.items():
            if not isinstance(key, str):
                raise ContractError("malformed", f"{path} has a non-string key {key!r}")
            _check_strings_and_numbers(key, f"{path} key")
            yield child, f"{path}.{key}"
    elif isinstance(value, list | tuple):
        for index, child in enumerate(value):
            yield child, f"{path}[{index}]"
    else:
        _check_strings_and_numbers(value, path)


def _check_strings_and_numbers(value: Any, path: str) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise ContractError("bad_string", f"{path} holds a NUL character, which the stores cannot keep")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ContractError("bad_string", f"{path} holds a lone surrogate (not valid UTF-8)") from None
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            raise ContractError("bad_number", f"{path} = {value} does not fit a 64-bit integer")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ContractError("bad_number", f"{path} is {value}, not a finite number")
