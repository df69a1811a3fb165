"""Helpers for the cloud tests: records, batches, a device that publishes, waiting."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.engine import make_url

from cityedge.cloud.store import IngestRecord
from cityedge.pki import IssuedIdentity
from cityedge.protocol import Envelope, encode_batch, encode_envelope, uuid7
from cityedge.protocol.acks import StoreAck
from cityedge.protocol.topics import ack_topic

DISTRICT = "corridor-a"
NODE = "edge-node-001"
_ms = [1_790_000_000_000]


def envelope(stream: str = "events", seq: int = 1, node: str = NODE, **kw: Any) -> Envelope:
    _ms[0] += 1
    base: dict[str, Any] = {
        "id": str(uuid7(_ms[0])), "node": node, "stream": stream, "kind": "incident.stopped",
        "ts": datetime(2026, 11, 26, 6, 0, 0, 123456, tzinfo=UTC), "body": {"lane": 2}, "seq": seq,
    }  # fmt: skip
    base.update(kw)
    return Envelope(**base)


def record(stream: str = "events", seq: int = 1, node: str = NODE, **kw: Any) -> IngestRecord:
    return IngestRecord.from_envelope(envelope(stream, seq, node, **kw), DISTRICT)


def batch(envs: list[Envelope], node: str = NODE, stream: str = "events") -> bytes:
    return encode_batch(node, stream, [encode_envelope(e) for e in envs])


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Device:
    """A node publishing over mTLS with paho, QoS 1 (waits for each PUBACK), and listening on
    its `down/ack` topic for the store's acknowledgements."""

    def __init__(self, port: int, ident: IssuedIdentity, district: str = DISTRICT) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=ident.cert_path.stem, protocol=mqtt.MQTTv5
        )
        self.client.tls_set(
            ca_certs=str(ident.ca_path), certfile=str(ident.cert_path), keyfile=str(ident.key_path)
        )
        self.store_acks: list[StoreAck] = []
        subscribed = threading.Event()
        self.client.on_message = lambda _c, _u, msg: self.store_acks.append(
            msgspec.json.decode(msg.payload, type=StoreAck)
        )
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(ack_topic(district, ident.cert_path.stem), qos=1)
        assert subscribed.wait(10), "the device could not subscribe to its ack topic"

    def acked_seqs(self, stream: str) -> list[int]:
        """Every seq of `stream` the store has acknowledged so far (repeats kept)."""
        return [
            seq for ack in list(self.store_acks) for s in ack.streams if s.stream == stream
            for low, high in s.ranges for seq in range(low, high + 1)
        ]  # fmt: skip

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        assert info.is_published(), f"no PUBACK for the publish to {topic}"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def pg_admin(pg_url: str) -> str:
    """A libpq URL for psycopg itself (no SQLAlchemy driver suffix)."""
    return make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def pg_schema(pg_url: str, **query: str) -> Iterator[str]:
    """A store URL whose tables live in a fresh schema, dropped afterwards: the database
    `test` is shared with other tests."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin(pg_url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = make_url(pg_url).update_query_dict({"options": f"-csearch_path={schema}", **query})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(pg_admin(pg_url), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
