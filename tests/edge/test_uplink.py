"""The uplink against real brokers: batching, acks only on PUBACK, protocol fallback, bad TLS files."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cityedge.edge.app import OutboxSink
from cityedge.edge.config import TlsFiles, UplinkConfig
from cityedge.edge.outbox import Outbox
from cityedge.edge.uplink import Uplink
from cityedge.sim.brokers import MosquittoProcess
from cityedge.sim.embedded import EmbeddedBroker

from ..support.services import TlsBroker
from ..support.stack import wait_until


def drained(outbox: Outbox) -> bool:
    stats = outbox.stats()
    return stats.total_pending == 0 and stats.total_inflight == 0


def emit(sink: OutboxSink, n: int) -> None:
    for i in range(n):
        sink.emit("telemetry", "reading", {"i": i}, datetime.now(UTC))


@pytest.mark.mosquitto
def test_records_leave_the_outbox_only_when_the_broker_acknowledges_them(
    tmp_path: Path, plain_broker: MosquittoProcess
) -> None:
    outbox = Outbox.open(tmp_path / "outbox.db")
    uplink = Uplink(UplinkConfig(port=plain_broker.port, batch_max_records=10), "edge-node-001", "d", outbox)
    sink = OutboxSink(outbox, "edge-node-001", {}, uplink)
    plain_broker.stop()
    uplink.start()
    try:
        emit(sink, 50)
        time.sleep(0.5)
        assert outbox.stats().total_pending == 50  # no broker, no PUBACK: nothing leaves
        plain_broker.start()
        wait_until(lambda: drained(outbox), 20, "the outbox to drain")
        stats = uplink.stats()
        assert stats.records_acked == 50 and stats.batches_sent >= 5  # batches of at most 10
    finally:
        uplink.stop()
        outbox.close()


# amqtt leaks the transport of a connection it refuses (the MQTT 5 attempt).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_auto_protocol_falls_back_to_mqtt_3_1_1_on_a_broker_without_mqtt_5(tmp_path: Path) -> None:
    broker = EmbeddedBroker().start()
    outbox = Outbox.open(tmp_path / "outbox.db")
    uplink = Uplink(UplinkConfig(port=broker.port, backoff_base_s=0.05), "edge-node-001", "d", outbox)
    try:
        uplink.start()
        emit(OutboxSink(outbox, "edge-node-001", {}, uplink), 20)
        wait_until(lambda: drained(outbox), 20, "the outbox to drain")
        assert uplink.stats().protocol == "3.1.1"
    finally:
        uplink.stop()
        outbox.close()
        broker.stop()


@pytest.mark.mosquitto
def test_a_missing_certificate_is_retried_not_fatal(tmp_path: Path, tls_broker: TlsBroker) -> None:
    ident = tls_broker.identity("edge-node-001")
    later = tmp_path / "later"
    tls = TlsFiles(cafile=ident.ca_path, certfile=later / "node.crt", keyfile=later / "node.key")
    outbox = Outbox.open(tmp_path / "outbox.db")
    uplink = Uplink(
        UplinkConfig(port=tls_broker.port, tls=tls, backoff_base_s=0.05, backoff_cap_s=0.2),
        "edge-node-001",
        "d",
        outbox,
    )
    try:
        uplink.start()
        emit(OutboxSink(outbox, "edge-node-001", {}, uplink), 5)
        time.sleep(0.5)
        assert not uplink.connected and uplink.reconnects > 0
        later.mkdir()
        shutil.copy(ident.cert_path, later / "node.crt")
        shutil.copy(ident.key_path, later / "node.key")
        wait_until(lambda: drained(outbox), 20, "the outbox to drain once the files exist")
    finally:
        uplink.stop()
        outbox.close()
