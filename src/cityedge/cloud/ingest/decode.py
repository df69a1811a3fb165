"""Ingest's pure core: one MQTT message (topic + payload) to the records it carries, or an error.

No I/O and no clock. Every check that makes a message unacceptable lives here, so each
rejection has one reason (see `rejection_reason`) and a message that says what and where.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import msgspec

from cityedge.protocol.codec import decode_batch, encode_envelope
from cityedge.protocol.envelope import Envelope
from cityedge.protocol.errors import DecodeError, NodeMismatchError, ProtocolError, TopicError
from cityedge.protocol.topics import parse_topic

__all__ = ["MAX_SEQ", "REJECTION_REASONS", "IngestRecord", "decode_message", "rejection_reason"]

MAX_SEQ: Final = 2**63 - 1  # what a BIGINT column holds, on both store backends
REJECTION_REASONS: Final = (
    "bad_json",
    "schema",
    "oversize",
    "topic",
    "node_mismatch",
    "store_rejected",
    "internal",
)


class IngestRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One record as it arrived: the validated fields, and `raw`, its exact JSON bytes."""

    id: str
    district: str
    node: str
    stream: str
    seq: int
    kind: str
    v: int
    ts: datetime
    body: dict[str, Any]
    raw: bytes

    @classmethod
    def from_envelope(cls, env: Envelope, district: str, raw: bytes | None = None) -> IngestRecord:
        return cls(
            id=env.id,
            district=district,
            node=env.node,
            stream=env.stream,
            seq=env.seq,
            kind=env.kind,
            v=env.v,
            ts=env.ts,
            body=env.body,
            raw=raw if raw is not None else encode_envelope(env),
        )


def decode_message(topic: str, payload: bytes, *, max_bytes: int) -> list[IngestRecord]:
    """Decode one uplink message; raises a `ProtocolError` subclass naming what is wrong."""
    where = parse_topic(topic)
    if where.direction != "up":
        raise TopicError(f"topic {topic!r} is a down topic; ingest accepts only up/ topics")
    batch, envelopes = decode_batch(payload, max_bytes=max_bytes)
    if batch.node != where.node or batch.stream != where.leaf:
        raise NodeMismatchError(
            f"batch for {batch.node}/{batch.stream} arrived on topic {topic!r} "
            f"(node {where.node}, stream {where.leaf})"
        )
    out = []
    for index, (env, raw) in enumerate(zip(envelopes, batch.records, strict=True)):
        if env.node != where.node or env.stream != where.leaf:
            raise NodeMismatchError(
                f"record {index} (id {env.id}) claims {env.node}/{env.stream} but arrived on topic {topic!r}"
            )
        if env.seq > MAX_SEQ:
            raise DecodeError(f"record {index} (id {env.id}): seq {env.seq} is above the limit {MAX_SEQ}")
        out.append(IngestRecord.from_envelope(env, where.district, bytes(raw)))
    return out


def rejection_reason(exc: ProtocolError) -> str:
    """The metric label for a rejected message: JSON that does not parse vs a wrong schema."""
    if isinstance(exc, DecodeError):
        return "schema" if _caused_by_validation(exc) else "bad_json"
    return {"oversize": "oversize", "topic": "topic", "node_mismatch": "node_mismatch"}.get(
        exc.reason, "schema"
    )


def _caused_by_validation(exc: BaseException) -> bool:
    # The protocol codec chains msgspec's error: ValidationError means well-formed JSON
    # with the wrong shape; a plain msgspec.DecodeError means the bytes are not JSON.
    # (msgspec.DecodeError is itself a ValueError, hence the order of the checks.)
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, msgspec.ValidationError):
            return True
        if isinstance(cause, msgspec.DecodeError):
            return False
        if isinstance(cause, ValueError):
            return True
        cause = cause.__cause__
    return True
