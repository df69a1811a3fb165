"""The store's row types: what goes in (`IngestRecord`, `QuarantinedItem`) and what comes
back (`StoredRecord`, `StoredQuarantine`). The store owns them; ingest imports them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from cityedge.protocol.codec import encode_envelope
from cityedge.protocol.envelope import Envelope

__all__ = ["IngestRecord", "InsertResult", "QuarantinedItem", "StoredQuarantine", "StoredRecord"]


class _RecordFields(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    district: str
    node: str
    stream: str
    seq: int
    kind: str
    v: int
    ts: datetime
    body: dict[str, Any]


class IngestRecord(_RecordFields, frozen=True, kw_only=True):
    """One record as it arrived: the validated fields, and `raw`, its exact JSON bytes."""

    raw: bytes

    @classmethod
    def from_envelope(cls, env: Envelope, district: str, raw: bytes | None = None) -> IngestRecord:
        return cls(
            id=env.id, district=district, node=env.node, stream=env.stream, seq=env.seq, kind=env.kind,
            v=env.v, ts=env.ts, body=env.body, raw=raw if raw is not None else encode_envelope(env),
        )  # fmt: skip


class StoredRecord(_RecordFields, frozen=True, kw_only=True):
    """A stored record: its fields, when it arrived, its raw JSON, and its arrival number."""

    received_at: datetime
    raw: str
    arrival: int


class InsertResult(msgspec.Struct, frozen=True):
    inserted: int
    duplicates: int
    inserted_by_stream: dict[str, int] = {}


class QuarantinedItem(msgspec.Struct, frozen=True, kw_only=True):
    """What ingest could not store: one record (its id and seq when they could be read) or a
    whole message (both None), kept raw with the reason, so nothing vanishes silently."""

    # where it came from, as far as the topic and the record could be read
    district: str | None = None
    node: str | None = None
    stream: str | None = None
    record_id: str | None = None
    seq: int | None = None
    # what it was and why it was refused
    topic: str
    reason: str
    detail: str
    raw: bytes


class StoredQuarantine(QuarantinedItem, frozen=True, kw_only=True):
    id: int
    size: int
    received_at: datetime
