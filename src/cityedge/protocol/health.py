"""What a node tells the cloud about its health: the heartbeat body and the last will.

The heartbeat is an ordinary record (stream `heartbeat`, kind `heartbeat`) whose body is a
`Heartbeat`; every field has a default, so a heartbeat from an older agent still decodes and
unknown fields from a newer one are ignored. The last will is what the cloud broker
publishes for a node that vanished without a DISCONNECT: a valid one-record batch on
`up/will` (stream `will`, kind `node.offline`), so ingest stores it like any record and the
fleet reads it from the store. Its batch names the epoch `will`, which no outbox has, so
the store's acknowledgement of it never touches a node's outbox. Pure: no I/O, no clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import msgspec

from cityedge.protocol.codec import encode_batch, encode_envelope
from cityedge.protocol.envelope import new_record
from cityedge.protocol.errors import DecodeError

__all__ = [
    "HEARTBEAT_KIND",
    "HEARTBEAT_STREAM",
    "WILL_EPOCH",
    "WILL_KIND",
    "WILL_STREAM",
    "CameraHealth",
    "Heartbeat",
    "LinkHealth",
    "StreamBacklog",
    "decode_heartbeat",
    "will_payload",
]

HEARTBEAT_STREAM: Final = "heartbeat"
HEARTBEAT_KIND: Final = "heartbeat"
WILL_STREAM: Final = "will"
WILL_KIND: Final = "node.offline"
WILL_EPOCH: Final = "will"


class StreamBacklog(msgspec.Struct, frozen=True, kw_only=True):
    """One outbox stream: what waits to go, what waits for the store, and how old."""

    pending: int = 0
    sent: int = 0  # the broker has them; waiting for the store's acknowledgement
    oldest_age_s: float | None = None
    oldest_sent_age_s: float | None = None
    dropped: int = 0  # dropped or refused since the outbox was made, every reason


class CameraHealth(msgspec.Struct, frozen=True, kw_only=True):
    fps: float = 0.0
    fps_target: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    dropped: int = 0
    source: str = "unknown"


class LinkHealth(msgspec.Struct, frozen=True, kw_only=True):
    """The uplink: round trip publish -> PUBACK over the last interval, and its spread."""

    connected: bool = False
    rtt_ms: float | None = None
    rtt_p95_ms: float | None = None
    jitter_ms: float | None = None
    reconnects: int = 0


class Heartbeat(msgspec.Struct, frozen=True, kw_only=True):
    interval_s: float | None = None
    versions: dict[str, str] = {}
    uptime_s: float = 0.0
    outbox: dict[str, StreamBacklog] = {}
    drops: dict[str, int] = {}  # "stream/reason" -> records
    cameras: dict[str, CameraHealth] = {}
    cert_days_left: float | None = None
    disk_free_bytes: int | None = None
    disk_total_bytes: int | None = None
    cpu_percent: float | None = None
    memory_percent: float | None = None
    link: LinkHealth = LinkHealth()
    at: datetime | None = None

    @property
    def disk_free_ratio(self) -> float | None:
        if self.disk_free_bytes is None or not self.disk_total_bytes:
            return None
        return self.disk_free_bytes / self.disk_total_bytes

    @property
    def oldest_backlog_s(self) -> float:
        ages = [s.oldest_age_s for s in self.outbox.values() if s.oldest_age_s is not None]
        return max(ages, default=0.0)

    @property
    def dropped(self) -> int:
        return sum(self.drops.values())


def decode_heartbeat(body: dict[str, Any]) -> Heartbeat:
    """A stored heartbeat body as a `Heartbeat` (DecodeError names the field that is wrong)."""
    try:
        return msgspec.convert(body, Heartbeat, strict=False)
    except msgspec.ValidationError as exc:
        raise DecodeError(f"heartbeat body: {exc}") from exc


def will_payload(node: str, record_id: str, connected_at: datetime, seq: int) -> bytes:
    """The batch the broker publishes for `node` when its connection dies without a DISCONNECT.

    `record_id` must be new for each connection (the store keeps one record per id) and
    `connected_at` is when that connection began: the record's `ts`.
    """
    body = {"reason": "connection lost without a goodbye (MQTT last will)"}
    env = new_record(node, WILL_STREAM, WILL_KIND, body, seq=seq, ts=connected_at, record_id=record_id)
    return encode_batch(node, WILL_STREAM, [encode_envelope(env)], WILL_EPOCH)
