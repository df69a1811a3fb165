"""The record envelope: the one frozen, typed message every stage exchanges.

A record is made once, at the source, with a UUIDv7 id; its per-stream sequence number is
given by the node's outbox when the record is committed. Unknown fields from newer
senders are kept in `extra` so a mixed-version fleet interoperates.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final

import msgspec

from cityedge.protocol.ids import uuid7

__all__ = [
    "KNOWN_STREAMS",
    "NAME_PATTERN",
    "SCHEMA_VERSION",
    "Batch",
    "Envelope",
    "Kind",
    "Name",
    "RecordId",
    "new_record",
]

SCHEMA_VERSION: Final = 1
NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{0,62}$"
KIND_PATTERN: Final = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
KNOWN_STREAMS: Final = frozenset({"events", "telemetry", "heartbeat", "ota", "decisions"})

Name = Annotated[str, msgspec.Meta(pattern=NAME_PATTERN)]
Kind = Annotated[str, msgspec.Meta(pattern=KIND_PATTERN)]
RecordId = Annotated[
    str, msgspec.Meta(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
]


class Envelope(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One record. `ts` is the UTC time the source observed the fact."""

    id: RecordId
    node: Name
    stream: Name
    kind: Kind
    ts: datetime
    body: dict[str, Any]
    seq: Annotated[int, msgspec.Meta(ge=0)] = 0
    v: int = SCHEMA_VERSION
    ver: dict[str, str] = {}
    ttl_s: Annotated[float, msgspec.Meta(gt=0)] | None = None
    extra: dict[str, Any] = {}

    def __post_init__(self) -> None:
        if self.ts.tzinfo is None:
            raise ValueError("ts must carry a UTC offset")


class Batch(msgspec.Struct, frozen=True, kw_only=True):
    """What one uplink publish carries: records of one node and one stream."""

    node: Name
    stream: Name
    records: list[msgspec.Raw]
    v: int = SCHEMA_VERSION
    epoch: str | None = None  # the node's outbox; ingest echoes it in its StoreAck


def new_record(
    node: str,
    stream: str,
    kind: str,
    body: dict[str, Any],
    *,
    seq: int = 0,
    ts: datetime | None = None,
    record_id: str | None = None,
    ver: dict[str, str] | None = None,
) -> Envelope:
    """A record as its source makes it: `ts` is now unless given, the id a new UUIDv7 of `ts`'s
    millisecond unless given."""
    ts = ts or datetime.now(UTC)
    return Envelope(
        id=record_id or str(uuid7(int(ts.timestamp() * 1000))),
        node=node,
        stream=stream,
        kind=kind,
        ts=ts,
        body=body,
        seq=seq,
        ver=ver or {},
    )
