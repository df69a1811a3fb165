"""The node's door: every record that enters the outbox passes the record contract here.

Sensor messages from the local bus and records from the node's own producers (cameras,
heartbeat) alike. What breaks the contract for what it is (malformed, too big, too deep, a
timestamp or string the stores cannot hold) is refused with its reason and kept in the
outbox's quarantine; it is never retried and never silently dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import msgspec

from cityedge.protocol.contract import DEFAULT_LIMITS, RecordLimits, check_envelope, check_size
from cityedge.protocol.envelope import Envelope, Kind
from cityedge.protocol.errors import ContractError, ProtocolError, TopicError
from cityedge.protocol.ids import uuid7
from cityedge.protocol.topics import parse_local_sensor_topic

__all__ = ["Refusal", "SensorMessage", "refusal_of", "sensor_envelope"]

log = logging.getLogger(__name__)


SensorId = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")]


class SensorMessage(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """What a sensor publishes locally. `id` (a UUID) makes a resend harmless. The decoder
    checks every field's form itself, so the envelope is built without a second validation."""

    kind: Kind
    body: dict[str, Any]
    id: SensorId | None = None
    ts: datetime | None = None


class _IdOnly(msgspec.Struct, forbid_unknown_fields=False):
    id: str | None = None


_decoder = msgspec.json.Decoder(SensorMessage)
_id_decoder = msgspec.json.Decoder(_IdOnly)


@dataclass(frozen=True)
class Refusal:
    """Why a message cannot enter, and the sensor's own id for it when one could be read."""

    reason: str
    detail: str
    record_id: str | None


def sensor_envelope(
    topic: str,
    payload: bytes,
    node_id: str,
    versions: dict[str, str],
    now: datetime,
    *,
    require_id: bool = False,
    limits: RecordLimits = DEFAULT_LIMITS,
) -> Envelope:
    """One local sensor message as an envelope; raises a ProtocolError (with `reason`) naming
    what is wrong. A message without an id gets one here, unless `require_id`."""
    sensor, stream = parse_local_sensor_topic(topic)
    check_size(len(payload), limits, f"sensor {sensor}: message on {topic}")
    msg = _decode(sensor, topic, payload)
    if msg.id is None and require_id:
        raise ContractError(
            "no_id", f"sensor {sensor}: message on {topic} has no id (this node requires one)"
        )
    ts = msg.ts if msg.ts is not None else now
    if ts.tzinfo is None:
        raise ContractError(
            "malformed", f"sensor {sensor}: invalid record on {topic}: ts must carry a UTC offset"
        )
    record_id = msg.id.lower() if msg.id is not None else str(uuid7(int(now.timestamp() * 1000)))
    # node_id is the agent's own (validated config), the topic gave sensor and stream, the
    # decoder checked kind, id and ts: the constructor needs no second look.
    env = Envelope(
        id=record_id, node=node_id, stream=stream, kind=msg.kind, ts=ts,
        body={"sensor": sensor, **msg.body}, ver=versions,
    )  # fmt: skip
    try:
        check_envelope(env, limits, payload)
    except ContractError as exc:
        raise ContractError(exc.reason, f"sensor {sensor}: {exc}") from None
    return env


def _decode(sensor: str, topic: str, payload: bytes) -> SensorMessage:
    try:
        return _decoder.decode(payload)
    except RecursionError:
        raise ContractError(
            "too_deep", f"sensor {sensor}: message on {topic} is nested too deep to read"
        ) from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ContractError("malformed", f"sensor {sensor}: bad message on {topic}: {exc}") from exc


def refusal_of(exc: ProtocolError, payload: bytes) -> Refusal:
    """The refusal to quarantine and to confirm to the sensor (with its id when readable)."""
    reason = "topic" if isinstance(exc, TopicError) else getattr(exc, "reason", "malformed")
    record_id = None
    if len(payload) <= DEFAULT_LIMITS.max_record_bytes * 16:
        try:
            record_id = _id_decoder.decode(payload).id
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            record_id = None
    return Refusal(reason, str(exc), record_id)
