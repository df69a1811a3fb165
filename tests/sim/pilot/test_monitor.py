"""The cloud-side pixel check: plain metadata passes, anything that could be a picture is named."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from cityedge.protocol.codec import encode_batch, encode_envelope
from cityedge.protocol.envelope import Envelope
from cityedge.protocol.ids import uuid7
from cityedge.sim.pilot.monitor import inspect_payload


def batch(body: dict[str, object]) -> bytes:
    env = Envelope(id=str(uuid7(1)), node="edge-node-001", stream="events", kind="incident",
                   ts=datetime.now(UTC), body=body)  # fmt: skip
    return encode_batch("edge-node-001", "events", [encode_envelope(env)])


def test_incident_metadata_passes() -> None:
    assert (
        inspect_payload(batch({"type": "stopped_vehicle", "lane": "east_1", "position": [310.5, 200.0]}))
        == []
    )


def test_a_base64_picture_in_a_field_is_named() -> None:
    jpeg = base64.b64encode(b"\xff\xd8\xff\xe0" + bytes(64)).decode()
    problems = inspect_payload(batch({"type": "stopped_vehicle", "thumbnail": jpeg}))
    assert any("JPEG (base64)" in p for p in problems)


def test_a_long_string_is_named_even_without_a_signature() -> None:
    problems = inspect_payload(batch({"blob": "A" * 5000}))
    assert any("5000-character string" in p for p in problems)


def test_raw_image_bytes_and_foreign_payloads_are_named() -> None:
    problems = inspect_payload(b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert any("PNG signature" in p for p in problems) and any("not a cityedge batch" in p for p in problems)


def test_the_stores_acknowledgements_pass_and_anything_else_on_down_ack_is_flagged() -> None:
    import msgspec

    from cityedge.protocol.acks import StoreAck, StreamAck

    ack = msgspec.json.encode(
        StoreAck(node="edge-node-001", streams=[StreamAck(stream="events", ranges=[(1, 9)])])
    )
    topic = "ce/v1/corridor-a/edge-node-001/down/ack"
    assert inspect_payload(ack, topic) == []
    assert inspect_payload(b"\xff\xd8\xff" + b"x" * 100, topic)


def test_an_ota_notice_passes_and_anything_else_on_down_ota_is_flagged() -> None:
    import msgspec

    from cityedge.protocol.release import OtaNotice

    topic = "ce/v1/corridor-a/edge-node-001/down/ota"
    assert inspect_payload(msgspec.json.encode(OtaNotice(channel="canary", version="1.1.0")), topic) == []
    problems = inspect_payload(b'{"channel": "canary", "frame": "' + b"A" * 50 + b'"}', topic)
    assert problems and "not an OTA notice" in problems[0]
