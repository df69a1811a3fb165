"""The uplink against real brokers: a record leaves the node only when the cloud store has it,
store acknowledgements for someone else delete nothing, protocol fallback, bad TLS files, and
a refused publish said once, with what to check."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from cityedge.cloud.ingest import IngestConfig, IngestConsumer
from cityedge.cloud.store import RecordStore
from cityedge.deploy.mosquitto import MosquittoConfig
from cityedge.edge.app import OutboxSink
from cityedge.edge.config import UplinkConfig
from cityedge.edge.outbox import GroupCommitter, Outbox, ResendPolicy
from cityedge.edge.uplink import Uplink
from cityedge.protocol.acks import StoreAck, StreamAck
from cityedge.protocol.topics import ack_topic
from cityedge.sim.brokers import MosquittoProcess, free_port
from cityedge.sim.embedded import EmbeddedBroker
from cityedge.transport import TlsFiles, make_client

from ..support.services import TlsBroker, require_mosquitto
from ..support.stack import wait_until

NODE = "edge-node-001"


class Node:
    """An outbox, its group committer, a sink and an uplink, as the agent wires them."""

    def __init__(self, tmp: Path, config: UplinkConfig, district: str = "d", timeout_s: float = 30.0) -> None:
        self.outbox = Outbox.open(tmp / "outbox.db", resend=ResendPolicy(timeout_s, timeout_s * 4))
        self.group = GroupCommitter(self.outbox).start()
        self.sink = OutboxSink(self.outbox, self.group, NODE, {})
        self.uplink = Uplink(config, NODE, district, self.outbox)

    def emit(self, n: int) -> None:
        for i in range(n):
            self.sink.emit("telemetry", "reading", {"i": i}, datetime.now(UTC))

    def close(self) -> None:
        self.uplink.stop()
        self.group.stop()
        self.outbox.close()


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    made: list[Node] = []
    yield made
    for node in made:
        node.close()


def all_sent(outbox: Outbox) -> bool:
    stats = outbox.stats()
    return stats.total_pending == 0 and stats.total_inflight == 0


@pytest.mark.mosquitto
def test_a_record_the_broker_took_stays_on_the_node_until_the_store_has_it(
    tmp_path: Path, plain_broker: MosquittoProcess, nodes: list[Node]
) -> None:
    node = Node(
        tmp_path,
        UplinkConfig(port=plain_broker.port, batch_max_records=10, backoff_base_s=0.05),
        timeout_s=0.5,
    )
    nodes.append(node)
    plain_broker.stop()
    node.uplink.start()
    node.emit(50)
    time.sleep(0.5)
    assert node.outbox.stats().total_pending == 50  # no broker: nothing goes
    plain_broker.start()
    wait_until(lambda: node.uplink.stats().batches_sent >= 5, 20, "the batches to go out")
    # The broker took them, but no ingest ever subscribed: the broker kept nothing.
    time.sleep(1.0)
    assert node.outbox.stats().total_records == 50
    store = RecordStore.open(f"sqlite:///{tmp_path / 'cloud.db'}")
    consumer = IngestConsumer(IngestConfig(port=plain_broker.port, client_id="ingest"), store).start()
    try:
        assert consumer.wait_subscribed(15)
        wait_until(
            lambda: node.outbox.stats().total_records == 0, 30, "the resends to be stored and acknowledged"
        )
        assert sorted(r.seq for r in store.records()) == list(range(1, 51))
        stats = node.outbox.stats().streams["telemetry"]
        assert stats.acked == 50 and stats.resent >= 50
    finally:
        consumer.stop()
        store.close()


@pytest.mark.mosquitto
def test_store_acks_for_another_node_or_outbox_or_that_do_not_decode_delete_nothing(
    tmp_path: Path, plain_broker: MosquittoProcess, nodes: list[Node]
) -> None:
    node = Node(tmp_path, UplinkConfig(port=plain_broker.port))
    nodes.append(node)
    node.uplink.start()
    node.emit(5)
    wait_until(lambda: node.outbox.stats().total_sent == 5, 20, "the records to be sent")
    cloud = make_client("fake-ingest", "5", persistent=False)
    cloud.connect("127.0.0.1", plain_broker.port)
    cloud.loop_start()
    try:
        topic = ack_topic("d", NODE)
        everything = [(1, 5)]
        for ack in (
            StoreAck(node="edge-node-002", streams=[StreamAck(stream="telemetry", ranges=everything)]),
            StoreAck(
                node=NODE, streams=[StreamAck(stream="telemetry", ranges=everything, epoch="wiped-outbox")]
            ),
        ):
            cloud.publish(topic, msgspec.json.encode(ack), qos=1).wait_for_publish(5)
        cloud.publish(topic, b'{"not": "an ack"}', qos=1).wait_for_publish(5)
        time.sleep(0.5)
        assert node.outbox.stats().total_records == 5
        right = StoreAck(
            node=NODE, streams=[StreamAck(stream="telemetry", ranges=[(2, 3)], epoch=node.outbox.epoch)]
        )
        cloud.publish(topic, msgspec.json.encode(right), qos=1).wait_for_publish(5)
        wait_until(lambda: node.outbox.stats().total_records == 3, 10, "the two acknowledged records to go")
    finally:
        cloud.disconnect()
        cloud.loop_stop()


# amqtt leaks the transport of a connection it refuses (the MQTT 5 attempt).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_auto_protocol_falls_back_to_mqtt_3_1_1_on_a_broker_without_mqtt_5(
    tmp_path: Path, nodes: list[Node]
) -> None:
    broker = EmbeddedBroker().start()
    node = Node(tmp_path, UplinkConfig(port=broker.port, backoff_base_s=0.05))
    nodes.append(node)
    try:
        node.uplink.start()
        node.emit(20)
        wait_until(lambda: all_sent(node.outbox), 20, "the broker to take every record")
        assert node.uplink.stats().protocol == "3.1.1"
    finally:
        node.uplink.stop()
        broker.stop()


@pytest.mark.mosquitto
def test_a_missing_certificate_is_retried_not_fatal(
    tmp_path: Path, tls_broker: TlsBroker, nodes: list[Node]
) -> None:
    ident = tls_broker.identity(NODE)
    later = tmp_path / "later"
    tls = TlsFiles(cafile=ident.ca_path, certfile=later / "node.crt", keyfile=later / "node.key")
    node = Node(tmp_path, UplinkConfig(port=tls_broker.port, tls=tls, backoff_base_s=0.05, backoff_cap_s=0.2))
    nodes.append(node)
    node.uplink.start()
    node.emit(5)
    time.sleep(0.5)
    assert not node.uplink.connected
    later.mkdir()
    shutil.copy(ident.cert_path, later / "node.crt")
    shutil.copy(ident.key_path, later / "node.key")
    wait_until(lambda: all_sent(node.outbox), 20, "the broker to take every record once the files exist")


@pytest.mark.mosquitto
def test_a_publish_the_broker_refuses_is_said_once_naming_topic_node_district_and_the_fix(
    tmp_path: Path, nodes: list[Node], caplog: pytest.LogCaptureFixture
) -> None:
    require_mosquitto()
    acl = tmp_path / "acl.conf"
    acl.write_text("pattern write ce/v1/corridor-a/%c/up/+\npattern read ce/v1/corridor-a/%c/down/+\n")
    cfg = MosquittoConfig(data_dir=tmp_path / "data", plain_port=free_port(), acl_file=acl)
    broker = MosquittoProcess(cfg, tmp_path / "broker").start()
    try:
        config = UplinkConfig(
            port=broker.port, protocol="5", batch_max_records=1, backoff_base_s=0.05, backoff_cap_s=0.1
        )
        node = Node(tmp_path, config, district="corridor-b")  # the broker serves corridor-a
        nodes.append(node)
        with caplog.at_level(logging.INFO, logger="cityedge.edge.uplink"):
            node.uplink.start()
            node.emit(3)
            wait_until(lambda: node.uplink._refusals >= 5, 20, "several refused attempts")
        refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert len(refused) == 1, refused  # once, not once per retry
        assert "ce/v1/corridor-b/edge-node-001/up/telemetry" in refused[0]
        assert "district 'corridor-b'" in refused[0] and "Not authorized" in refused[0]
        assert node.outbox.stats().total_records == 3  # nothing lost
    finally:
        broker.kill()
