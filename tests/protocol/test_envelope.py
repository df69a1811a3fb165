from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityedge.protocol import (
    DecodeError,
    Envelope,
    OversizeError,
    TopicError,
    decode_batch,
    decode_envelope,
    encode_batch,
    encode_envelope,
    parse_topic,
    up_filter,
    up_topic,
    uuid7,
)
from cityedge.protocol.ids import is_uuid7, uuid7_ms


def make(**kw: object) -> Envelope:
    base: dict[str, object] = dict(
        id=str(uuid7(1_700_000_000_000)),
        node="edge-node-001",
        stream="events",
        kind="incident.stopped",
        ts=datetime(2026, 1, 1, tzinfo=UTC),
        body={"lane": 2},
        seq=7,
    )
    base.update(kw)
    return Envelope(**base)  # type: ignore[arg-type]


def test_uuid7_carries_its_millisecond_and_version() -> None:
    u = uuid7(1_700_000_000_123)
    assert is_uuid7(u)
    assert uuid7_ms(u) == 1_700_000_000_123


def test_uuid7_orders_by_time() -> None:
    assert str(uuid7(1000)) < str(uuid7(1001))


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.integers() | st.text(max_size=5)))
def test_envelope_round_trips_with_any_body(body: dict[str, object]) -> None:
    env = make(body=body)
    assert decode_envelope(encode_envelope(env)) == env


def test_unknown_fields_from_newer_senders_are_kept() -> None:
    raw = encode_envelope(make())[:-1] + b',"priority_hint":"high","geo":{"lat":1.5}}'
    env = decode_envelope(raw)
    assert env.extra == {"priority_hint": "high", "geo": {"lat": 1.5}}
    again = msgspec.json.decode(encode_envelope(env))
    assert again["priority_hint"] == "high" and again["geo"] == {"lat": 1.5}


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{not json", "invalid record"),
        (b'{"id":"x"}', "invalid record"),
        (
            b'{"id":"018bcfe5-6800-70dd-a801-688171bb9e56","node":"N/A","stream":"events",'
            b'"kind":"k","ts":"2026-01-01T00:00:00Z","body":{}}',
            "node",
        ),
        (
            b'{"id":"018bcfe5-6800-70dd-a801-688171bb9e56","node":"n","stream":"events",'
            b'"kind":"k","ts":"2026-01-01T00:00:00","body":{}}',
            "UTC",
        ),
    ],
)
def test_bad_records_are_refused_with_a_reason(raw: bytes, fragment: str) -> None:
    with pytest.raises(DecodeError, match=fragment):
        decode_envelope(raw)


def test_batch_joins_encoded_records_without_reencoding() -> None:
    records = [encode_envelope(make(seq=i)) for i in range(3)]
    batch, envs = decode_batch(encode_batch("edge-node-001", "events", records))
    assert batch.node == "edge-node-001" and [e.seq for e in envs] == [0, 1, 2]
    assert [bytes(r) for r in batch.records] == records


def test_batch_names_the_bad_record_and_refuses_oversize() -> None:
    payload = encode_batch("n", "events", [encode_envelope(make()), b'{"id":1}'])
    with pytest.raises(DecodeError, match="record 1"):
        decode_batch(payload)
    with pytest.raises(OversizeError):
        decode_batch(payload, max_bytes=10)


def test_topics_build_and_parse() -> None:
    topic = up_topic("corridor-a", "edge-node-001", "events")
    assert topic == "ce/v1/corridor-a/edge-node-001/up/events"
    parsed = parse_topic(topic)
    assert (parsed.node, parsed.direction, parsed.leaf) == ("edge-node-001", "up", "events")
    assert up_filter(share_group="ingest") == "$share/ingest/ce/v1/+/+/up/+"


@pytest.mark.parametrize(
    "bad", ["ce/v1/d/n/up", "x/v1/d/n/up/events", "ce/v1/d/N+/up/e", "ce/v1/d/n/sideways/e"]
)
def test_bad_topics_are_refused(bad: str) -> None:
    with pytest.raises(TopicError):
        parse_topic(bad)


@pytest.mark.parametrize("segment", ["a/b", "a+", "#", "UPPER", ""])
def test_topic_builder_refuses_wildcards_and_separators(segment: str) -> None:
    with pytest.raises(TopicError):
        up_topic("d", segment, "events")
