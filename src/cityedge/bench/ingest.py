"""`cityedge bench ingest`: ingest throughput through a real Mosquitto with mutual TLS, and how
it scales with replicas on one MQTT shared subscription.

For each consumer count, N `cityedge cloud ingest` processes (each its own certificate
identity, one share group) read from the broker into one store; a backlog of batches is
published at once and timed from the first publish until the store holds every record. Each
count gets an empty store (a scratch PostgreSQL schema, or a temporary SQLite file), and the
run ends by checking that every record is stored exactly once (`lost`, `duplicates`).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from cityedge.bench.store import _scratch
from cityedge.cloud.store import RecordStore
from cityedge.deploy.mosquitto import MosquittoConfig
from cityedge.pki import CertificateAuthority, IssuedIdentity
from cityedge.protocol import Envelope, encode_batch, encode_envelope, up_topic, uuid7
from cityedge.protocol.errors import CityEdgeError
from cityedge.sim.brokers import MosquittoProcess, free_port

__all__ = ["run_ingest_bench", "run_ingest_curve"]

NODE = "bench-node"


def run_ingest_curve(records: int, batch: int, db: str | None, consumers: list[int]) -> dict[str, Any]:
    """One run per consumer count; the curve, and the single run's figures when there is one."""
    curve = [run_ingest_bench(records, batch, db, n) for n in consumers]
    out: dict[str, Any] = {"bench": "ingest", "records": records, "batch": batch, "curve": curve}
    if len(curve) == 1:
        out.update(curve[0])
    return out


def run_ingest_bench(records: int, batch: int, db: str | None, consumers: int = 1) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp_name, _scratch(db) as url:
        tmp, now = Path(tmp_name), datetime.now(UTC)
        RecordStore.open(url).close()  # migrate once, before the replicas race to
        broker, node, idents = _broker(tmp, now, consumers)
        procs = [_ingest(tmp, broker, url, ident, consumers > 1) for ident in idents]
        try:
            _wait_subscribed(procs, tmp, broker)
            payloads = _payloads(records, batch, now)
            node.connect("127.0.0.1", broker.port)
            node.loop_start()
            started = time.perf_counter()
            for info in [node.publish(topic, p, qos=1) for topic, p in payloads]:
                info.wait_for_publish(120)
            _wait_stored(url, records, started)
            elapsed = time.perf_counter() - started
            seqs = _stored_seqs(url)
        finally:
            node.disconnect()
            node.loop_stop()
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(20)
            broker.kill()
    distinct = set(seqs) & set(range(1, records + 1))
    return {
        "consumers": consumers, "stored": len(seqs), "lost": records - len(distinct),
        "duplicates": len(seqs) - len(set(seqs)), "records_per_s": round(len(distinct) / elapsed),
        "messages_per_s": round(len(payloads) / elapsed), "seconds": round(elapsed, 2),
    }  # fmt: skip


def _broker(
    tmp: Path, now: datetime, consumers: int
) -> tuple[MosquittoProcess, mqtt.Client, list[IssuedIdentity]]:
    """A Mosquitto with an mTLS listener, one certificate per ingest replica, a node's client."""
    ca = CertificateAuthority.create("bench root", now=now)

    def issue(name: str, **kw: Any) -> IssuedIdentity:
        return ca.issue_to_directory(name, tmp / "certs", now=now, lifetime=timedelta(hours=1), **kw)

    server = issue("broker", server_auth=True, extra_sans=("localhost", "127.0.0.1"))
    idents = [issue(f"ingest-{n}") for n in range(consumers)]
    node_id = issue(NODE)
    cfg = MosquittoConfig(data_dir=tmp / "data", tls_port=free_port(), cafile=server.ca_path,
                          certfile=server.cert_path, keyfile=server.key_path)  # fmt: skip
    broker = MosquittoProcess(cfg, tmp / "broker").start()
    node = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=NODE, protocol=mqtt.MQTTv5)
    node.tls_set(str(node_id.ca_path), str(node_id.cert_path), str(node_id.key_path))
    node.max_inflight_messages_set(64)
    return broker, node, idents


def _ingest(
    tmp: Path, broker: MosquittoProcess, url: str, ident: IssuedIdentity, shared: bool
) -> subprocess.Popen[bytes]:
    name = ident.cert_path.stem
    conf = {
        "host": "127.0.0.1", "port": broker.port, "client_id": name, "database": url,
        "share_group": "bench" if shared else None,
        "tls": {"cafile": str(ident.ca_path), "certfile": str(ident.cert_path),
                "keyfile": str(ident.key_path)},
    }  # fmt: skip
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(conf))
    args = [sys.executable, "-m", "cityedge.cli", "cloud", "ingest", "--config", str(path)]
    with (tmp / f"{name}.log").open("wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(args, stdout=log, stderr=log)


def _wait_subscribed(procs: list[subprocess.Popen[bytes]], tmp: Path, broker: MosquittoProcess) -> None:
    deadline = time.monotonic() + 60
    logs = sorted(tmp.glob("ingest-*.log"))
    while time.monotonic() < deadline:
        if all("subscribed" in log.read_text(errors="replace") for log in logs):
            return
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.1)
    tails = "\n".join(log.read_text(errors="replace")[-800:] for log in logs)
    raise CityEdgeError(f"ingest did not subscribe:\n{tails}\nbroker log:\n{broker.log_tail()}")


def _wait_stored(url: str, records: int, started: float) -> None:
    """Until the store holds `records` rows (the primary key makes them distinct), or 10 minutes."""
    store = RecordStore.open(url)
    try:
        while store.counts()["total"] < records and time.perf_counter() - started < 600:
            time.sleep(0.02)
    finally:
        store.close()


def _stored_seqs(url: str) -> list[int]:
    store = RecordStore.open(url)
    try:
        return [r.seq for r in store.records(node=NODE)]
    finally:
        store.close()


def _payloads(records: int, batch: int, now: datetime) -> list[tuple[str, bytes]]:
    base_ms = int(now.timestamp() * 1000)
    topic = up_topic("bench", NODE, "telemetry")
    return [
        (topic, encode_batch(NODE, "telemetry", [
            encode_envelope(Envelope(
                id=str(uuid7(base_ms + i)), node=NODE, stream="telemetry", kind="count",
                ts=now, seq=i + 1, body={"lane": i % 4, "count": i % 17},
            ))
            for i in range(k, min(k + batch, records))
        ]))
        for k in range(0, records, batch)
    ]  # fmt: skip
