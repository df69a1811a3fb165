"""The outbox: the node's single durable, bounded store-and-forward queue (thread-safe).

Wires the pure policy (machine.py) to the SQLite store (store.py). Producers append; the
uplink claims, then acks on PUBACK or releases on failure. In-flight state lives in memory
only, so after a restart every unacknowledged record is pending again.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import msgspec

from cityedge.edge.outbox.machine import (
    DEFAULT_POLICIES,
    Admission,
    FairScheduler,
    OutboxLimits,
    StreamPolicy,
    Usage,
    admit,
    evictions_needed,
    expires_at,
    policy_for,
)
from cityedge.edge.outbox.store import DiskFullError, NewRecord, SqliteStore, StoredRecord
from cityedge.protocol.codec import encode_envelope
from cityedge.protocol.envelope import NAME_PATTERN, Envelope
from cityedge.protocol.errors import OutboxError

__all__ = ["AppendResult", "Claimed", "Outbox", "OutboxStats", "StreamStats"]

log = logging.getLogger(__name__)
_NAME: Final = re.compile(NAME_PATTERN)
_ID: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_PAGE: Final = 256
_PRUNE_EVERY_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class AppendResult:
    """`reason` is "full", "disk_floor" or "duplicate" when not accepted; `dropped` counts evictions."""

    accepted: bool
    record_id: str
    seq: int | None
    reason: str | None
    dropped: int


@dataclass(frozen=True, slots=True)
class Claimed:
    """A record handed to the uplink; `payload` is exactly the bytes committed at append."""

    record_id: str
    stream: str
    seq: int
    payload: bytes


@dataclass(frozen=True)
class StreamStats:
    pending: int
    inflight: int
    bytes: int
    oldest_age_s: float | None
    last_seq: int
    appended: int = 0  # since this process opened the outbox
    acked: int = 0
    duplicates: int = 0


@dataclass(frozen=True)
class OutboxStats:
    streams: dict[str, StreamStats]
    total_pending: int
    total_inflight: int
    total_records: int
    total_bytes: int
    drops: dict[tuple[str, str], int] = field(default_factory=dict)  # persisted across restarts


@dataclass
class _Stream:
    """In-memory view of one stream; disk is the truth, this is rebuilt from it at open."""

    records: int = 0
    bytes: int = 0
    last_seq: int = 0
    inflight: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (seq, size)
    scan_from: int = 0  # every record below this seq is in flight or gone
    appended: int = 0
    acked: int = 0
    duplicates: int = 0

    @property
    def pending(self) -> int:
        return self.records - len(self.inflight)


class Outbox:
    """Open with `Outbox.open(path)`; every method is safe to call from any thread."""

    def __init__(
        self,
        store: SqliteStore,
        policies: Mapping[str, StreamPolicy],
        limits: OutboxLimits,
        clock: Callable[[], float],
        free_disk: Callable[[Path], int],
    ) -> None:
        self._store = store
        self._policies = dict(policies)
        self.limits = limits
        self._clock = clock
        self._free_disk = free_disk
        self._lock = threading.Lock()
        self._streams: dict[str, _Stream] = {}
        self._inflight_of: dict[str, str] = {}  # record id -> stream
        self._drops: Counter[tuple[str, str]] = Counter()
        self._unsaved_drops: Counter[tuple[str, str]] = Counter()  # counted while the disk was full
        self._scheduler = FairScheduler()
        self._acked_pruned_at = 0.0
        self._closed = False
        self._load()

    @classmethod
    def open(
        cls,
        path: Path,
        policies: Mapping[str, StreamPolicy] | None = None,
        limits: OutboxLimits = OutboxLimits(),
        clock: Callable[[], float] = time.time,
        free_disk: Callable[[Path], int] | None = None,
    ) -> Outbox:
        path = Path(path)
        return cls(
            SqliteStore(path),
            DEFAULT_POLICIES if policies is None else policies,
            limits,
            clock,
            free_disk or _disk_free,
        )

    @property
    def path(self) -> Path:
        return self._store.path

    def policy(self, stream: str) -> StreamPolicy:
        return policy_for(stream, self._policies)

    # -- producers ----------------------------------------------------------------------------
    def append(self, env: Envelope) -> AppendResult:
        """Commit one record durably; see `append_many`."""
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
            now, free = self._clock(), self._free_space()
            try:
                with self._store.transaction():
                    batch = _AppendBatch(self, envs, now, free)
                    results = [batch.add(index, env) for index, env in enumerate(envs)]
                    batch.finish()
            except DiskFullError:
                self._load()
                return self._refuse_on_full_disk(envs)
            except BaseException:
                self._load()  # memory follows disk again after the rollback
                raise
            batch.settle()
            return results

    # -- the uplink ---------------------------------------------------------------------------
    def claim(self, max_records: int, max_bytes: int) -> tuple[str, list[Claimed]] | None:
        """Hand out the next batch of one stream (fair by priority), in seq order, as in flight.

        Pending records whose time-to-live has passed are dropped first (counted "expired").
        At least one record is returned even if it alone exceeds `max_bytes`, so an oversized
        record cannot block its stream. None when nothing is pending.
        """
        if max_records < 1:
            raise OutboxError(f"claim: max_records must be >= 1, got {max_records}")
        with self._lock:
            self._require_open()
            self._drop_expired(self._clock())
            ready = {n: self.policy(n).priority for n, s in self._streams.items() if s.pending > 0}
            name = self._scheduler.pick(ready)
            if name is None:
                return None
            taken = self._take(name, max_records, max_bytes)
            if not taken:  # memory said pending but the scan found none: rescan, then trust disk
                self._streams[name].scan_from = 0
                taken = self._take(name, max_records, max_bytes)
            if not taken:
                self._load()
                return None
            self._scheduler.charge(name, len(taken), ready[name])
            return name, taken

    def ack(self, record_ids: Iterable[str]) -> int:
        """The broker has them: delete them. Unknown or already-acked ids are ignored.

        On a full disk nothing is deleted and they are pending again (0 is returned).
        """
        ids = list(dict.fromkeys(record_ids))
        if not ids:
            return 0
        with self._lock:
            self._require_open()
            now = self._clock()
            try:
                with self._store.relaxed_sync(), self._store.transaction():
                    gone = self._store.delete(ids)
                    self._store.remember_acked((g[0] for g in gone), now)
                    if now - self._acked_pruned_at > _PRUNE_EVERY_S:
                        self._store.forget_acked(
                            now - self.limits.remember_acked_s, self.limits.remember_acked_max
                        )
                        self._acked_pruned_at = now
            except DiskFullError:
                # They stay and go again later (a duplicate the cloud ignores); the uplink lives on.
                log.warning("outbox: disk full, %d acknowledged records kept for now", len(ids))
                self._load()
                for record_id in ids:
                    self._settle(record_id)
                return 0
            except BaseException:
                self._load()
                raise
            for record_id in ids:
                self._settle(record_id)
            for _, stream, size in gone:
                s = self._streams[stream]
                s.records, s.bytes, s.acked = s.records - 1, s.bytes - size, s.acked + 1
            return len(gone)

    def release(self, record_ids: Iterable[str]) -> None:
        """The send failed: these records are pending again, ahead of newer ones."""
        with self._lock:
            for record_id in record_ids:
                self._settle(record_id)

    def release_all(self) -> int:
        """The link is gone (or the identity changed): everything in flight is pending again."""
        with self._lock:
            count = len(self._inflight_of)
            for s in self._streams.values():
                s.inflight.clear()
                s.scan_from = 0
            self._inflight_of.clear()
            return count

    # -- observation --------------------------------------------------------------------------
    def stats(self) -> OutboxStats:
        with self._lock:
            self._require_open()
            now = self._clock()
            streams = {name: self._stream_stats(name, s, now) for name, s in self._streams.items()}
            return OutboxStats(
                streams=streams,
                total_pending=sum(s.pending for s in streams.values()),
                total_inflight=sum(s.inflight for s in streams.values()),
                total_records=sum(s.records for s in self._streams.values()),
                total_bytes=sum(s.bytes for s in streams.values()),
                drops=dict(self._drops),
            )

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._store.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals (called with the lock held) ------------------------------------------------
    def _free_space(self) -> int:
        try:
            return self._free_disk(self._store.path.parent)
        except OSError as exc:
            raise OutboxError(f"outbox at {self._store.path}: cannot read free disk space: {exc}") from exc

    def _refuse_on_full_disk(self, envs: Sequence[Envelope]) -> list[AppendResult]:
        """SQLite found the disk full despite the floor: refuse and count, saved at the next write."""
        counts = Counter((env.stream, "disk_floor") for env in envs)
        self._drops.update(counts)
        self._unsaved_drops.update(counts)
        return [AppendResult(False, env.id, None, "disk_floor", 0) for env in envs]

    def _load(self) -> None:
        """Rebuild the in-memory view from disk (at open, and after a rolled-back transaction)."""
        state = self._store.load()
        old = self._streams
        self._streams = {}
        for name in set(state.usage) | set(state.last_seq) | set(old):
            records, size = state.usage.get(name, (0, 0))
            s = self._streams[name] = _Stream(records, size, state.last_seq.get(name, 0))
            if name in old:  # keep what is really in flight and the since-open counters
                prev = old[name]
                s.inflight, s.scan_from = prev.inflight, prev.scan_from
                s.appended, s.acked, s.duplicates = prev.appended, prev.acked, prev.duplicates
        self._inflight_of = {rid: n for n, s in self._streams.items() for rid in s.inflight}
        self._drops = Counter(state.drops) + self._unsaved_drops

    def _stream(self, name: str) -> _Stream:
        s = self._streams.get(name)
        if s is None:
            s = self._streams[name] = _Stream()
        return s

    def _settle(self, record_id: str) -> None:
        """Take a record out of the in-flight set; if it is still stored it is pending again."""
        name = self._inflight_of.pop(record_id, None)
        if name is None:
            return
        s = self._streams[name]
        seq, _ = s.inflight.pop(record_id)
        s.scan_from = min(s.scan_from, seq)

    def _take(self, name: str, max_records: int, max_bytes: int) -> list[Claimed]:
        """The oldest pending records of one stream, within the limits, now in flight."""
        s = self._streams[name]
        taken: list[Claimed] = []
        used = 0
        next_seq = s.scan_from
        full = False
        while not full:
            want = min(_PAGE, max(16, max_records - len(taken)))  # payloads are not free to read
            page = self._store.scan(name, next_seq, want, payload=True)
            for rec in page:
                if rec.record_id in s.inflight:
                    next_seq = rec.seq + 1
                    continue
                full = bool(taken) and used + rec.size > max_bytes
                if full:
                    break
                assert rec.payload is not None
                taken.append(Claimed(rec.record_id, name, rec.seq, rec.payload))
                used += rec.size
                next_seq = rec.seq + 1
                full = len(taken) >= max_records
                if full:
                    break
            full = full or len(page) < want
        s.scan_from = next_seq
        for c in taken:
            s.inflight[c.record_id] = (c.seq, len(c.payload))
            self._inflight_of[c.record_id] = name
        return taken

    def _drop_expired(self, now: float) -> None:
        """Every pending record whose time-to-live has passed leaves now, counted per stream."""
        due = [rid for rid, _, _ in self._store.expired(now) if rid not in self._inflight_of]
        if not due:
            return
        try:
            with self._store.transaction():
                gone = self._store.delete(due)
                counts = Counter((stream, "expired") for _, stream, _ in gone)
                self._store.add_drops(counts)
        except BaseException:
            self._load()
            raise
        for _, stream, size in gone:
            s = self._streams[stream]
            s.records, s.bytes = s.records - 1, s.bytes - size
        self._drops.update(counts)

    def _stream_stats(self, name: str, s: _Stream, now: float) -> StreamStats:
        oldest = self._store.oldest_appended_at(name) if s.records else None
        return StreamStats(
            pending=s.pending,
            inflight=len(s.inflight),
            bytes=s.bytes,
            oldest_age_s=None if oldest is None else max(0.0, now - oldest),
            last_seq=s.last_seq,
            appended=s.appended,
            acked=s.acked,
            duplicates=s.duplicates,
        )

    def _require_open(self) -> None:
        if self._closed:
            raise OutboxError(f"the outbox at {self._store.path} is closed")


class _AppendBatch:
    """One append transaction: admission, eviction and inserts, with the lock held."""

    def __init__(self, outbox: Outbox, envs: Sequence[Envelope], now: float, free_disk: int) -> None:
        self.ob = outbox
        self.now = now
        self.free_disk = free_disk
        self.rows: list[NewRecord] = []
        self.drops: Counter[tuple[str, str]] = Counter()
        self.appended: Counter[str] = Counter()
        self.duplicates: Counter[str] = Counter()
        self.touched: set[str] = set()
        self.seen = outbox._store.existing_ids([env.id for env in envs])
        streams = outbox._streams.values()
        self.usage = Usage(sum(s.records for s in streams), sum(s.bytes for s in streams))

    def add(self, index: int, env: Envelope) -> AppendResult:
        s = self.ob._stream(env.stream)
        if env.id in self.seen:
            self.duplicates[env.stream] += 1
            return AppendResult(False, env.id, None, "duplicate", 0)
        policy = self.ob.policy(env.stream)
        payload = _encode(env, s.last_seq + 1, index)
        verdict = admit(len(payload), self.usage, self.ob.limits, policy, self.free_disk)
        evicted = self._make_room(env.stream, s, verdict) if verdict.needs_room else 0
        if not verdict.accept or evicted is None:
            reason = verdict.reason or "full"
            self.drops[(env.stream, reason)] += 1
            return AppendResult(False, env.id, None, reason, 0)
        s.last_seq += 1
        s.records, s.bytes = s.records + 1, s.bytes + len(payload)
        self.appended[env.stream] += 1
        self.usage = Usage(self.usage.records + 1, self.usage.bytes + len(payload))
        self.seen.add(env.id)
        self.touched.add(env.stream)
        expiry = expires_at(self.now, policy, env.ttl_s)
        self.rows.append(NewRecord(env.id, env.stream, s.last_seq, self.now, expiry, payload))
        return AppendResult(True, env.id, s.last_seq, None, evicted)

    def _make_room(self, name: str, s: _Stream, verdict: Admission) -> int | None:
        """Evict the stream's oldest pending records so the new one fits; None if they cannot."""
        self._flush()  # records of this very batch may be the oldest ones
        candidates = self._evictable(name, s, verdict)
        count = evictions_needed(verdict, (rec.size for rec in candidates))
        if not count:
            return count
        victims = candidates[:count]
        self.ob._store.delete([rec.record_id for rec in victims])
        self.seen.difference_update(rec.record_id for rec in victims)  # gone: a later copy is new
        freed = sum(rec.size for rec in victims)
        s.records, s.bytes = s.records - count, s.bytes - freed
        self.usage = Usage(self.usage.records - count, self.usage.bytes - freed)
        self.drops[(name, "evicted")] += count
        return count

    def _evictable(self, name: str, s: _Stream, verdict: Admission) -> list[StoredRecord]:
        """Oldest pending records of the stream, just enough to cover what the verdict needs."""
        found: list[StoredRecord] = []
        need_records, need_bytes = verdict.over_records, verdict.over_bytes
        next_seq = s.scan_from
        while need_records > 0 or need_bytes > 0:
            page = self.ob._store.scan(name, next_seq, _PAGE, payload=False)
            for rec in page:
                next_seq = rec.seq + 1
                if rec.record_id not in s.inflight:
                    found.append(rec)
                    need_records, need_bytes = need_records - 1, need_bytes - rec.size
            if len(page) < _PAGE:
                break
        return found

    def _flush(self) -> None:
        self.ob._store.insert(self.rows)
        self.rows = []

    def finish(self) -> None:
        self._flush()
        self.ob._store.save_last_seq({name: self.ob._streams[name].last_seq for name in self.touched})
        self.ob._store.add_drops(self.drops + self.ob._unsaved_drops)

    def settle(self) -> None:
        """After the commit: the in-memory counters catch up with what is now on disk."""
        ob = self.ob
        ob._drops.update(self.drops)
        ob._unsaved_drops.clear()
        for name, n in self.appended.items():
            ob._streams[name].appended += n
        for name, n in self.duplicates.items():
            ob._streams[name].duplicates += n


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
