"""The outbox's pure core: what happens to every record, decided from state and the clock.

A record is pending, then in flight (published, awaiting the broker's PUBACK), then sent
(the broker has it, awaiting the store's acknowledgement), then gone (the store has it).
In flight goes back to pending when the link drops; sent goes back to pending when the
store does not acknowledge it in time. Evictions (drop_oldest), refusals, time-to-live
expiry and duplicates are decided here too, and every drop is counted by stream and reason.

No I/O and no clock: the SQLite driver (`driver.py`) and the in-memory twin (`memory.py`)
ask the core, then carry out what it returns (rows to write, seqs to delete or read).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from cityedge.edge.outbox.policy import (
    FairScheduler,
    OutboxLimits,
    ResendPolicy,
    StreamPolicy,
    Usage,
    admit,
    evictions_needed,
    expires_at,
    policy_for,
)
from cityedge.edge.outbox.seqindex import SeqIndex

__all__ = ["Admitted", "OutboxCore", "RefusalReason", "Refused", "StoredRow", "StreamState"]

RefusalReason = Literal["full", "disk_floor", "duplicate"]


@dataclass(frozen=True, slots=True)
class Admitted:
    """Write the record as `seq`; delete `evicted` (older seqs of the same stream) first."""

    seq: int
    expires_at: float | None
    evicted: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Refused:
    reason: RefusalReason


@dataclass(frozen=True, slots=True)
class StoredRow:
    """What the core needs to know of a stored record to rebuild itself after a restart."""

    stream: str
    seq: int
    size: int
    appended_at: float
    expires_at: float | None


@dataclass
class StreamState:
    """One stream as the core sees it; the index holds every stored record's seq and size."""

    index: SeqIndex = field(default_factory=SeqIndex)
    last_seq: int = 0
    inflight: set[int] = field(default_factory=set)
    sent: dict[int, float] = field(default_factory=dict)  # seq -> resend deadline
    sent_at: dict[int, float] = field(default_factory=dict)  # seq -> when the broker took it
    scan_from: int = 0  # no pending record has a lower seq
    resend_attempt: int = 0
    appended: int = 0  # counters since this process opened the outbox
    acked: int = 0
    duplicates: int = 0
    resent: int = 0

    @property
    def pending(self) -> int:
        return self.index.records - len(self.inflight) - len(self.sent)

    def is_pending(self, seq: int) -> bool:
        return seq not in self.inflight and seq not in self.sent


