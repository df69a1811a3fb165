"""Ingest's pure core: one MQTT message (topic + payload) to the records it carries.

No I/O and no clock. A message is refused whole only when it cannot be attributed (a topic
outside the tree, a payload over the limit, a batch that is not JSON or names another node);
otherwise each record stands alone: a record that breaks the record contract is refused by
itself, with its reason (and its seq when it can be read, so the node may forget it), and its
good neighbours go on to the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import msgspec

from cityedge.cloud.store.rows import IngestRecord
from cityedge.protocol.codec import decode_envelope
from cityedge.protocol.contract import (
    CONTRACT_REASONS,
    DEFAULT_LIMITS,
    RecordLimits,
    check_envelope,
    check_size,
)
from cityedge.protocol.envelope import Batch
from cityedge.protocol.errors import (
    ContractError,
    DecodeError,
    NodeMismatchError,
    OversizeError,
    ProtocolError,
    TopicError,
)
from cityedge.protocol.topics import parse_topic

__all__ = ["MAX_SEQ", "REJECTION_REASONS", "Decoded", "RefusedRecord", "decode_message", "rejection_reason"]

MAX_SEQ: Final = 2**63 - 1  # what a BIGINT column holds, on both store backends
REJECTION_REASONS: Final = (
    "bad_json",
    "schema",
    "oversize",
    "topic",
    "node_mismatch",
    "store_rejected",
    "internal",
    *CONTRACT_REASONS,
)
_batch_decoder = msgspec.json.Decoder(Batch)


@dataclass(frozen=True)
class RefusedRecord:
    index: int
    reason: str
    detail: str
    raw: bytes
    record_id: str | None
    seq: int | None


@dataclass(frozen=True)
class Decoded:
    """The records of one message that may be stored, and those refused one by one."""

    district: str
    node: str
    stream: str
    epoch: str | None
    records: list[IngestRecord] = field(default_factory=list)
    refused: list[RefusedRecord] = field(default_factory=list)


def decode_message(
    topic: str, payload: bytes, *, max_bytes: int, limits: RecordLimits = DEFAULT_LIMITS
) -> Decoded:
    """Decode one uplink message; raises a `ProtocolError` when the whole message is refused."""
    where = parse_topic(topic)
    if where.direction != "up":
        raise TopicError(f"topic {topic!r} is a down topic; ingest accepts only up/ topics")
    if len(payload) > max_bytes:
        raise OversizeError(f"payload of {len(payload)} bytes exceeds the limit of {max_bytes}")
    try:
        batch = _batch_decoder.decode(payload)
    except RecursionError:
        raise ContractError("too_deep", "invalid batch: nested too deep to read") from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise DecodeError(f"invalid batch: {exc}") from exc
    if batch.node != where.node or batch.stream != where.leaf:
        raise NodeMismatchError(
            f"batch for {batch.node}/{batch.stream} arrived on topic {topic!r} "
            f"(node {where.node}, stream {where.leaf})"
        )
    out = Decoded(where.district, where.node, where.leaf, batch.epoch)
    for index, raw_record in enumerate(batch.records):
        raw = bytes(raw_record)
        try:
            out.records.append(_record(raw, index, where.district, where.node, where.leaf, topic, limits))
        except ProtocolError as exc:
            record_id, seq = _hint(raw)
            detail = str(exc) if str(exc).startswith("record ") else f"record {index}: {exc}"
            out.refused.append(RefusedRecord(index, _record_reason(exc), detail, raw, record_id, seq))
    return out


def _record(
    raw: bytes, index: int, district: str, node: str, stream: str, topic: str, limits: RecordLimits
) -> IngestRecord:
    check_size(len(raw), limits, f"record {index}")
    try:
        env = decode_envelope(raw)
    except RecursionError:
        raise ContractError("too_deep", f"record {index}: nested too deep to read") from None
    if env.node != node or env.stream != stream:
        raise NodeMismatchError(
            f"record {index} (id {env.id}) claims {env.node}/{env.stream} but arrived on {topic!r}"
        )
    if env.seq > MAX_SEQ:
        raise DecodeError(f"record {index} (id {env.id}): seq {env.seq} is above the limit {MAX_SEQ}")
    try:
        check_envelope(env, limits, raw)
    except ContractError as exc:
        raise ContractError(exc.reason, f"record {index} (id {env.id}): {exc}") from None
    return IngestRecord.from_envelope(env, district, raw)


def _hint(raw: bytes) -> tuple[str | None, int | None]:
    """What can still be read of a broken record: its id and seq (so the node may forget it)."""
    try:
        doc = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None, None
    if not isinstance(doc, dict):
        return None, None
    rid, seq = doc.get("id"), doc.get("seq")
    ok_seq = isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq <= MAX_SEQ
    return (rid if isinstance(rid, str) and len(rid) <= 64 else None), (seq if ok_seq else None)


def _record_reason(exc: ProtocolError) -> str:
    if isinstance(exc, ContractError):
        return exc.reason
    return rejection_reason(exc)


def rejection_reason(exc: ProtocolError) -> str:
    """The metric label for a refused message: JSON that does not parse vs a wrong schema."""
    if isinstance(exc, ContractError):
        return exc.reason
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
