"""Ingest's pure decode: which messages are refused whole, which records are refused one by one
(with their reason and seq, beside good neighbours that go on), and why."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityedge.cloud.ingest.decode import MAX_SEQ, REJECTION_REASONS, decode_message, rejection_reason
from cityedge.protocol import Envelope, encode_envelope
from cityedge.protocol.errors import (
    ContractError,
    DecodeError,
    NodeMismatchError,
    OversizeError,
    ProtocolError,
    TopicError,
)
from tests.support.cloud import DISTRICT, NODE, batch, envelope

TOPIC = f"ce/v1/{DISTRICT}/{NODE}/up/events"
LIMIT = 4096


def test_a_good_batch_yields_its_records_in_order_with_their_exact_bytes() -> None:
    envs = [envelope(seq=i) for i in (1, 2, 3)]
    decoded = decode_message(TOPIC, batch(envs), max_bytes=LIMIT)
    records = decoded.records
    assert decoded.refused == [] and (decoded.node, decoded.stream) == (NODE, "events")
    assert [r.id for r in records] == [e.id for e in envs]
    assert [r.seq for r in records] == [1, 2, 3]
    assert {r.district for r in records} == {DISTRICT}
    assert [r.raw for r in records] == [encode_envelope(e) for e in envs]
    assert records[0].ts == envs[0].ts and records[0].body == envs[0].body


def test_an_empty_batch_is_accepted_and_yields_nothing() -> None:
    assert decode_message(TOPIC, batch([]), max_bytes=LIMIT).records == []


def test_unknown_fields_are_kept_in_the_raw_bytes() -> None:
    raw = encode_envelope(envelope())[:-1] + b',"new_field":[1,2]}'
    payload = b'{"v":1,"node":"%s","stream":"events","records":[%s]}' % (NODE.encode(), raw)
    [rec] = decode_message(TOPIC, payload, max_bytes=LIMIT).records
    assert msgspec.json.decode(rec.raw)["new_field"] == [1, 2]


OTHER = envelope(node="edge-node-002")
STREAM = envelope(stream="telemetry")

# A whole message is refused only when it cannot be attributed to the topic's node.
# (scenario, topic, payload, error, reason, words the message must contain)
REJECTED: list[tuple[str, str, bytes, type[ProtocolError], str, str]] = [
    ("bad JSON", TOPIC, b'{"v":1,"node":', DecodeError, "bad_json", "invalid batch"),
    ("not even UTF-8", TOPIC, b"\xff\xfe{}", DecodeError, "bad_json", "invalid batch"),
    ("wrong schema", TOPIC, b'{"v":1,"node":"edge-node-001","stream":"events"}', DecodeError, "schema",
     "records"),
    ("oversized", TOPIC, batch([envelope(body={"pad": "x" * LIMIT})]), OversizeError, "oversize",
     "exceeds the limit of 4096"),
    ("batch node differs from the topic", TOPIC, batch([OTHER], node="edge-node-002"), NodeMismatchError,
     "node_mismatch", "edge-node-002/events"),
    ("stream differs from the topic", TOPIC, batch([STREAM], stream="telemetry"), NodeMismatchError,
     "node_mismatch", "telemetry"),
    ("bad topic", "ce/v1/corridor-a/edge-node-001/up/Bad_Stream", batch([envelope()]), TopicError, "topic",
     "Bad_Stream"),
    ("topic outside the tree", "sensors/edge-node-001/events", batch([envelope()]), TopicError, "topic",
     "not in the tree"),
    ("down topic", f"ce/v1/{DISTRICT}/{NODE}/down/cmd", batch([envelope()]), TopicError, "topic",
     "down topic"),
    ("nested beyond the parser", TOPIC, b'{"v":1,"node":"edge-node-001","stream":"events","records":'
     b'[{"body":' + b"[" * 1500 + b"]" * 1500 + b"}]}", ContractError, "too_deep", "too deep"),
]  # fmt: skip


def _raw(env: Envelope, **changes: object) -> bytes:
    doc = msgspec.json.decode(encode_envelope(env))
    doc.update(changes)
    return msgspec.json.encode(doc)


def _batch_of(raws: list[bytes]) -> bytes:
    return b'{"v":1,"node":"%s","stream":"events","records":[%s]}' % (NODE.encode(), b",".join(raws))


# One record refused by itself: (scenario, its raw JSON, reason, words, seq readable from it)
DEEP = {"a": 1}
for _ in range(40):
    DEEP = {"a": DEEP}
REFUSED_RECORDS = [
    ("a record of the wrong shape", b'{"id":1,"seq":4}', "schema", "record 1", 4),
    ("a seq no store can hold", _raw(envelope(seq=5), seq=MAX_SEQ + 1), "schema", "seq", None),
    ("record node differs from the topic", encode_envelope(envelope(node="edge-node-002", seq=6)),
     "node_mismatch", "edge-node-002/events", 6),
    ("record stream differs from the topic", encode_envelope(envelope(stream="telemetry", seq=7)),
     "node_mismatch", "telemetry", 7),
    ("a NUL in a string", encode_envelope(envelope(seq=8, body={"note": "a\x00b"})), "bad_string", "NUL", 8),
    ("a time before year 1 in UTC", _raw(envelope(seq=9), ts="0001-01-01T00:00:00+01:00"), "bad_ts",
     "UTC", 9),
    ("a time far in the future", _raw(envelope(seq=10), ts="2999-01-01T00:00:00Z"), "bad_ts", "outside", 10),
    ("nested deeper than the contract", encode_envelope(envelope(seq=11, body=DEEP)), "too_deep",
     "nested deeper", 11),
    ("an integer beyond 64 bits", encode_envelope(envelope(seq=12, body={"n": 2**70})), "bad_number",
     "64-bit", 12),
    ("a record over the size limit", encode_envelope(envelope(seq=13, body={"pad": "x" * 70_000})), "too_big",
     "over the limit", 13),
]  # fmt: skip


@pytest.mark.parametrize(("scenario", "raw", "reason", "words", "seq"), REFUSED_RECORDS,
                         ids=[r[0] for r in REFUSED_RECORDS])  # fmt: skip
def test_a_bad_record_is_refused_alone_and_its_neighbours_go_on(
    scenario: str, raw: bytes, reason: str, words: str, seq: int | None
) -> None:
    good = [encode_envelope(envelope(seq=1)), encode_envelope(envelope(seq=2))]
    decoded = decode_message(TOPIC, _batch_of([good[0], raw, good[1]]), max_bytes=1 << 20)
    assert [r.seq for r in decoded.records] == [1, 2], scenario
    [refused] = decoded.refused
    assert (refused.index, refused.reason, refused.seq, refused.raw) == (1, reason, seq, raw), scenario
    assert words in refused.detail, scenario


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
        decoded = decode_message(TOPIC, payload, max_bytes=LIMIT)
    except ProtocolError as exc:
        assert rejection_reason(exc) in REJECTION_REASONS
    else:
        assert all(r.reason in REJECTION_REASONS for r in decoded.refused)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["id", "node", "stream", "kind", "ts", "body", "seq", "x"]),
                                json_values, max_size=8), max_size=3))  # fmt: skip
def test_any_batch_of_record_like_objects_either_decodes_or_is_rejected_with_a_reason(
    docs: list[dict[str, object]],
) -> None:
    payload = msgspec.json.encode({"v": 1, "node": NODE, "stream": "events", "records": docs})
    try:
        decoded = decode_message(TOPIC, payload, max_bytes=LIMIT)
    except ProtocolError as exc:
        assert rejection_reason(exc) in REJECTION_REASONS
    else:  # every record either decodes or is refused, each with a reason
        assert len(decoded.records) + len(decoded.refused) == len(docs)
        assert all(r.reason in REJECTION_REASONS for r in decoded.refused)