class OutboxCore:
    """The whole outbox state in memory (no payloads); every method takes `now` when it needs it."""

    def __init__(
        self,
        policies: Mapping[str, StreamPolicy],
        limits: OutboxLimits,
        resend: ResendPolicy,
        rand: Callable[[], float],
    ) -> None:
        self.policies = dict(policies)
        self.limits = limits
        self.resend = resend
        self._rand = rand
        self.streams: dict[str, StreamState] = {}
        self.drops: Counter[tuple[str, str]] = Counter()
        self._expiry: list[tuple[float, str, int]] = []  # heap of (expires_at, stream, seq)
        # heap of (resend deadline, stream, seqs) per acknowledged batch; an entry is stale
        # once none of its seqs is still sent with that deadline (dropped lazily)
        self._due: list[tuple[float, str, tuple[int, ...]]] = []
        self._scheduler = FairScheduler()
        self._records = 0  # what the whole outbox holds (every stream, every state)
        self._bytes = 0

    # -- building ------------------------------------------------------------------------------
    def restore(
        self, rows: Iterable[StoredRow], last_seq: Mapping[str, int], drops: Mapping[tuple[str, str], int]
    ) -> None:
        """Load what is on disk (rows in (stream, seq) order). In-flight and sent states are
        memory only: after a restart every record is pending and goes again."""
        for row in rows:
            s = self.stream(row.stream)
            s.index.add(row.seq, row.size, row.appended_at)
            if row.expires_at is not None:
                heapq.heappush(self._expiry, (row.expires_at, row.stream, row.seq))
        for name, seq in last_seq.items():
            self.stream(name).last_seq = max(self.stream(name).last_seq, seq)
        self.drops.update(drops)
        self._recount()

    def carry_over(self, old: OutboxCore) -> None:
        """After a rebuild from disk, keep what only memory knew: in flight, sent, counters."""
        for name, prev in old.streams.items():
            s = self.stream(name)
            s.inflight = {q for q in prev.inflight if s.index.size(q) is not None}
            s.sent = {q: d for q, d in prev.sent.items() if s.index.size(q) is not None}
            s.sent_at = {q: t for q, t in prev.sent_at.items() if q in s.sent}
            s.resend_attempt = prev.resend_attempt
            s.appended, s.acked, s.duplicates, s.resent = (
                prev.appended,
                prev.acked,
                prev.duplicates,
                prev.resent,
            )
        self._rebuild_due()

    @property
    def usage(self) -> Usage:
        return Usage(self._records, self._bytes)

    def stream(self, name: str) -> StreamState:
        s = self.streams.get(name)
        if s is None:
            s = self.streams[name] = StreamState()
        return s

    def policy(self, name: str) -> StreamPolicy:
        return policy_for(name, self.policies)

    # -- producers -----------------------------------------------------------------------------
    def next_seq(self, stream: str) -> int:
        return self.stream(stream).last_seq + 1

    def admit(
        self, stream: str, size: int, ttl_s: float | None, now: float, free_disk: int, *, duplicate: bool
    ) -> Admitted | Refused:
        """Decide one new record of `size` bytes (encoded as `next_seq(stream)`) and apply it."""
        s = self.stream(stream)
        if duplicate:
            s.duplicates += 1
            return Refused("duplicate")
        policy = self.policy(stream)
        verdict = admit(size, self.usage, self.limits, policy, free_disk)
        evicted: tuple[int, ...] = ()
        if verdict.accept and verdict.needs_room:
            candidates = self._evictable(s, verdict.over_records, verdict.over_bytes)
            count = evictions_needed(verdict, (size for _, size in candidates))
            if count is None:
                return self._refuse(stream, "full")
            evicted = tuple(seq for seq, _ in candidates[:count])
            for seq in evicted:
                self._forget(stream, seq)
            self.drops[(stream, "evicted")] += len(evicted)
        elif not verdict.accept:
            return self._refuse(stream, "disk_floor" if verdict.reason == "disk_floor" else "full")
        s.last_seq += 1
        s.index.add(s.last_seq, size, now)
        s.appended += 1
        self._records, self._bytes = self._records + 1, self._bytes + size
        expiry = expires_at(now, policy, ttl_s)
        if expiry is not None:
            heapq.heappush(self._expiry, (expiry, stream, s.last_seq))
        return Admitted(s.last_seq, expiry, evicted)

    # -- the uplink ----------------------------------------------------------------------------
    def expire(self, now: float) -> list[tuple[str, int]]:
        """Pending records whose time-to-live has passed leave now (counted "expired").
        Returns (stream, seq) to delete. A record in flight or sent expires once it is back."""
        gone: list[tuple[str, int]] = []
        later: list[tuple[float, str, int]] = []
        while self._expiry and self._expiry[0][0] <= now:
            item = heapq.heappop(self._expiry)
            _, name, seq = item
            s = self.streams.get(name)
            if s is None or s.index.size(seq) is None:
                continue
            if not s.is_pending(seq):
                later.append(item)
                continue
            self._forget(name, seq)
            self.drops[(name, "expired")] += 1
            gone.append((name, seq))
        for item in later:
            heapq.heappush(self._expiry, item)
        return gone

    def requeue_overdue(self, now: float) -> int:
        """Sent records the store has not acknowledged in time are pending again (and go again)."""
        due: dict[str, list[int]] = {}
        while self._due and self._due[0][0] <= now:
            deadline, name, seqs = heapq.heappop(self._due)
            s = self.streams.get(name)
            if s is None:
                continue
            late = [seq for seq in seqs if s.sent.get(seq) == deadline]
            if late:
                due.setdefault(name, []).extend(late)
        for name, back in due.items():
            s = self.streams[name]
            for seq in back:
                del s.sent[seq]
                s.sent_at.pop(seq, None)
            s.scan_from = min(s.scan_from, *back)
            s.resend_attempt += 1
            s.resent += len(back)
        return sum(len(back) for back in due.values())

    def claim(self, max_records: int, max_bytes: int) -> tuple[str, list[int]] | None:
        """The next batch: one stream (fair by priority), its oldest pending seqs, now in flight.
        At least one record even if it alone is over `max_bytes`."""
        ready = {n: self.policy(n).priority for n, s in self.streams.items() if s.pending > 0}
        name = self._scheduler.pick(ready)
        if name is None:
            return None
        s = self.streams[name]
        taken: list[int] = []
        used = 0
        next_seq = s.scan_from
        for seq, size in s.index.live_from(s.scan_from):
            next_seq = seq
            if not s.is_pending(seq):
                continue
            if len(taken) >= max_records or (taken and used + size > max_bytes):
                break
            taken.append(seq)
            used += size
        else:
            next_seq = s.last_seq + 1
        s.scan_from = next_seq
        s.inflight.update(taken)
        self._scheduler.charge(name, len(taken), ready[name])
        return name, taken

    def sent(self, stream: str, seqs: Iterable[int], now: float) -> None:
        """The broker acknowledged these: they wait for the store's acknowledgement."""
        s = self.streams.get(stream)
        if s is None:
            return
        deadline = now + self.resend.wait(s.resend_attempt, self._rand())
        moved = tuple(seq for seq in seqs if seq in s.inflight)
        for seq in moved:
            s.inflight.discard(seq)
            s.sent[seq] = deadline
            s.sent_at[seq] = now
        if moved:
            heapq.heappush(self._due, (deadline, stream, moved))
            if len(self._due) > 64 + 4 * sum(len(st.sent) for st in self.streams.values()):
                self._rebuild_due()

    def release(self, stream: str, seqs: Iterable[int]) -> None:
        """The publish failed: pending again, ahead of newer records."""
        s = self.streams.get(stream)
        if s is None:
            return
        back = [seq for seq in seqs if seq in s.inflight]
        s.inflight.difference_update(back)
        if back:
            s.scan_from = min(s.scan_from, *back)

    def release_all(self) -> int:
        """The link is gone: everything in flight is pending again (sent records keep waiting)."""
        count = 0
        for s in self.streams.values():
            if s.inflight:
                count += len(s.inflight)
                s.scan_from = min(s.scan_from, *s.inflight)
                s.inflight.clear()
        return count

    def stored(self, stream: str, ranges: Sequence[tuple[int, int]]) -> list[tuple[int, float]]:
        """The store has these seqs: they leave, whatever state they are in. Returns (seq,
        appended_at) of those that were still here (to delete); unknown or repeated ones are
        ignored."""
        s = self.streams.get(stream)
        if s is None:
            return []
        gone: list[tuple[int, float]] = []
        for low, high in ranges:
            for seq, _ in s.index.live_from(low):
                if seq > high:
                    break
                gone.append((seq, s.index.appended_at(seq)))
        for seq, _ in gone:
            self._forget(stream, seq)
        s.acked += len(gone)
        if gone:
            s.resend_attempt = 0
        return gone

    # -- observation ---------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        """When the next sent record times out, or the next pending record expires."""
        deadlines = []
        while self._due and not self._live(self._due[0]):
            heapq.heappop(self._due)
        if self._due:
            deadlines.append(self._due[0][0])
        if self._expiry:
            deadlines.append(self._expiry[0][0])
        return min(deadlines) if deadlines else None

    def has_pending(self) -> bool:
        return any(s.pending > 0 for s in self.streams.values())

    def oldest_age(self, stream: str, now: float) -> float | None:
        s = self.streams[stream]
        first = s.index.first_seq()
        return None if first is None else max(0.0, now - s.index.appended_at(first))

    def oldest_sent_age(self, stream: str, now: float) -> float | None:
        s = self.streams[stream]
        return max(0.0, now - min(s.sent_at.values())) if s.sent_at else None

    # -- internals -----------------------------------------------------------------------------
    def _refuse(self, stream: str, reason: Literal["full", "disk_floor"]) -> Refused:
        self.drops[(stream, reason)] += 1
        return Refused(reason)

    def _evictable(self, s: StreamState, need_records: int, need_bytes: int) -> list[tuple[int, int]]:
        """The stream's oldest pending records, just enough to cover what is needed."""
        found: list[tuple[int, int]] = []
        for seq, size in s.index.live_from(s.scan_from):
            if need_records <= 0 and need_bytes <= 0:
                break
            if s.is_pending(seq):
                found.append((seq, size))
                need_records, need_bytes = need_records - 1, need_bytes - size
        return found

    def _live(self, entry: tuple[float, str, tuple[int, ...]]) -> bool:
        deadline, name, seqs = entry
        s = self.streams.get(name)
        return s is not None and any(s.sent.get(seq) == deadline for seq in seqs)

    def _rebuild_due(self) -> None:
        """One entry per (stream, deadline) still waiting: drops what acknowledgements left."""
        groups: dict[tuple[float, str], list[int]] = {}
        for name, s in self.streams.items():
            for seq, deadline in s.sent.items():
                groups.setdefault((deadline, name), []).append(seq)
        self._due = [(d, name, tuple(seqs)) for (d, name), seqs in groups.items()]
        heapq.heapify(self._due)

    def _forget(self, stream: str, seq: int) -> None:
        s = self.streams[stream]
        size = s.index.remove(seq)
        if size is None:
            return
        s.inflight.discard(seq)
        s.sent.pop(seq, None)
        s.sent_at.pop(seq, None)
        self._records, self._bytes = self._records - 1, self._bytes - size

    def _recount(self) -> None:
        streams = self.streams.values()
        self._records = sum(s.index.records for s in streams)
        self._bytes = sum(s.index.bytes for s in streams)
        for s in streams:
            s.scan_from = 0
