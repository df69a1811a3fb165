"""Ingest's worker: a group of messages into the store in one transaction, what cannot be
stored into the quarantine, and then the acknowledgements, in that order.

A store refusal (data the database will not hold) is narrowed down to the message, then the
record, that caused it; only that record is quarantined and its neighbours are stored. A
store that is down or busy is retried with backoff; nothing is acknowledged until it commits.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from cityedge.cloud.ingest.decode import Decoded, RefusedRecord, decode_message, rejection_reason
from cityedge.cloud.ingest.metrics import IngestMetrics
from cityedge.cloud.store.records import StoreRejectedError
from cityedge.cloud.store.rows import IngestRecord, InsertResult, QuarantinedItem
from cityedge.protocol.acks import StoreAck, StreamAck, seq_ranges
from cityedge.protocol.errors import ProtocolError
from cityedge.protocol.topics import up_topic

__all__ = ["Committed", "Inbound", "IngestStore", "IngestWorker", "Stopping"]

log = logging.getLogger("cityedge.cloud.ingest")
T = TypeVar("T")
QUARANTINE_RAW_BYTES = 256 * 1024


class IngestStore(Protocol):
    """What ingest needs from the store (`RecordStore` is the real one)."""

    def insert(self, records: Sequence[IngestRecord], received_at: datetime) -> InsertResult: ...

    def quarantine(self, items: Sequence[QuarantinedItem], received_at: datetime) -> None: ...


class Stopping(Exception):
    """The consumer is stopping while a write is being retried: leave the messages unacked."""


@dataclass(frozen=True)
class Inbound:
    topic: str
    payload: bytes


@dataclass
class Committed:
    """What a group left behind: the store's acknowledgements to send, per node, and counts."""

    acks: dict[tuple[str, str], StoreAck] = field(default_factory=dict)  # (district, node) -> ack
    inserted: int = 0
    duplicates: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    messages_stored: int = 0


