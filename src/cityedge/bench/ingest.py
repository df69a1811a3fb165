"""`cityedge bench ingest`: ingest throughput through a real Mosquitto with mutual TLS. A
backlog of batches is published at once, timed from the first publish to the last
acknowledgement after commit."""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cityedge.cloud.ingest import IngestConfig, IngestConsumer
from cityedge.cloud.store import RecordStore
from cityedge.deploy.mosquitto import MosquittoConfig
from cityedge.pki import CertificateAuthority, IssuedIdentity
from cityedge.protocol import Envelope, encode_batch, encode_envelope, up_topic, uuid7
from cityedge.protocol.errors import CityEdgeError
from cityedge.sim.brokers import MosquittoProcess, free_port
from cityedge.transport import TlsFiles

__all__ = ["run_ingest_bench"]


def run_ingest_bench(records: int, batch: int, db: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp, now = Path(tmp_name), datetime.now(UTC)
        broker, ingest_tls, node = _broker(tmp, now)
        store = RecordStore.open(db or f"sqlite:///{tmp}/bench.db")
        consumer = IngestConsumer(
            IngestConfig(port=broker.port, tls=ingest_tls, client_id="ingest"), store
        ).start()
        try:
            if not consumer.wait_subscribed(15):
                raise CityEdgeError(f"ingest did not subscribe; broker log:\n{broker.log_tail()}")
            payloads = _payloads(records, batch, now)
            node.connect("127.0.0.1", broker.port)
            node.loop_start()
            started = time.perf_counter()
            for info in [node.publish(topic, p, qos=1) for topic, p in payloads]:
                info.wait_for_publish(60)
            while consumer.stats().acked < len(payloads) and time.perf_counter() - started < 300:
                time.sleep(0.005)
            elapsed = time.perf_counter() - started
            stats = consumer.stats()
        finally:
            node.disconnect()
            node.loop_stop()
            consumer.stop()
            store.close()
            broker.kill()
    return {
        "bench": "ingest", "records": records, "batch": batch, "stored": stats.records,
        "records_per_s": round(stats.records / elapsed), "messages_per_s": round(len(payloads) / elapsed),
    }  # fmt: skip


def _broker(tmp: Path, now: datetime) -> tuple[MosquittoProcess, TlsFiles, mqtt.Client]:
    """A Mosquitto with an mTLS listener, the ingest TLS files, and a node's paho client."""
    ca = CertificateAuthority.create("bench root", now=now)

    def issue(name: str, **kw: Any) -> IssuedIdentity:
        return ca.issue_to_directory(name, tmp / "certs", now=now, lifetime=timedelta(hours=1), **kw)

    server = issue("broker", server_auth=True, extra_sans=("localhost", "127.0.0.1"))
    ingest, node_id = issue("ingest"), issue("bench-node")
    cfg = MosquittoConfig(data_dir=tmp / "data", tls_port=free_port(), cafile=server.ca_path,
                          certfile=server.cert_path, keyfile=server.key_path)  # fmt: skip
    broker = MosquittoProcess(cfg, tmp / "broker").start()
    node = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-node", protocol=mqtt.MQTTv5)
    node.tls_set(str(node_id.ca_path), str(node_id.cert_path), str(node_id.key_path))
    node.max_inflight_messages_set(64)
    return broker, TlsFiles(cafile=ingest.ca_path, certfile=ingest.cert_path, keyfile=ingest.key_path), node


def _payloads(records: int, batch: int, now: datetime) -> list[tuple[str, bytes]]:
    base_ms = int(now.timestamp() * 1000)
    topic = up_topic("bench", "bench-node", "telemetry")
    return [
        (topic, encode_batch("bench-node", "telemetry", [
            encode_envelope(Envelope(
                id=str(uuid7(base_ms + i)), node="bench-node", stream="telemetry", kind="count",
                ts=now, seq=i + 1, body={"lane": i % 4, "count": i % 17},
            ))
            for i in range(k, min(k + batch, records))
        ]))
        for k in range(0, records, batch)
    ]  # fmt: skip
