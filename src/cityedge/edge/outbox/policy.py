"""The outbox's policies: per-stream behaviour, the three bounds, resend timing, fair turns.

Plain values and pure functions; `machine.OutboxCore` applies them to its state. No I/O,
no clock: time and free disk space are passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, NamedTuple

from cityedge.protocol.errors import ConfigError

__all__ = [
    "DEFAULT_POLICIES",
    "DROP_REASONS",
    "Admission",
    "DropReason",
    "FairScheduler",
    "OutboxLimits",
    "ResendPolicy",
    "StreamPolicy",
    "Usage",
    "WhenFull",
    "admit",
    "evictions_needed",
    "expires_at",
    "policy_for",
]

WhenFull = Literal["drop_oldest", "reject_new"]
DropReason = Literal["full", "disk_floor", "expired", "evicted"]
DROP_REASONS: Final[tuple[DropReason, ...]] = ("full", "disk_floor", "expired", "evicted")

MiB: Final = 1024 * 1024


@dataclass(frozen=True)
class StreamPolicy:
    """How one stream behaves: its share of the link, what happens when full, how long it lives."""

    name: str
    priority: int
    when_full: WhenFull
    ttl_s: float | None = None

    def __post_init__(self) -> None:
        if self.priority < 1:
            raise ConfigError(f"outbox stream {self.name!r}: priority must be >= 1, got {self.priority}")
        if self.when_full not in ("drop_oldest", "reject_new"):
            raise ConfigError(f"outbox stream {self.name!r}: when_full must be drop_oldest or reject_new")
        if self.ttl_s is not None and self.ttl_s <= 0:
            raise ConfigError(f"outbox stream {self.name!r}: ttl_s must be > 0, got {self.ttl_s}")


@dataclass(frozen=True)
class OutboxLimits:
    """The three bounds of the outbox: payload bytes, records, and a floor of free disk."""

    max_bytes: int = 256 * MiB
    max_records: int = 1_000_000
    min_free_disk_bytes: int = 512 * MiB
    # How long (and how many) acknowledged ids are remembered, so a late redelivery of the
    # same record (e.g. from the node's local broker after a crash) is a duplicate.
    remember_acked_s: float = 6 * 3600.0
    remember_acked_max: int = 500_000

    def __post_init__(self) -> None:
        if (
            self.max_bytes < 1
            or self.max_records < 1
            or self.min_free_disk_bytes < 0
            or self.remember_acked_s < 0
            or self.remember_acked_max < 0
        ):
            raise ConfigError(f"outbox limits must be positive: {self}")


@dataclass(frozen=True)
class ResendPolicy:
    """How long a record the broker took may wait for the store's acknowledgement.

    The first wait is `timeout_s`; each time a stream's records time out and go again the
    wait doubles up to `cap_s` (a store that is away for days is not hammered), and the
    first store acknowledgement for the stream resets it. Half of each wait is jittered so
    a district's nodes do not resend in step.
    """

    timeout_s: float = 30.0
    cap_s: float = 600.0

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.cap_s < self.timeout_s:
            raise ConfigError(f"resend policy needs 0 < timeout_s <= cap_s, got {self}")

    def wait(self, attempt: int, rand: float) -> float:
        """The wait after `attempt` earlier timeouts, for `rand` uniform in [0, 1)."""
        ceiling = min(self.cap_s, self.timeout_s * float(2 ** min(attempt, 40)))
        return ceiling / 2.0 + ceiling / 2.0 * rand


DEFAULT_POLICIES: Final[Mapping[str, StreamPolicy]] = {
    p.name: p
    for p in (
        StreamPolicy("events", 8, "reject_new"),
        StreamPolicy("decisions", 8, "reject_new"),
        StreamPolicy("ota", 6, "reject_new"),
        StreamPolicy("heartbeat", 4, "drop_oldest", ttl_s=3600.0),
        StreamPolicy("telemetry", 2, "drop_oldest"),
    )
}


def policy_for(stream: str, policies: Mapping[str, StreamPolicy]) -> StreamPolicy:
    """A stream nobody configured still gets a home: lowest priority, oldest dropped first."""
    policy = policies.get(stream)
    return policy if policy is not None else StreamPolicy(stream, 1, "drop_oldest")


def expires_at(appended_at: float, policy: StreamPolicy, record_ttl_s: float | None) -> float | None:
    """The record's own time-to-live wins over its stream's; None means it never expires."""
    ttl = record_ttl_s if record_ttl_s is not None else policy.ttl_s
    return None if ttl is None else appended_at + ttl


class Usage(NamedTuple):
    """What the outbox holds now, in records and payload bytes (made for every admission)."""

    records: int
    bytes: int


@dataclass(frozen=True)
class Admission:
    """The verdict on one new record before any eviction.

    `accept` with `over_records == over_bytes == 0` means it fits as is; otherwise the
    caller may free that much from the stream's oldest pending records (drop_oldest only).
    """

    accept: bool
    reason: DropReason | None = None
    over_records: int = 0
    over_bytes: int = 0

    @property
    def needs_room(self) -> bool:
        return self.accept and (self.over_records > 0 or self.over_bytes > 0)


def admit(size: int, usage: Usage, limits: OutboxLimits, policy: StreamPolicy, free_disk: int) -> Admission:
    """Decide whether a record of `size` payload bytes may enter, and how much room it needs."""
    if free_disk < limits.min_free_disk_bytes:
        return Admission(False, "disk_floor")
    if size > limits.max_bytes:
        return Admission(False, "full")
    over_records = max(0, usage.records + 1 - limits.max_records)
    over_bytes = max(0, usage.bytes + size - limits.max_bytes)
    if (over_records or over_bytes) and policy.when_full == "reject_new":
        return Admission(False, "full")
    return Admission(True, None, over_records, over_bytes)


def evictions_needed(admission: Admission, evictable_sizes: Iterable[int]) -> int | None:
    """How many of the oldest pending records (sizes, oldest first) to evict so the new one fits.

    None when even evicting all of them would not make room: then nothing is evicted and the
    new record is refused, because losing old records for a record we refuse anyway helps nobody.
    """
    need_records, need_bytes = admission.over_records, admission.over_bytes
    count = 0
    for size in evictable_sizes:
        if need_records <= 0 and need_bytes <= 0:
            break
        count += 1
        need_records -= 1
        need_bytes -= size
    return count if need_records <= 0 and need_bytes <= 0 else None


@dataclass
class FairScheduler:
    """Stride scheduling over streams: each pick costs records/priority of virtual time.

    The stream with the least virtual time is served next, so a stream gets a share of records
    in proportion to its priority and none starves. A stream that was idle rejoins at the
    current virtual time: idling earns no credit to burst with later, and a newly ready
    high-priority stream is served at once.
    """

    _pass: dict[str, float] = field(default_factory=dict)
    _vtime: float = 0.0

    def pick(self, ready: Mapping[str, int]) -> str | None:
        """The next stream among `ready` (stream -> priority), or None when nothing is ready."""
        if not ready:
            return None
        for stream in ready:
            self._pass[stream] = max(self._pass.get(stream, self._vtime), self._vtime)
        chosen = min(ready, key=lambda s: (self._pass[s], -ready[s], s))
        self._vtime = self._pass[chosen]
        return chosen

    def charge(self, stream: str, records: int, priority: int) -> None:
        """Account `records` sent from `stream`: its next turn comes later the more it took."""
        self._pass[stream] = self._pass.get(stream, self._vtime) + max(1, records) / priority
