"""JSON codec for envelopes and batches (msgspec: the hot path of ingest).

A batch is encoded from records that are already encoded (the outbox stores the exact
bytes it will send), so the uplink never re-encodes and a record is never sent as a
different record than the one committed.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from cityedge.protocol.envelope import Batch, Envelope
from cityedge.protocol.errors import DecodeError, OversizeError

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "decode_batch",
    "decode_envelope",
    "encode_batch",
    "encode_envelope",
]

DEFAULT_MAX_PAYLOAD: Final = 256 * 1024

_KNOWN_FIELDS: Final = frozenset(Envelope.__struct_fields__) - {"extra"}
_encoder = msgspec.json.Encoder()
_batch_decoder = msgspec.json.Decoder(Batch)
_any_decoder = msgspec.json.Decoder(dict[str, Any])
_envelope_decoder = msgspec.json.Decoder(Envelope)


def encode_envelope(env: Envelope) -> bytes:
    """Encode one record; fields from `extra` are written back at top level."""
    doc = msgspec.to_builtins(env)
    extra = doc.pop("extra")
    for key, value in extra.items():
        doc.setdefault(key, value)
    return _encoder.encode(doc)


def decode_envelope(raw: bytes | msgspec.Raw) -> Envelope:
    """Decode and validate one record, keeping unknown fields in `extra`.

    The typed decoder is the fast path; a record it refuses (an unknown field from a newer
    sender, or a real error) takes the slower path that keeps the unknown fields or says
    exactly what is wrong.
    """
    try:
        return _envelope_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
        pass
    try:
        doc = _any_decoder.decode(raw)
        extra = {k: doc.pop(k) for k in [k for k in doc if k not in _KNOWN_FIELDS]}
        if extra:
            doc["extra"] = extra
        return msgspec.convert(doc, Envelope)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise DecodeError(f"invalid record: {exc}") from exc


def encode_batch(node: str, stream: str, encoded_records: list[bytes], epoch: str | None = None) -> bytes:
    """Join already-encoded records into one batch payload without re-encoding them."""
    header: dict[str, Any] = {"v": 1, "node": node, "stream": stream}
    if epoch is not None:
        header["epoch"] = epoch
    head = _encoder.encode(header)
    return head[:-1] + b',"records":[' + b",".join(encoded_records) + b"]}"


def decode_batch(payload: bytes, *, max_bytes: int = DEFAULT_MAX_PAYLOAD) -> tuple[Batch, list[Envelope]]:
    """Decode a batch payload into its header and validated records."""
    if len(payload) > max_bytes:
        raise OversizeError(f"payload of {len(payload)} bytes exceeds the limit of {max_bytes}")
    try:
        batch = _batch_decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise DecodeError(f"invalid batch: {exc}") from exc
    records = []
    for index, raw in enumerate(batch.records):
        try:
            records.append(decode_envelope(raw))
        except DecodeError as exc:
            raise DecodeError(f"record {index}: {exc}") from exc
    return batch, records
