"""The ingest consumer against a real Mosquitto with mutual TLS: good records stored exactly
once, bad messages and records quarantined (alone: their neighbours are stored), each node told
what is stored, and nothing acknowledged before the store commit (a failing store, a crash
between commit and ack)."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from cityedge.cloud.ingest import IngestConfig, IngestConsumer
from cityedge.cloud.store import (
    IngestRecord,
    InsertResult,
    QuarantinedItem,
    RecordStore,
    StoreRejectedError,
    StoreUnavailableError,
)
from cityedge.configfile import load_config
from cityedge.protocol import up_topic
from cityedge.protocol.errors import ConfigError
from cityedge.sim.brokers import free_port
from tests.support.cloud import DISTRICT, NODE, Device, batch, envelope, wait_for
from tests.support.services import TlsBroker

EVENTS = up_topic(DISTRICT, NODE, "events")
TELEMETRY = up_topic(DISTRICT, NODE, "telemetry")


def ingest_config(broker: TlsBroker, name: str = "ingest", **kw: Any) -> IngestConfig:
    ident = broker.identity(name)
    base: dict[str, Any] = {
        "port": broker.port, "client_id": name, "max_payload_bytes": 2048,
        "tls": {"cafile": ident.ca_path, "certfile": ident.cert_path, "keyfile": ident.key_path},
        "backoff_base_s": 0.05, "backoff_cap_s": 0.5, "store_retry_base_s": 0.01, "store_retry_cap_s": 0.05,
    }  # fmt: skip
    base.update(kw)
    return IngestConfig.model_validate(base)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecordStore]:
    s = RecordStore.open(f"sqlite:///{tmp_path / 'cloud.db'}")
    yield s
    s.close()


@pytest.fixture
def device(tls_broker: TlsBroker) -> Iterator[Device]:
    d = Device(tls_broker.port, tls_broker.identity(NODE))
    yield d
    d.close()


def running(consumer: IngestConsumer) -> IngestConsumer:
    consumer.start()
    assert consumer.wait_subscribed(15), "the consumer did not subscribe"
    return consumer


def test_good_batches_are_stored_once_and_each_bad_message_is_counted_recorded_and_survived(
    tls_broker: TlsBroker, store_url: str, device: Device
) -> None:
    store = RecordStore.open(store_url)  # on SQLite and on PostgreSQL
    consumer = running(IngestConsumer(ingest_config(tls_broker), store))
    try:
        events = [envelope(seq=i) for i in range(1, 6)]
        telemetry = [envelope("telemetry", seq=i) for i in range(1, 4)]
        device.publish(EVENTS, batch(events))
        device.publish(EVENTS, batch(events))  # a redelivery, as after a lost PUBACK
        bad = {
            "bad_json": (EVENTS, b'{"v":1,"node":'),
            "schema": (EVENTS, b'{"v":1,"node":"edge-node-001","stream":"events"}'),
            "oversize": (EVENTS, batch([envelope(body={"pad": "x" * 4096})])),
            "node_mismatch": (EVENTS, batch([envelope(node="edge-node-002")], node="edge-node-002")),
            "topic": (f"ce/v1/{DISTRICT}/{NODE}/up/Not_A_Stream", batch(events[:1])),
        }
        for topic, payload in bad.values():
            device.publish(topic, payload)
        device.publish(TELEMETRY, batch(telemetry, stream="telemetry"))
        wait_for(lambda: consumer.stats().acked == 8, 20, "all 8 messages acknowledged")

        stats = consumer.stats()
        assert (stats.records, stats.duplicates, stats.batches) == (8, 5, 3)
        assert stats.rejected == dict.fromkeys(bad, 1)
        assert stats.connected and stats.protocol == "5"
        assert [r.id for r in store.records()] == [e.id for e in events + telemetry]
        kept = store.quarantined()
        assert sorted(q.reason for q in kept) == sorted(bad)
        assert all(q.topic and q.detail and q.raw for q in kept)

        # The node is told what is stored (the redelivered copy too), never what was refused whole.
        def told() -> bool:
            return (
                set(device.acked_seqs("events")) == {1, 2, 3, 4, 5} and device.acked_seqs("telemetry") != []
            )

        wait_for(told, 10, "the store's acknowledgements")
        assert set(device.acked_seqs("telemetry")) == {1, 2, 3}
        sample = consumer.registry.get_sample_value
        assert sample("cityedge_ingest_records_total", {"stream": "events"}) == 5
        assert sample("cityedge_ingest_records_total", {"stream": "telemetry"}) == 3
        assert sample("cityedge_ingest_duplicates_total", {"stream": "events"}) == 5
        assert sample("cityedge_ingest_quarantined_total", {"reason": "oversize"}) == 1
        assert sample("cityedge_ingest_store_acks_total") == consumer.stats().store_acks >= 1
        assert sample("cityedge_mqtt_connected", {"link": "ingest"}) == 1
    finally:
        consumer.stop()
        store.close()


class FlakyStore:
    """The real store behind a database that is down for the first `failures` inserts."""

    def __init__(self, real: RecordStore, failures: int) -> None:
        self.real, self.failures = real, failures
        self.consumer: IngestConsumer | None = None
        self.acked_at_each_insert: list[int] = []

    def insert(self, records: Sequence[IngestRecord], received_at: datetime) -> InsertResult:
        assert self.consumer is not None
        self.acked_at_each_insert.append(self.consumer.stats().acked)
        if len(self.acked_at_each_insert) <= self.failures:
            raise StoreUnavailableError("insert failed on the test database: connection refused")
        return self.real.insert(records, received_at)

    def quarantine(self, items: Sequence[QuarantinedItem], received_at: datetime) -> None:
        self.real.quarantine(items, received_at)


def test_a_message_is_not_acknowledged_until_its_insert_commits_on_a_retry(
    tls_broker: TlsBroker, store: RecordStore, device: Device
) -> None:
    flaky = FlakyStore(store, failures=2)
    consumer = flaky.consumer = running(IngestConsumer(ingest_config(tls_broker), flaky))
    try:
        events = [envelope(seq=i) for i in range(1, 4)]
        device.publish(EVENTS, batch(events))
        wait_for(lambda: consumer.stats().acked == 1, 20, "the message acknowledged after the retry")
        # Two failed attempts and the successful one: none of them saw an ack go out.
        assert flaky.acked_at_each_insert == [0, 0, 0]
        assert consumer.stats().store_failures == 2
        assert [r.id for r in store.records()] == [e.id for e in events]
    finally:
        consumer.stop()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_a_message_whose_commit_never_happened_is_redelivered_to_the_next_consumer(
    tls_broker: TlsBroker, store: RecordStore, device: Device, protocol: str
) -> None:
    down = FlakyStore(store, failures=10**9)
    first = down.consumer = running(IngestConsumer(ingest_config(tls_broker, protocol=protocol), down))
    events = [envelope(seq=i) for i in range(1, 4)]
    device.publish(EVENTS, batch(events))
    wait_for(lambda: first.stats().store_failures >= 2, 20, "the first consumer failing to store")
    first.stop()
    assert first.stats().acked == 0 and store.records() == []

    # The same client id, so the same persistent session on the broker.
    second = running(IngestConsumer(ingest_config(tls_broker, protocol=protocol), store))
    try:
        wait_for(lambda: second.stats().acked == 1, 20, "the broker to redeliver the unacknowledged message")
        assert [r.id for r in store.records()] == [e.id for e in events]
        assert second.stats().protocol == protocol
    finally:
        second.stop()


class PoisonStore:
    """Refuses any insert that contains a record with body {"poison": true}, like a database
    refusing a value it cannot hold."""

    def __init__(self, real: RecordStore) -> None:
        self.real = real

    def insert(self, records: Sequence[IngestRecord], received_at: datetime) -> InsertResult:
        if any(r.body.get("poison") for r in records):
            raise StoreRejectedError("insert failed on the test database: unsupported value")
        return self.real.insert(records, received_at)

    def quarantine(self, items: Sequence[QuarantinedItem], received_at: datetime) -> None:
        self.real.quarantine(items, received_at)


def test_a_record_the_database_refuses_is_quarantined_alone_and_its_neighbours_are_stored(
    tls_broker: TlsBroker, store: RecordStore, device: Device
) -> None:
    consumer = running(IngestConsumer(ingest_config(tls_broker), PoisonStore(store)))
    try:
        first, poison, last = envelope(seq=1), envelope(seq=2, body={"poison": True}), envelope(seq=3)
        device.publish(EVENTS, batch([first, poison, last]))  # one message, one poisoned record
        after = envelope(seq=4)
        device.publish(EVENTS, batch([after]))
        wait_for(lambda: consumer.stats().acked == 2, 20, "both messages acknowledged")
        assert [r.id for r in store.records()] == [first.id, last.id, after.id]
        assert consumer.stats().rejected == {"store_rejected": 1}
        [kept] = store.quarantined()
        assert (kept.reason, kept.record_id, kept.seq, kept.node) == ("store_rejected", poison.id, 2, NODE)
        wait_for(lambda: set(device.acked_seqs("events")) == {1, 2, 3, 4}, 10, "the store's acknowledgements")
        # the poisoned record is acknowledged too: it is kept in the quarantine, never resent
    finally:
        consumer.stop()


def test_metrics_are_served_over_http_when_a_port_is_set(
    tls_broker: TlsBroker, store: RecordStore, device: Device
) -> None:
    consumer = running(IngestConsumer(ingest_config(tls_broker, metrics_port=0), store))
    try:
        device.publish(EVENTS, batch([envelope()]))
        wait_for(lambda: consumer.stats().acked == 1, 20, "the message acknowledged")
        text = urllib.request.urlopen(f"http://127.0.0.1:{consumer.metrics_port}/metrics", timeout=5).read()
        assert b'cityedge_ingest_records_total{stream="events"} 1.0' in text
        assert b"cityedge_ingest_insert_seconds_count 1.0" in text
    finally:
        consumer.stop()


# --- the CLI process, killed between commit and ack -------------------------------------


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test started; whatever is still running at its end is killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def start_cli(
    procs: list[subprocess.Popen[bytes]], config: Path, log: Path, fault: str | None = None
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "CITYEDGE_FAULT"}
    if fault:
        env["CITYEDGE_FAULT"] = fault
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cityedge.cli", "cloud", "ingest", "--config", str(config)],
            stdout=out, stderr=out, env=env,
        )  # fmt: skip
    procs.append(proc)
    wait_for(
        lambda: proc.poll() is not None or "subscribed; consuming" in log.read_text(),
        30, f"ingest to subscribe (log {log})",
    )  # fmt: skip
    assert proc.poll() is None, log.read_text()
    return proc


def scrape(port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def test_ingest_killed_after_commit_before_ack_gets_the_message_again_and_stores_it_once(
    tls_broker: TlsBroker, device: Device, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    ident = tls_broker.identity("ingest")
    db = f"sqlite:///{tmp_path / 'cloud.db'}"
    port = free_port()
    config = tmp_path / "cloud.yaml"
    config.write_text(yaml.safe_dump({
        "port": tls_broker.port, "client_id": "ingest", "database": db, "metrics_port": port,
        "tls": {"cafile": str(ident.ca_path), "certfile": str(ident.cert_path),
                "keyfile": str(ident.key_path)},
    }))  # fmt: skip
    log = tmp_path / "doomed.log"
    doomed = start_cli(procs, config, log, fault="ingest_exit_after_commit")
    events = [envelope(seq=i) for i in range(1, 6)]
    device.publish(EVENTS, batch(events))
    assert doomed.wait(30) == 137, log.read_text()
    with RecordStore.open(db) as store:
        assert [r.id for r in store.records()] == [e.id for e in events]  # committed, never acked

    log = tmp_path / "survivor.log"
    survivor = start_cli(procs, config, log)
    try:
        wait_for(lambda: scrape(port, "cityedge_ingest_duplicates_total") == 5, 30, "the redelivery")
        assert scrape(port, "cityedge_ingest_records_total") == 0
    finally:
        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(20) == 0, log.read_text()
    with RecordStore.open(db) as store:
        assert [r.id for r in store.records()] == [e.id for e in events]


def test_ingest_reconnects_after_the_broker_restarts_and_keeps_consuming(
    tls_broker: TlsBroker, store: RecordStore
) -> None:
    consumer = running(IngestConsumer(ingest_config(tls_broker), store))
    try:
        tls_broker.process.restart()
        wait_for(lambda: consumer.stats().reconnects == 1 and consumer.stats().subscribed, 30, "a reconnect")
        device = Device(tls_broker.port, tls_broker.identity(NODE))
        try:
            event = envelope()
            device.publish(EVENTS, batch([event]))
            wait_for(lambda: consumer.stats().acked == 1, 20, "the message after the restart")
        finally:
            device.close()
        assert [r.id for r in store.records()] == [event.id]
        assert consumer.registry.get_sample_value("cityedge_mqtt_connects_total", {"link": "ingest"}) == 2
    finally:
        consumer.stop()


# amqtt leaks the stream of the MQTT 5 connection it never answered (its own sockets).
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_on_a_broker_without_mqtt5_auto_falls_back_to_mqtt_3_1_1(store: RecordStore) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from cityedge.sim.embedded import EmbeddedBroker

    broker = EmbeddedBroker().start()
    cfg = IngestConfig(
        port=broker.port, client_id="ingest", share_group=None, protocol="auto", connect_timeout_s=1.0
    )
    consumer = running(IngestConsumer(cfg, store))
    node = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=NODE, protocol=mqtt.MQTTv311)
    try:
        assert consumer.stats().protocol == "3.1.1"
        node.connect("127.0.0.1", broker.port)
        node.loop_start()
        event = envelope()
        node.publish(EVENTS, batch([event]), qos=1).wait_for_publish(10)
        wait_for(lambda: consumer.stats().acked == 1, 20, "the message over MQTT 3.1.1")
        assert [r.id for r in store.records()] == [event.id]
    finally:
        node.disconnect()
        node.loop_stop()
        consumer.stop()
        broker.stop()
        gc.collect()  # collect amqtt's leaked streams here, under this test's warning filter


def test_missing_tls_files_stop_the_start_with_an_error_naming_them(
    store: RecordStore, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.crt"
    cfg = IngestConfig(tls={"cafile": missing, "certfile": missing, "keyfile": missing})
    with pytest.raises(ConfigError, match=r"ingest tls: cannot load cafile=.*nope\.crt"):
        IngestConsumer(cfg, store).start()


def test_an_unknown_key_in_the_config_file_is_an_error_naming_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "cloud.yaml"
    path.write_text("port: 8883\nshare_grup: ingest\n")
    with pytest.raises(ConfigError, match=r"cloud\.yaml: invalid config: share_grup: Extra inputs"):
        load_config(IngestConfig, path)
