"""The control plane's wall clock: the default `clock` of every part that takes one.

Only this default reads the time; tests and the pilot pass a clock of their own.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC)
