"""The outbox's storage seam: what the driver asks of a disk (SQLite) or of memory (the twin).

`SqliteStore` (store.py) is the real one; `MemoryStore` here keeps everything in dicts so
the whole outbox runs without a file for fast tests. Both carry out the core's plans.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cityedge.edge.outbox.machine import StoredRow

__all__ = ["Changes", "Loaded", "MemoryStore", "NewRow", "OutboxStorage", "QuarantineEntry"]


@dataclass(frozen=True, slots=True)
class NewRow:
    record_id: str
    stream: str
    seq: int
    appended_at: float
    expires_at: float | None
    payload: bytes


@dataclass(frozen=True)
class Changes:
    """One durable transaction of the core's plan: evictions and expiries out, new records in,
    the streams' last seqs and the drop counts to add."""

    inserts: Sequence[NewRow] = ()
    deletes: Sequence[tuple[str, int]] = ()
    last_seq: Mapping[str, int] = field(default_factory=dict)
    drops: Mapping[tuple[str, str], int] = field(default_factory=dict)


@dataclass(frozen=True)
class Loaded:
    rows: list[StoredRow]
    last_seq: dict[str, int]
    drops: dict[tuple[str, str], int]
    epoch: str


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    """A message refused at the node's door: where it came from, why, and its first bytes."""

    at: float
    source: str
    reason: str
    detail: str
    size: int  # the whole message's size; `raw` may be cut short
    raw: bytes


class OutboxStorage(Protocol):
    name: str

    def load(self) -> Loaded: ...

    def existing_ids(self, ids: Sequence[str]) -> set[str]: ...

    def write(self, changes: Changes) -> None: ...

    def read(self, stream: str, seqs: Sequence[int]) -> dict[int, tuple[str, bytes]]: ...

    def delete_stored(
        self, stream: str, seqs: Sequence[int], now: float, keep: tuple[float, int]
    ) -> None: ...

    def quarantine(self, entry: QuarantineEntry, keep: int) -> None: ...

    def quarantined(self, limit: int) -> list[QuarantineEntry]: ...

    def quarantine_counts(self) -> dict[str, int]: ...

    def close(self) -> None: ...


@dataclass
class MemoryStore:
    """Storage in dicts: the same contract as SQLite, minus durability (tests only)."""

    name: str = "memory"
    records: dict[tuple[str, int], NewRow] = field(default_factory=dict)
    last_seq: dict[str, int] = field(default_factory=dict)
    drops: Counter[tuple[str, str]] = field(default_factory=Counter)
    acked: dict[str, float] = field(default_factory=dict)
    entries: list[QuarantineEntry] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    epoch: str = field(default_factory=lambda: str(uuid.uuid4()))

    def load(self) -> Loaded:
        rows = [
            StoredRow(r.stream, r.seq, len(r.payload), r.appended_at, r.expires_at)
            for _, r in sorted(self.records.items())
        ]
        return Loaded(rows, dict(self.last_seq), dict(self.drops), self.epoch)

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        present = {r.record_id for r in self.records.values()} | set(self.acked)
        return present & set(ids)

    def write(self, changes: Changes) -> None:
        for key in changes.deletes:
            self.records.pop(key, None)
        for row in changes.inserts:
            self.records[(row.stream, row.seq)] = row
        self.last_seq.update(changes.last_seq)
        self.drops.update(changes.drops)

    def read(self, stream: str, seqs: Sequence[int]) -> dict[int, tuple[str, bytes]]:
        rows = (self.records.get((stream, seq)) for seq in seqs)
        return {r.seq: (r.record_id, r.payload) for r in rows if r is not None}

    def delete_stored(self, stream: str, seqs: Sequence[int], now: float, keep: tuple[float, int]) -> None:
        for seq in seqs:
            row = self.records.pop((stream, seq), None)
            if row is not None:
                self.acked[row.record_id] = now
        for rid in [rid for rid, at in self.acked.items() if at < now - keep[0]]:
            del self.acked[rid]
        while len(self.acked) > keep[1]:
            del self.acked[min(self.acked, key=self.acked.__getitem__)]

    def quarantine(self, entry: QuarantineEntry, keep: int) -> None:
        self.entries = [*self.entries, entry][-keep:] if keep else []
        self.counts[entry.reason] += 1

    def quarantined(self, limit: int) -> list[QuarantineEntry]:
        return list(reversed(self.entries))[:limit]

    def quarantine_counts(self) -> dict[str, int]:
        return dict(self.counts)

    def close(self) -> None:
        return None
