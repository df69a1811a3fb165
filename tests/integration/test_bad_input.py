"""Bad input never costs a good reading, and never stalls the node.

Between good readings, a sensor publishes everything that broke the data plane before (and
what was always refused cleanly): each is quarantined with its reason at the node's door,
findable with `cityedge edge quarantine`, and the agent goes on consuming. A node that skips
the door and sends bad records straight to the cloud gets each one quarantined alone by
ingest (`cityedge cloud quarantine`), its good neighbours stored and acknowledged. When the
outbox has no room (a full reject_new stream, a disk under its floor), the local broker keeps
the messages, unacknowledged, until there is room; then they are stored.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from cityedge.cloud.store import RecordStore
from cityedge.protocol import encode_batch, encode_envelope, up_topic
from cityedge.protocol.topics import local_sensor_topic
from cityedge.transport import TlsFiles, client_tls_context, make_client

from ..support.cloud import envelope
from ..support.services import require
from ..support.stack import DISTRICT, NODE, Stack, cli, tls_dict, wait_until

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]
SENSOR = "air-1"

# (what, stream, payload, the reason the door gives)
BAD = [
    ("malformed JSON", "telemetry", b'{"kind":"reading","body":', "malformed"),
    ("invalid UTF-8", "telemetry", b'{"kind":"reading","body":{"v":"\xff\xfe"}}', "malformed"),
    ("NaN", "telemetry", b'{"kind":"reading","body":{"v":NaN}}', "malformed"),
    ("a non-UUID id", "telemetry", b'{"id":"nope","kind":"reading","body":{}}', "malformed"),
    ("wrong types", "telemetry", b'{"kind":7,"body":[1,2]}', "malformed"),
    ("a bad topic segment", "Not_A_Stream", b'{"kind":"reading","body":{}}', "topic"),
    ("a NUL in a string", "telemetry", b'{"kind":"reading","body":{"v":"a\\u0000b"}}', "bad_string"),
    ("a time before year 1 in UTC", "telemetry",
     b'{"kind":"reading","ts":"0001-01-01T00:00:00+01:00","body":{}}', "bad_ts"),
    ("nested 1,000 deep", "telemetry", b'{"kind":"reading","body":{"v":' + b"[" * 1000 + b"]" * 1000 + b"}}",
     "too_deep"),
    ("300 KB", "telemetry", b'{"kind":"reading","body":{"pad":"' + b"x" * 300_000 + b'"}}', "too_big"),
    ("10 MB", "telemetry", b'{"kind":"reading","body":{"pad":"' + b"x" * 10_000_000 + b'"}}', "too_big"),
]  # fmt: skip


class RawSensor:
    """A plain MQTT sensor (QoS 1) that sends exactly the bytes it is given."""

    def __init__(self, stack: Stack, name: str = SENSOR) -> None:
        assert stack.local is not None
        self.client = make_client(name, "5", persistent=False)
        self.client.tls_set_context(client_tls_context(TlsFiles(**tls_dict(stack.identity(name)))))
        self.client.connect("127.0.0.1", stack.local.port)
        self.client.loop_start()
        self.name = name

    def send(self, stream: str, payload: bytes) -> None:
        # a bad stream segment on purpose sometimes: build that topic by hand
        topic = (
            local_sensor_topic(self.name, stream)
            if stream.islower()
            else f"ce/local/v1/sensors/{self.name}/{stream}"
        )
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def good(self, i: int) -> str:
        rid = str(uuid.uuid4())
        self.send("telemetry", msgspec.json.encode({"id": rid, "kind": "reading", "body": {"i": i}}))
        return rid

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def stored_ids(stack: Stack, stream: str = "telemetry") -> set[str]:
    with RecordStore.open(stack.db_url) as store:
        return {r.id for r in store.records(node=NODE, stream=stream)}


def test_every_bad_message_is_quarantined_with_its_reason_and_every_good_one_is_stored(stack: Stack) -> None:
    stack.start_local_broker()
    stack.ingest()
    agent = stack.agent(NODE, local_bus=stack.local_bus())
    wait_until(lambda: "localbus: subscribed" in agent.tail(), 30, "the agent to subscribe on its broker")
    sensor = RawSensor(stack)
    try:
        good = [sensor.good(0)]
        for i, (_what, stream, payload, _reason) in enumerate(BAD, start=1):
            sensor.send(stream, payload)
            good.append(sensor.good(i))
        wait_until(lambda: stored_ids(stack) >= set(good), 60, "every good reading in the store")
        good.append(sensor.good(99))  # the agent still consumes afterwards
        wait_until(lambda: good[-1] in stored_ids(stack), 30, "a reading sent after all the bad ones")
    finally:
        sensor.close()
    rows = [json.loads(line) for line in cli("edge", "quarantine", "--data-dir", str(stack.tmp / NODE),
                                             "--json").stdout.splitlines()]  # fmt: skip
    reasons = sorted(r["reason"] for r in rows)
    assert reasons == sorted(reason for *_, reason in BAD), rows
    assert all(r["detail"] and r["source"].startswith("ce/local/v1/sensors/") for r in rows)
    assert agent.alive()


def test_bad_records_sent_past_the_door_are_quarantined_alone_by_ingest(stack: Stack) -> None:
    stack.ingest()
    ident = stack.identity(NODE)
    node = make_client(NODE, "5", persistent=False)
    node.tls_set_context(client_tls_context(TlsFiles(**tls_dict(ident))))
    node.connect("127.0.0.1", stack.cloud.port)
    node.loop_start()
    try:
        goods = [envelope(seq=s) for s in (1, 3, 5, 7)]
        raw_good = [encode_envelope(e) for e in goods]
        bad_nul = encode_envelope(envelope(seq=2, body={"note": "a\x00b"}))
        bad_ts = msgspec.json.encode({**msgspec.json.decode(encode_envelope(envelope(seq=4))),
                                      "ts": "0001-01-01T00:00:00+01:00"})  # fmt: skip
        bad_int = encode_envelope(envelope(seq=6, body={"n": 2**70}))
        records = [raw_good[0], bad_nul, raw_good[1], bad_ts, raw_good[2], bad_int, raw_good[3]]
        info = node.publish(up_topic(DISTRICT, NODE, "events"), encode_batch(NODE, "events", records), qos=1)
        info.wait_for_publish(10)
        wait_until(
            lambda: stored_ids(stack, "events") == {e.id for e in goods}, 30, "the good neighbours stored"
        )
    finally:
        node.disconnect()
        node.loop_stop()
    rows = [
        json.loads(line)
        for line in cli("cloud", "quarantine", "--db", stack.db_url, "--json").stdout.splitlines()
    ]
    assert sorted((r["seq"], r["reason"]) for r in rows) == [
        (2, "bad_string"),
        (4, "bad_ts"),
        (6, "bad_number"),
    ]


def test_a_full_reject_new_stream_leaves_messages_with_the_local_broker_until_there_is_room(
    stack: Stack,
) -> None:
    stack.start_local_broker()
    stack.ingest()
    streams = {"telemetry": {"priority": 2, "when_full": "reject_new"}}
    agent = stack.agent(NODE, local_bus=stack.local_bus(), outbox={"max_records": 20, "streams": streams})
    sensor = RawSensor(stack)
    try:
        wait_until(lambda: "localbus: subscribed" in agent.tail(), 30, "the agent to subscribe on its broker")
        stack.proxy.cut()  # nothing leaves the node: the outbox fills up
        ids = [sensor.good(i) for i in range(60)]
        wait_until(lambda: "leaving them with the local broker" in agent.tail(), 30, "the agent to hold back")
        time.sleep(1.0)
        assert stored_ids(stack) == set()
        stack.proxy.restore()
        wait_until(
            lambda: stored_ids(stack) >= set(ids), 90, "every held message, stored once there was room"
        )
    finally:
        sensor.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB filesystem of its own, so the test decides how full the disk is."""
    require(os.geteuid() == 0 and shutil.which("mount") is not None, "root and mount(8) to make a tmpfs")
    where = tmp_path / "small-disk"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_disk_under_the_floor_leaves_messages_with_the_local_broker_until_space_is_freed(
    stack: Stack, small_disk: Path
) -> None:
    stack.start_local_broker()
    stack.ingest()
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * 10 * 1024 * 1024)  # 6 MB free, under an 8 MB floor
    agent = stack.agent(
        NODE,
        local_bus=stack.local_bus(),
        data_dir=str(small_disk / NODE),
        outbox={"min_free_disk_bytes": 8 << 20},
    )
    sensor = RawSensor(stack)
    try:
        wait_until(
            lambda: "under the outbox's floor" in agent.tail(), 30, "the agent to warn loudly at start"
        )
        wait_until(lambda: "localbus: subscribed" in agent.tail(), 30, "the agent to subscribe on its broker")
        ids = [sensor.good(i) for i in range(30)]
        wait_until(lambda: "leaving them with the local broker" in agent.tail(), 30, "the agent to hold back")
        assert stored_ids(stack) == set()
        ballast.unlink()
        wait_until(
            lambda: stored_ids(stack) >= set(ids), 90, "every held message, stored once there was space"
        )
    finally:
        sensor.close()
