"""The node's door: a sensor message becomes an envelope, or is refused with the reason that
goes into the quarantine (and to the sensor)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cityedge.edge.door import refusal_of, sensor_envelope
from cityedge.protocol.errors import ContractError, ProtocolError, TopicError

NOW = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
TOPIC = "ce/local/v1/sensors/air-1/telemetry"


def test_a_sensor_message_becomes_an_envelope_that_keeps_the_sensors_id_and_time() -> None:
    payload = (
        b'{"id":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","kind":"reading",'
        b'"ts":"2026-11-26T04:59:59Z","body":{"pm25":12}}'
    )
    env = sensor_envelope(TOPIC, payload, "edge-node-001", {"agent": "0.1.0"}, NOW)
    assert env.id == "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
    assert (env.node, env.stream, env.kind) == ("edge-node-001", "telemetry", "reading")
    assert env.ts == datetime(2026, 11, 26, 4, 59, 59, tzinfo=UTC)
    assert env.body == {"sensor": "air-1", "pm25": 12}


def test_a_message_without_id_or_time_gets_them_at_the_node() -> None:
    env = sensor_envelope(TOPIC, b'{"kind":"reading","body":{}}', "edge-node-001", {}, NOW)
    assert env.ts == NOW and len(env.id) == 36


@pytest.mark.parametrize(
    ("topic", "payload", "error"),
    [
        (TOPIC, b"not json", ProtocolError),
        (TOPIC, b'{"body":{}}', ProtocolError),
        (TOPIC, b'{"kind":"reading","body":{},"id":"nope"}', ProtocolError),
        (TOPIC, b'{"kind":"reading","body":{},"ts":"2026-11-26T05:00:00"}', ProtocolError),
        (TOPIC, b'{"kind":"Bad Kind!","body":{}}', ProtocolError),
        ("ce/local/v1/sensors/air-1", b'{"kind":"reading","body":{}}', TopicError),
        ("ce/local/v1/sensors/Air#1/telemetry", b'{"kind":"reading","body":{}}', TopicError),
    ],
)
def test_bad_sensor_messages_are_refused_with_a_reason(
    topic: str, payload: bytes, error: type[Exception]
) -> None:
    with pytest.raises(error):
        sensor_envelope(topic, payload, "edge-node-001", {}, NOW)


DEEP = b'{"kind":"reading","body":{"a":' + b"[" * 1000 + b"]" * 1000 + b"}}"


@pytest.mark.parametrize(
    ("payload", "reason", "words"),
    [
        (b"not json", "malformed", "bad message"),
        (b'{"kind":"reading","body":{"v":"a\\u0000b"}}', "bad_string", "NUL"),
        (b'{"kind":"reading","body":{"v":"\\ud800"}}', "malformed", "bad message"),
        (b'{"kind":"reading","ts":"0001-01-01T00:00:00+01:00","body":{}}', "bad_ts", "UTC"),
        (b'{"kind":"reading","ts":"1969-12-31T23:59:59Z","body":{}}', "bad_ts", "outside"),
        (b'{"kind":"reading","body":{"n":123456789012345678901234567890}}', "bad_number", "64-bit"),
        (DEEP, "too_deep", "nested too deep"),
        (b'{"kind":"reading","body":{"pad":"' + b"x" * 70_000 + b'"}}', "too_big", "over the limit"),
        (
            b'{"kind":"reading","body":{"a":' + b'{"a":' * 40 + b"1" + b"}" * 40 + b"}}",
            "too_deep",
            "deeper than 32",
        ),
    ],
)
def test_a_message_that_breaks_the_record_contract_is_refused_with_its_reason(
    payload: bytes, reason: str, words: str
) -> None:
    with pytest.raises(ContractError) as caught:
        sensor_envelope(TOPIC, payload, "edge-node-001", {}, NOW)
    assert caught.value.reason == reason and words in str(caught.value)
    assert refusal_of(caught.value, payload).reason == reason


def test_a_node_that_requires_ids_refuses_a_message_without_one() -> None:
    with pytest.raises(ContractError) as caught:
        sensor_envelope(TOPIC, b'{"kind":"reading","body":{}}', "edge-node-001", {}, NOW, require_id=True)
    assert caught.value.reason == "no_id"


def test_a_refusal_keeps_the_sensors_id_when_it_can_be_read() -> None:
    payload = (
        b'{"id":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","kind":"reading",'
        b'"ts":"1900-01-01T00:00:00Z","body":{}}'
    )
    with pytest.raises(ContractError) as caught:
        sensor_envelope(TOPIC, payload, "edge-node-001", {}, NOW)
    refusal = refusal_of(caught.value, payload)
    assert (refusal.reason, refusal.record_id) == ("bad_ts", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
