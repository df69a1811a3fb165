"""Envelopes and a settable clock for the outbox tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from cityedge.edge.outbox import Claimed, Outbox
from cityedge.protocol.acks import StreamAck, seq_ranges
from cityedge.protocol.codec import encode_envelope
from cityedge.protocol.envelope import Envelope
from cityedge.protocol.ids import uuid7

T0 = 1_790_000_000.0
_counter = itertools.count(1)


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


def envelope(stream: str = "telemetry", pad: int = 0, ttl_s: float | None = None, **body: Any) -> Envelope:
    """A fresh record with a unique id; `pad` adds that many bytes to its body."""
    n = next(_counter)
    return Envelope(
        id=str(uuid7(int(T0 * 1000), n.to_bytes(10, "big"))),
        node="edge-node-001",
        stream=stream,
        kind="test",
        ts=datetime.fromtimestamp(T0, UTC),
        body={"n": n, "pad": "x" * pad, **body},
        ttl_s=ttl_s,
    )


def wire_bytes(env: Envelope, seq: int) -> bytes:
    """What the outbox must store and hand out for `env` committed as `seq`."""
    return encode_envelope(msgspec.structs.replace(env, seq=seq))


def store_ack(ob: Outbox, records: Iterable[Claimed]) -> int:
    """The broker and then the store acknowledge these claimed records; returns how many left."""
    by_stream: dict[str, list[int]] = {}
    for rec in records:
        by_stream.setdefault(rec.stream, []).append(rec.seq)
    gone = 0
    for stream, seqs in by_stream.items():
        ob.sent(stream, seqs)
        gone += ob.stored(StreamAck(stream=stream, ranges=seq_ranges(seqs), epoch=ob.epoch))
    return gone


def release(ob: Outbox, records: Iterable[Claimed]) -> None:
    for rec in records:
        ob.release(rec.stream, [rec.seq])