class IngestWorker:
    def __init__(
        self,
        store: IngestStore,
        metrics: IngestMetrics,
        *,
        max_payload_bytes: int,
        retry_delay: Callable[[int], float],
        stopping: Callable[[float], bool],
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.max_payload_bytes = max_payload_bytes
        self._retry_delay = retry_delay
        self._stopping = stopping  # waits up to the given seconds; True when stopping
        self.store_failures = 0

    def process(self, group: Sequence[Inbound]) -> Committed:
        """Decode, store, quarantine; raises Stopping if told to stop while the store is down."""
        received_at = datetime.now(UTC)
        out = Committed()
        decoded: list[Decoded] = []
        items: list[QuarantinedItem] = []
        for msg in group:
            try:
                decoded.append(decode_message(msg.topic, msg.payload, max_bytes=self.max_payload_bytes))
            except ProtocolError as exc:
                items.append(_whole(msg, rejection_reason(exc), str(exc)))
            except Exception as exc:  # a decoder bug: retrying the same bytes cannot help
                log.exception("ingest: decoding a message on %s failed unexpectedly", msg.topic)
                items.append(_whole(msg, "internal", f"unexpected {type(exc).__name__}: {exc}"))
        items += [_refused_item(d, r) for d in decoded for r in d.refused]
        items += self._store(decoded, received_at, out)
        if items:
            self._retry("quarantine", lambda: self.store.quarantine(items, received_at))
        for item in items:
            out.quarantined[item.reason] += 1
            self.metrics.quarantined.labels(item.reason).inc()
            log.warning(
                "ingest: quarantined %s on %s (%s): %s", _what(item), item.topic, item.reason, item.detail
            )
        out.acks = _acks(decoded, items)
        return out

    def _store(self, decoded: list[Decoded], received_at: datetime, out: Committed) -> list[QuarantinedItem]:
        """Insert every message's records; returns the records the database refused."""
        records = [r for d in decoded for r in d.records]
        if not records:
            return []
        try:
            self._insert(records, received_at, out)
            out.messages_stored += len(decoded)
            return []
        except StoreRejectedError as exc:
            if len(decoded) > 1:  # find the message that holds it; store the others
                return [item for d in decoded for item in self._store([d], received_at, out)]
            if len(records) == 1:
                d = decoded[0]
                return [_store_refused(d, records[0], str(exc))]
        d = decoded[0]
        refused: list[QuarantinedItem] = []
        for record in d.records:  # one message: find the record
            refused += self._store(
                [Decoded(d.district, d.node, d.stream, d.epoch, [record])], received_at, out
            )
        return refused

    def _insert(self, records: list[IngestRecord], received_at: datetime, out: Committed) -> None:
        started = time.perf_counter()
        result = self._retry("insert", lambda: self.store.insert(records, received_at))
        self.metrics.insert_seconds.observe(time.perf_counter() - started)
        for stream, n in Counter(r.stream for r in records).items():
            stored = result.inserted_by_stream.get(stream, 0)
            self.metrics.records.labels(stream).inc(stored)
            if n - stored:
                self.metrics.duplicates.labels(stream).inc(n - stored)
        out.inserted += result.inserted
        out.duplicates += result.duplicates

    def _retry(self, what: str, write: Callable[[], T]) -> T:
        """Run a store write until it succeeds; StoreRejectedError passes through."""
        attempt = 0
        while True:
            try:
                return write()
            except StoreRejectedError:
                raise
            except Exception as exc:  # the database is down or busy: wait, then the same write
                self.store_failures += 1
                self.metrics.store_failures.inc()
                delay = self._retry_delay(attempt)
                attempt += 1
                log.warning(
                    "ingest: store %s failed (%s); not acknowledged, retrying in %.2fs", what, exc, delay
                )
                if self._stopping(delay):
                    raise Stopping from exc


def _acks(decoded: list[Decoded], quarantined: list[QuarantinedItem]) -> dict[tuple[str, str], StoreAck]:
    """Per node: every seq now stored (new or duplicate) or quarantined, as ranges per stream."""
    seqs: dict[tuple[str, str, str, str | None], set[int]] = {}
    for d in decoded:
        seqs.setdefault((d.district, d.node, d.stream, d.epoch), set()).update(r.seq for r in d.records)
    for d in decoded:
        mine = [q.seq for q in quarantined if q.node == d.node and q.stream == d.stream and q.seq is not None]
        seqs[(d.district, d.node, d.stream, d.epoch)].update(mine)
    acks: dict[tuple[str, str], list[StreamAck]] = {}
    for (district, node, stream, epoch), got in seqs.items():
        if got:
            acks.setdefault((district, node), []).append(
                StreamAck(stream=stream, ranges=seq_ranges(got), epoch=epoch)
            )
    return {key: StoreAck(node=key[1], streams=streams) for key, streams in acks.items()}


def _whole(msg: Inbound, reason: str, detail: str) -> QuarantinedItem:
    return QuarantinedItem(
        topic=msg.topic, reason=reason, detail=detail, raw=msg.payload[:QUARANTINE_RAW_BYTES]
    )


def _refused_item(d: Decoded, r: RefusedRecord) -> QuarantinedItem:
    return QuarantinedItem(
        topic=_topic(d), reason=r.reason, detail=r.detail, raw=r.raw[:QUARANTINE_RAW_BYTES],
        district=d.district, node=d.node, stream=d.stream, record_id=r.record_id, seq=r.seq,
    )  # fmt: skip


def _store_refused(d: Decoded, record: IngestRecord, detail: str) -> QuarantinedItem:
    return QuarantinedItem(
        topic=_topic(d), reason="store_rejected", detail=detail, raw=record.raw[:QUARANTINE_RAW_BYTES],
        district=d.district, node=d.node, stream=d.stream, record_id=record.id, seq=record.seq,
    )  # fmt: skip


def _topic(d: Decoded) -> str:
    return up_topic(d.district, d.node, d.stream)


def _what(item: QuarantinedItem) -> str:
    if item.seq is None and item.record_id is None:
        return "a whole message"
    return f"record {item.record_id or '?'} (seq {item.seq if item.seq is not None else '?'})"
