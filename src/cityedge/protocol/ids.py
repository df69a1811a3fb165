"""Record ids: UUIDv7 (RFC 9562), made once at the source.

Time-ordered ids keep database indexes append-mostly. Time is passed in (milliseconds
since the Unix epoch) so the function stays pure; randomness comes from `os.urandom`.
"""

from __future__ import annotations

import os
import uuid

__all__ = ["is_uuid7", "uuid7", "uuid7_ms"]

_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0x2 << 62


def uuid7(unix_ms: int, rand: bytes | None = None) -> uuid.UUID:
    """Return a UUIDv7 for the given millisecond timestamp (74 random bits)."""
    if not 0 <= unix_ms < 1 << 48:
        raise ValueError(f"unix_ms out of range for UUIDv7: {unix_ms}")
    raw = rand if rand is not None else os.urandom(10)
    if len(raw) != 10:
        raise ValueError("rand must be 10 bytes")
    r = int.from_bytes(raw, "big")
    rand_a = (r >> 62) & 0xFFF
    rand_b = r & ((1 << 62) - 1)
    value = (unix_ms << 80) | _VERSION_7 | (rand_a << 64) | _VARIANT_RFC | rand_b
    return uuid.UUID(int=value)


def uuid7_ms(value: uuid.UUID) -> int:
    """The millisecond timestamp a UUIDv7 was made with."""
    return value.int >> 80


def is_uuid7(value: uuid.UUID) -> bool:
    return value.version == 7 and value.variant == uuid.RFC_4122
