"""Ingest's pure decode: which messages are accepted, and why each bad one is rejected."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityedge.cloud.ingest.decode import MAX_SEQ, REJECTION_REASONS, decode_message, rejection_reason
from cityedge.protocol import encode_envelope
from cityedge.protocol.errors import DecodeError, NodeMismatchError, OversizeError, ProtocolError, TopicError

from .support import DISTRICT, NODE, batch, envelope

TOPIC = f"ce/v1/{DISTRICT}/{NODE}/up/events"
LIMIT = 4096


def test_a_good_batch_yields_its_records_in_order_with_their_exact_bytes() -> None:
    envs = [envelope(seq=i) for i in (1, 2, 3)]
    records = decode_message(TOPIC, batch(envs), max_bytes=LIMIT)
    assert [r.id for r in records] == [e.id for e in envs]
    assert [r.seq for r in records] == [1, 2, 3]
    assert {r.district for r in records} == {DISTRICT}
    assert [r.raw for r in records] == [encode_envelope(e) for e in envs]
    assert records[0].ts == envs[0].ts and records[0].body == envs[0].body


def test_an_empty_batch_is_accepted_and_yields_nothing() -> None:
    assert decode_message(TOPIC, batch([]), max_bytes=LIMIT) == []


def test_unknown_fields_are_kept_in_the_raw_bytes() -> None:
    raw = encode_envelope(envelope())[:-1] + b',"new_field":[1,2]}'
    payload = b'{"v":1,"node":"%s","stream":"events","records":[%s]}' % (NODE.encode(), raw)
    [rec] = decode_message(TOPIC, payload, max_bytes=LIMIT)
    assert msgspec.json.decode(rec.raw)["new_field"] == [1, 2]


OTHER = envelope(node="edge-node-002")
STREAM = envelope(stream="telemetry")

# (scenario, topic, payload, error, reason, words the message must contain)
REJECTED = [
    ("bad JSON", TOPIC, b'{"v":1,"node":', DecodeError, "bad_json", "invalid batch"),
    ("not even UTF-8", TOPIC, b"\xff\xfe{}", DecodeError, "bad_json", "invalid batch"),
    ("wrong schema", TOPIC, b'{"v":1,"node":"edge-node-001","stream":"events"}', DecodeError, "schema",
     "records"),
    ("a record of the wrong shape", TOPIC, b'{"node":"edge-node-001","stream":"events","records":[{"id":1}]}',
     DecodeError, "schema", "record 0"),
    ("a seq no store can hold", TOPIC, batch([envelope(seq=MAX_SEQ + 1)]), DecodeError, "schema", "seq"),
    ("oversized", TOPIC, batch([envelope(body={"pad": "x" * LIMIT})]), OversizeError, "oversize",
     "exceeds the limit of 4096"),
    ("batch node differs from the topic", TOPIC, batch([OTHER], node="edge-node-002"), NodeMismatchError,
     "node_mismatch", "edge-node-002/events"),
    ("record node differs from the topic", TOPIC, batch([OTHER]), NodeMismatchError, "node_mismatch",
     "record 0"),
    ("stream differs from the topic", TOPIC, batch([STREAM], stream="telemetry"), NodeMismatchError,
     "node_mismatch", "telemetry"),
    ("record stream differs from the topic", TOPIC, batch([STREAM]), NodeMismatchError, "node_mismatch",
     "record 0"),
    ("bad topic", "ce/v1/corridor-a/edge-node-001/up/Bad_Stream", batch([envelope()]), TopicError, "topic",
     "Bad_Stream"),
    ("topic outside the tree", "sensors/edge-node-001/events", batch([envelope()]), TopicError, "topic",
     "not in the tree"),
    ("down topic", f"ce/v1/{DISTRICT}/{NODE}/down/cmd", batch([envelope()]), TopicError, "topic",
     "down topic"),
]  # fmt: skip


@pytest.mark.parametrize(("scenario", "topic", "payload", "error", "reason", "words"), REJECTED,
                         ids=[r[0] for r in REJECTED])  # fmt: skip
def test_a_bad_message_is_rejected_with_its_reason_and_what_was_wrong(
    scenario: str, topic: str, payload: bytes, error: type[ProtocolError], reason: str, words: str
) -> None:
    with pytest.raises(error) as caught:
        decode_message(topic, payload, max_bytes=LIMIT)
    assert rejection_reason(caught.value) == reason, scenario
    assert words in str(caught.value), scenario


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | json_values.map(msgspec.json.encode))
def test_any_payload_either_decodes_or_is_rejected_with_a_reason(payload: bytes) -> None:
    try:
        decode_message(TOPIC, payload, max_bytes=LIMIT)
    except ProtocolError as exc:
        assert rejection_reason(exc) in REJECTION_REASONS


@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["id", "node", "stream", "kind", "ts", "body", "seq", "x"]),
                                json_values, max_size=8), max_size=3))  # fmt: skip
def test_any_batch_of_record_like_objects_either_decodes_or_is_rejected_with_a_reason(
    docs: list[dict[str, object]],
) -> None:
    payload = msgspec.json.encode({"v": 1, "node": NODE, "stream": "events", "records": docs})
    try:
        decode_message(TOPIC, payload, max_bytes=LIMIT)
    except ProtocolError as exc:
        assert rejection_reason(exc) in REJECTION_REASONS
