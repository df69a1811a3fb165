"""The outbox: the node's single durable, bounded store-and-forward queue (thread-safe).

Asks the pure core (machine.py) what to do and carries it out on a storage (SQLite in
production, memory in fast tests). Producers append; the uplink claims, reports the
broker's PUBACK (`sent`) or a failure (`release`), and the store's acknowledgement
(`stored`) deletes. The outbox owns the uplink's wake-up (`wait_for_work`).
"""

from __future__ import annotations

import random
import re
import shutil
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Final

import msgspec

from cityedge.edge.outbox.machine import Admitted, OutboxCore
from cityedge.edge.outbox.policy import DEFAULT_POLICIES, OutboxLimits, ResendPolicy, StreamPolicy
from cityedge.edge.outbox.port import AppendResult, Claim, Claimed, OutboxStats, stream_stats
from cityedge.edge.outbox.storage import Changes, MemoryStore, NewRow, OutboxStorage, QuarantineEntry
from cityedge.edge.outbox.store import DiskFullError, SqliteStore
from cityedge.protocol.acks import StreamAck
from cityedge.protocol.codec import encode_envelope
from cityedge.protocol.envelope import NAME_PATTERN, Envelope
from cityedge.protocol.errors import OutboxError

__all__ = ["Outbox"]

_NAME: Final = re.compile(NAME_PATTERN)
_ID: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
QUARANTINE_KEEP: Final = 10_000
QUARANTINE_RAW_BYTES: Final = 64 * 1024


