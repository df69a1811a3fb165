"""The wire contract shared by edge and cloud: pure, no I/O, no clock."""

from cityedge.protocol.codec import (
    decode_batch,
    decode_envelope,
    encode_batch,
    encode_envelope,
)
from cityedge.protocol.envelope import KNOWN_STREAMS, SCHEMA_VERSION, Batch, Envelope, new_record
from cityedge.protocol.errors import (
    CityEdgeError,
    ConfigError,
    DecodeError,
    NodeMismatchError,
    OutboxError,
    OversizeError,
    PkiError,
    ProtocolError,
    StoreError,
    TopicError,
    TransitionError,
)
from cityedge.protocol.ids import uuid7
from cityedge.protocol.topics import down_topic, parse_topic, up_filter, up_topic

__all__ = [
    "KNOWN_STREAMS",
    "SCHEMA_VERSION",
    "Batch",
    "CityEdgeError",
    "ConfigError",
    "DecodeError",
    "Envelope",
    "NodeMismatchError",
    "OutboxError",
    "OversizeError",
    "PkiError",
    "ProtocolError",
    "StoreError",
    "TopicError",
    "TransitionError",
    "decode_batch",
    "decode_envelope",
    "down_topic",
    "encode_batch",
    "encode_envelope",
    "new_record",
    "parse_topic",
    "up_filter",
    "up_topic",
    "uuid7",
]
