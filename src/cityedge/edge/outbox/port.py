"""The outbox as its users see it: result types and the port the uplink talks to.

`Outbox` (SQLite) and `MemoryOutbox` (the in-memory twin for fast tests) both implement
`OutboxPort`; the uplink depends on this Protocol, never on a concrete outbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from cityedge.edge.outbox.machine import RefusalReason, StreamState
from cityedge.protocol.acks import StreamAck
from cityedge.protocol.envelope import Envelope

__all__ = ["AppendResult", "Claim", "Claimed", "OutboxPort", "OutboxStats", "StreamStats", "stream_stats"]


@dataclass(frozen=True, slots=True)
class AppendResult:
    """`reason` is "full", "disk_floor" or "duplicate" when not accepted; `dropped` counts evictions."""

    accepted: bool
    record_id: str
    seq: int | None
    reason: RefusalReason | None
    dropped: int


@dataclass(frozen=True, slots=True)
class Claimed:
    """A record handed to the uplink; `payload` is exactly the bytes committed at append."""

    record_id: str
    stream: str
    seq: int
    payload: bytes


class Claim(NamedTuple):
    """One batch for one publish: records of one stream, in seq order."""

    stream: str
    records: list[Claimed]

    @property
    def seqs(self) -> list[int]:
        return [r.seq for r in self.records]

    @property
    def ids(self) -> list[str]:
        return [r.record_id for r in self.records]


@dataclass(frozen=True)
class StreamStats:
    pending: int
    inflight: int
    bytes: int
    oldest_age_s: float | None
    last_seq: int
    sent: int = 0  # the broker has them; waiting for the store's acknowledgement
    oldest_sent_age_s: float | None = None
    appended: int = 0  # counters since this process opened the outbox
    acked: int = 0  # acknowledged by the store and deleted
    duplicates: int = 0
    resent: int = 0  # sent again after the store did not acknowledge them in time

    @property
    def records(self) -> int:
        return self.pending + self.inflight + self.sent


@dataclass(frozen=True)
class OutboxStats:
    streams: dict[str, StreamStats]
    total_pending: int
    total_inflight: int
    total_records: int
    total_bytes: int
    drops: dict[tuple[str, str], int] = field(default_factory=dict)  # persisted across restarts
    total_sent: int = 0

    @property
    def undelivered(self) -> int:
        """Records the store has not acknowledged yet (pending, in flight or sent)."""
        return self.total_records


def stream_stats(s: StreamState, oldest_age: float | None, oldest_sent_age: float | None) -> StreamStats:
    return StreamStats(
        pending=s.pending,
        inflight=len(s.inflight),
        bytes=s.index.bytes,
        oldest_age_s=oldest_age,
        last_seq=s.last_seq,
        sent=len(s.sent),
        oldest_sent_age_s=oldest_sent_age,
        appended=s.appended,
        acked=s.acked,
        duplicates=s.duplicates,
        resent=s.resent,
    )


class OutboxPort(Protocol):
    """What the uplink needs from an outbox. Every method is safe to call from any thread."""

    @property
    def epoch(self) -> str:
        """Names this outbox; a store acknowledgement for another epoch deletes nothing."""
        ...

    def append_many(self, envs: Sequence[Envelope]) -> list[AppendResult]: ...

    def wait_for_work(self, timeout: float) -> bool:
        """Block until a record is pending (or a sent one is due again), or `timeout` passes."""
        ...

    def claim(self, max_records: int, max_bytes: int) -> Claim | None: ...

    def sent(self, stream: str, seqs: Sequence[int]) -> None:
        """The broker acknowledged the publish (PUBACK): wait for the store."""
        ...

    def release(self, stream: str, seqs: Sequence[int]) -> None:
        """The publish failed: pending again."""
        ...

    def release_all(self) -> int:
        """The link dropped: every record in flight is pending again."""
        ...

    def stored(self, ack: StreamAck) -> int:
        """The store's acknowledgement: delete what it names; returns how many left."""
        ...

    def stats(self) -> OutboxStats: ...
