from datetime import UTC, datetime

import pytest

from cityedge.edge.localbus import sensor_envelope
from cityedge.protocol.errors import ProtocolError, TopicError

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
