"""The seam between producers on the node (camera pipeline, sensors, health) and the outbox.

Producers emit plain facts; the sink makes the envelope (UUIDv7 id at the source, node id,
versions) and commits it durably. `ListSink` is the in-memory twin for unit tests.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

__all__ = ["EmittedRecord", "ListSink", "RecordSink"]


class RecordSink(Protocol):
    def emit(self, stream: str, kind: str, body: dict[str, Any], ts: datetime) -> None:
        """Record one fact durably for the uplink; `ts` is when the source observed it (UTC)."""
        ...


@dataclass(frozen=True)
class EmittedRecord:
    stream: str
    kind: str
    body: dict[str, Any]
    ts: datetime


@dataclass
class ListSink:
    """Keeps emitted records in memory (tests only)."""

    records: list[EmittedRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def emit(self, stream: str, kind: str, body: dict[str, Any], ts: datetime) -> None:
        with self._lock:
            self.records.append(EmittedRecord(stream, kind, body, ts))