class Outbox:
    """Open with `Outbox.open(path)` (SQLite) or `Outbox.in_memory()` (the twin)."""

    def __init__(
        self,
        storage: OutboxStorage,
        policies: Mapping[str, StreamPolicy],
        limits: OutboxLimits,
        *,
        resend: ResendPolicy,
        clock: Callable[[], float],
        free_disk: Callable[[], int],
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._storage = storage
        self._policies = dict(policies)
        self.limits = limits
        self.resend = resend
        self._clock = clock
        self._free_disk = free_disk
        self._rand = rand
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._unsaved_drops: Counter[tuple[str, str]] = Counter()  # counted while the disk was full
        self._closed = False
        # commit on the node -> deletion after the store's acknowledgement, most recent last
        self.delivery_delays: deque[float] = deque(maxlen=100_000)
        self._core = self._rebuild()

    @classmethod
    def open(
        cls,
        path: Path,
        policies: Mapping[str, StreamPolicy] | None = None,
        limits: OutboxLimits = OutboxLimits(),
        clock: Callable[[], float] = time.time,
        free_disk: Callable[[Path], int] | None = None,
        resend: ResendPolicy = ResendPolicy(),
        rand: Callable[[], float] = random.random,
    ) -> Outbox:
        path = Path(path)
        store = SqliteStore(path)
        measure = free_disk or _disk_free
        return cls(
            store,
            DEFAULT_POLICIES if policies is None else policies,
            limits,
            resend=resend,
            clock=clock,
            free_disk=lambda: _checked_free(measure, path.parent),
            rand=rand,
        )

    @classmethod
    def in_memory(
        cls,
        policies: Mapping[str, StreamPolicy] | None = None,
        limits: OutboxLimits = OutboxLimits(min_free_disk_bytes=0),
        clock: Callable[[], float] = time.time,
        resend: ResendPolicy = ResendPolicy(),
        free_disk: Callable[[], int] = lambda: 1 << 62,
        rand: Callable[[], float] = random.random,
        storage: MemoryStore | None = None,
    ) -> Outbox:
        """The twin: the same core and driver over dicts. Pass `storage` again to "restart"."""
        return cls(
            storage or MemoryStore(),
            DEFAULT_POLICIES if policies is None else policies,
            limits,
            resend=resend,
            clock=clock,
            free_disk=free_disk,
            rand=rand,
        )

    @property
    def name(self) -> str:
        return self._storage.name

    @property
    def epoch(self) -> str:
        return self._epoch

    def policy(self, stream: str) -> StreamPolicy:
        return self._core.policy(stream)

    # -- producers ----------------------------------------------------------------------------
    def append(self, env: Envelope) -> AppendResult:
        return self.append_many([env])[0]

    def append_many(self, envs: Sequence[Envelope]) -> list[AppendResult]:
        """Commit records in one durable transaction, giving each the next seq of its stream.

        A full outbox or a disk under the floor is a result, never an exception; an invalid
        envelope raises OutboxError before anything is written.
        """
        for index, env in enumerate(envs):
            _check(env, index)
        with self._lock:
            self._require_open()
            now, free = self._clock(), self._free_disk()
            known = self._storage.existing_ids([env.id for env in envs])
            drops_before = Counter(self._core.drops)
            try:
                results, rows, deletes = self._plan_appends(envs, now, free, known)
            except BaseException:
                self._core = self._rebuild()  # nothing was written: forget the plan
                raise
            try:
                streams = {r.stream for r in rows.values()}
                self._storage.write(
                    Changes(
                        inserts=list(rows.values()),
                        deletes=deletes,
                        last_seq={s: self._core.streams[s].last_seq for s in streams},
                        drops=(self._core.drops - drops_before) + self._unsaved_drops,
                    )
                )
            except DiskFullError:
                self._core = self._rebuild()
                return self._refuse_on_full_disk(envs)
            except BaseException:
                self._core = self._rebuild()
                raise
            self._unsaved_drops.clear()
            if rows:
                self._work.notify_all()
            return results

    def _plan_appends(
        self, envs: Sequence[Envelope], now: float, free: int, known: set[str]
    ) -> tuple[list[AppendResult], dict[tuple[str, int], NewRow], list[tuple[str, int]]]:
        results: list[AppendResult] = []
        rows: dict[tuple[str, int], NewRow] = {}
        deletes: list[tuple[str, int]] = []
        for index, env in enumerate(envs):
            duplicate = env.id in known
            payload = b"" if duplicate else _encode(env, self._core.next_seq(env.stream), index)
            verdict = self._core.admit(env.stream, len(payload), env.ttl_s, now, free, duplicate=duplicate)
            if not isinstance(verdict, Admitted):
                results.append(AppendResult(False, env.id, None, verdict.reason, 0))
                continue
            if verdict.evicted:
                self._evict(env.stream, verdict.evicted, rows, deletes, known)
            rows[(env.stream, verdict.seq)] = NewRow(
                env.id, env.stream, verdict.seq, now, verdict.expires_at, payload
            )
            known.add(env.id)
            results.append(AppendResult(True, env.id, verdict.seq, None, len(verdict.evicted)))
        return results, rows, deletes

    def _evict(
        self,
        stream: str,
        seqs: Sequence[int],
        rows: dict[tuple[str, int], NewRow],
        deletes: list[tuple[str, int]],
        known: set[str],
    ) -> None:
        """An evicted record of this very batch is simply not written; one on disk is deleted.
        Either way its id is free again: a later copy (a redelivery) is a new record."""
        on_disk = [seq for seq in seqs if rows.get((stream, seq)) is None]
        for seq in seqs:
            row = rows.pop((stream, seq), None)
            if row is not None:
                known.discard(row.record_id)
        deletes.extend((stream, seq) for seq in on_disk)
        known.difference_update(rid for rid, _ in self._storage.read(stream, on_disk).values())

    def quarantine(self, source: str, reason: str, detail: str, raw: bytes) -> None:
        """Keep a message refused at the door (bounded; its first 64 KiB) with its reason."""
        entry = QuarantineEntry(self._clock(), source, reason, detail, len(raw), raw[:QUARANTINE_RAW_BYTES])
        with self._lock:
            self._require_open()
            self._storage.quarantine(entry, QUARANTINE_KEEP)

    def quarantined(self, limit: int = 100) -> list[QuarantineEntry]:
        with self._lock:
            return self._storage.quarantined(limit)

    def quarantine_counts(self) -> dict[str, int]:
        with self._lock:
            return self._storage.quarantine_counts()

    # -- the uplink ---------------------------------------------------------------------------
    def wait_for_work(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._work:
            while True:
                if self._closed:
                    return False
                now = self._clock()
                due = self._core.next_deadline()
                if self._core.has_pending() or (due is not None and due <= now):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._work.wait(min(left, max(0.001, due - now)) if due is not None else left)

    def claim(self, max_records: int, max_bytes: int) -> Claim | None:
        """The next batch of one stream (fair by priority), in seq order, now in flight.

        Pending records past their time-to-live are dropped first (counted "expired"), and
        sent records the store did not acknowledge in time are pending again.
        """
        if max_records < 1:
            raise OutboxError(f"claim: max_records must be >= 1, got {max_records}")
        with self._lock:
            self._require_open()
            now = self._clock()
            self._expire(now)
            self._core.requeue_overdue(now)
            plan = self._core.claim(max_records, max_bytes)
            if plan is None:
                return None
            stream, seqs = plan
            found = self._storage.read(stream, seqs)
            if len(found) != len(seqs):  # memory and disk disagree: trust the disk
                self._core = self._rebuild()
                return None
            return Claim(stream, [Claimed(found[s][0], stream, s, found[s][1]) for s in seqs])

    def sent(self, stream: str, seqs: Sequence[int]) -> None:
        with self._lock:
            self._core.sent(stream, seqs, self._clock())
            self._work.notify_all()  # a waiter recomputes its next deadline

    def release(self, stream: str, seqs: Sequence[int]) -> None:
        with self._lock:
            self._core.release(stream, seqs)
            self._work.notify_all()

    def release_all(self) -> int:
        with self._lock:
            count = self._core.release_all()
            self._work.notify_all()
            return count

    def stored(self, ack: StreamAck) -> int:
        """Delete what the store acknowledged (ignored when the ack names another epoch).
        On a full disk nothing is deleted: the records go again and the cloud drops the copies."""
        if ack.epoch is not None and ack.epoch != self._epoch:
            return 0
        with self._lock:
            self._require_open()
            gone = self._core.stored(ack.stream, ack.ranges)
            if not gone:
                return 0
            now = self._clock()
            try:
                keep = (self.limits.remember_acked_s, self.limits.remember_acked_max)
                self._storage.delete_stored(ack.stream, [seq for seq, _ in gone], now, keep)
            except OutboxError:
                self._core = self._rebuild()
                return 0
            self.delivery_delays.extend(now - appended_at for _, appended_at in gone)
            return len(gone)

    # -- observation --------------------------------------------------------------------------
    def stats(self) -> OutboxStats:
        with self._lock:
            self._require_open()
            now, core = self._clock(), self._core
            streams = {
                name: stream_stats(s, core.oldest_age(name, now), core.oldest_sent_age(name, now))
                for name, s in core.streams.items()
            }
            return OutboxStats(
                streams=streams,
                total_pending=sum(s.pending for s in streams.values()),
                total_inflight=sum(s.inflight for s in streams.values()),
                total_records=core.usage.records,
                total_bytes=core.usage.bytes,
                drops={k: n for k, n in core.drops.items() if n},
                total_sent=sum(s.sent for s in streams.values()),
            )

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._storage.close()
                self._work.notify_all()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals (called with the lock held) ------------------------------------------------
    def _rebuild(self) -> OutboxCore:
        """The core as the storage has it (at open, and after a failed write), keeping what
        only memory knew (in flight, sent, counters)."""
        loaded = self._storage.load()
        self._epoch = loaded.epoch
        core = OutboxCore(self._policies, self.limits, self.resend, self._rand)
        core.restore(loaded.rows, loaded.last_seq, Counter(loaded.drops) + self._unsaved_drops)
        old = getattr(self, "_core", None)
        if old is not None:
            core.carry_over(old)
        return core

    def _expire(self, now: float) -> None:
        drops_before = Counter(self._core.drops)
        gone = self._core.expire(now)
        if not gone:
            return
        try:
            self._storage.write(Changes(deletes=gone, drops=self._core.drops - drops_before))
        except BaseException:
            self._core = self._rebuild()
            raise

    def _refuse_on_full_disk(self, envs: Sequence[Envelope]) -> list[AppendResult]:
        """SQLite found the disk full despite the floor: refuse and count, saved at the next write."""
        counts = Counter((env.stream, "disk_floor") for env in envs)
        self._unsaved_drops.update(counts)
        self._core.drops.update(counts)
        return [AppendResult(False, env.id, None, "disk_floor", 0) for env in envs]

    def _require_open(self) -> None:
        if self._closed:
            raise OutboxError(f"the outbox at {self._storage.name} is closed")


def _check(env: Envelope, index: int) -> None:
    if not isinstance(env, Envelope):
        raise OutboxError(f"append: item {index} is a {type(env).__name__}, not an Envelope")
    if not _NAME.match(env.stream):
        raise OutboxError(f"append: record {index} ({env.id!r}) has an invalid stream name {env.stream!r}")
    if not _ID.match(env.id):
        raise OutboxError(f"append: record {index} has an invalid record id {env.id!r} (want a UUID)")


def _encode(env: Envelope, seq: int, index: int) -> bytes:
    try:
        return encode_envelope(msgspec.structs.replace(env, seq=seq))
    except (TypeError, ValueError, msgspec.EncodeError) as exc:
        raise OutboxError(f"append: record {index} ({env.id}) cannot be encoded: {exc}") from exc


def _disk_free(directory: Path) -> int:
    return shutil.disk_usage(directory).free


def _checked_free(measure: Callable[[Path], int], directory: Path) -> int:
    try:
        return measure(directory)
    except OSError as exc:
        raise OutboxError(f"outbox in {directory}: cannot read free disk space: {exc}") from exc
