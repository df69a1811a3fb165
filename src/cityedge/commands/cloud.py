"""`cityedge cloud ...`: run ingest, migrate the store, inspect what arrived.

The control plane's API (`cloud serve`) registers on the same `cloud_app`. Heavy imports
stay inside the commands so `cityedge --help` stays fast.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import typer

__all__ = ["cloud_app", "register"]

cloud_app = typer.Typer(
    help="The cloud side: ingest from the broker into the store, migrate the store, inspect records.",
    no_args_is_help=True,
)

FAULT_ENV = "CITYEDGE_FAULT"


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.add_typer(cloud_app, name="cloud")
    bench_app.command("store")(bench_store)
    bench_app.command("ingest")(bench_ingest)


@cloud_app.command("ingest")
def ingest(
    config: Path = typer.Option(
        ..., "--config", "-c", help="Ingest config (YAML): broker, TLS files, database."
    ),
    db: str | None = typer.Option(None, "--db", help="Database URL; overrides `database` in the config."),
) -> None:
    """Consume every node's up/ topics into the store; acknowledge each message only after its records are committed. Runs until SIGTERM or Ctrl-C.

    Config keys: host, port, tls {cafile, certfile, keyfile} (omit for plain TCP), client_id, share_group (null, the default: one replica; a name: replicas share the traffic through an MQTT 5 shared subscription), protocol (auto | 5 | 3.1.1), database (sqlite:///cloud.db or postgresql+psycopg://...), max_payload_bytes, metrics_port; unknown keys are an error.

    Env CITYEDGE_FAULT=ingest_exit_after_commit (tests only): exit right after the first commit, before the ack.
    """  # noqa: E501
    import prometheus_client

    from cityedge.cloud.ingest import IngestConfig, IngestConsumer
    from cityedge.cloud.store import RecordStore
    from cityedge.configfile import load_config, parse_config

    cfg = load_config(IngestConfig, config)
    overrides: dict[str, Any] = {}
    if db is not None:
        overrides["database"] = db
    if os.environ.get(FAULT_ENV):
        overrides["fault"] = os.environ[FAULT_ENV]
    if overrides:
        cfg = parse_config(IngestConfig, {**cfg.model_dump(), **overrides}, f"{config} (+ --db/{FAULT_ENV})")
    store = RecordStore.open(cfg.database)
    consumer = IngestConsumer(cfg, store, registry=prometheus_client.REGISTRY)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    consumer.start()
    typer.echo(f"ingest: {cfg.client_id} -> {store.url} from {cfg.host}:{cfg.port}", err=True)
    try:
        done.wait()
    finally:
        consumer.stop()
        store.close()
        s = consumer.stats()
        rejected = sum(s.rejected.values())
        typer.echo(
            f"ingest: stopped; stored {s.records}, duplicates {s.duplicates}, rejected {rejected}", err=True
        )


@cloud_app.command("migrate")
def migrate(db: str = typer.Option(..., "--db", help="Database URL, e.g. sqlite:///cloud.db.")) -> None:
    """Create or upgrade the store's schema to the newest revision (safe to repeat)."""
    from cityedge.cloud.store import RecordStore, head_revision

    with RecordStore.open(db) as store:
        typer.echo(f"{store.url}: at revision {store.revision()} (head {head_revision()})")


@cloud_app.command("records")
def records(
    db: str = typer.Option(..., "--db", help="Database URL, e.g. sqlite:///cloud.db."),
    node: str | None = typer.Option(None, "--node", help="Only this node's records."),
    stream: str | None = typer.Option(None, "--stream", help="Only this stream's records."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most this many (oldest first)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line instead of a table."),
) -> None:
    """Show the records that arrived, in arrival order, and the count per stream."""
    from cityedge.cloud.store import RecordStore

    with RecordStore.open(db) as store:
        rows = store.records(node=node, stream=stream, limit=limit)
        counts = store.counts()
    if as_json:
        import msgspec

        for r in rows:
            doc = {
                "arrival": r.arrival, "id": r.id, "district": r.district, "node": r.node,
                "stream": r.stream, "seq": r.seq, "kind": r.kind, "ts": r.ts,
                "received_at": r.received_at, "body": r.body,
            }  # fmt: skip
            typer.echo(msgspec.json.encode(doc).decode())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "arrival", "node", "stream", "seq", "kind", "ts (UTC)", "id", title=f"records in {store.url}"
    )
    for r in rows:
        table.add_row(str(r.arrival), r.node, r.stream, str(r.seq), r.kind, r.ts.isoformat(), r.id)
    console = Console()
    console.print(table)
    console.print("stored: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def bench_store(
    db: str | None = typer.Option(None, "--db", help="Database URL (default: a temporary SQLite file)."),
    records: int = typer.Option(20_000, "--records", min=1, help="Records to insert."),
    batch: int = typer.Option(200, "--batch", min=1, help="Records per insert (one transaction)."),
    as_json: bool = typer.Option(True, "--json/--no-json", help="Print one JSON object (the default)."),
) -> None:
    """Insert throughput of the cloud store (records/s, one transaction per batch), then the
    same batches again to time the duplicate path."""
    import tempfile
    import time
    from datetime import UTC, datetime

    import msgspec

    from cityedge.cloud.ingest.decode import IngestRecord
    from cityedge.cloud.store import RecordStore
    from cityedge.protocol import Envelope, uuid7

    with tempfile.TemporaryDirectory() as tmp:
        url = db or f"sqlite:///{tmp}/bench.db"
        now = datetime.now(UTC)
        base_ms = int(now.timestamp() * 1000)
        recs = [
            IngestRecord.from_envelope(
                Envelope(
                    id=str(uuid7(base_ms + i)), node="bench-node", stream="telemetry", kind="count",
                    ts=now, seq=i + 1, body={"lane": i % 4, "count": i % 17, "speed": 13.5},
                ),
                "bench",
            )
            for i in range(records)
        ]  # fmt: skip
        with RecordStore.open(url) as store:
            results = {}
            for phase in ("insert", "duplicates"):
                started = time.perf_counter()
                for k in range(0, records, batch):
                    store.insert(recs[k : k + batch], datetime.now(UTC))
                results[phase] = records / (time.perf_counter() - started)
            backend = store.url.split(":")[0]
    out = {
        "bench": "store", "backend": backend, "records": records, "batch": batch,
        "records_per_s": round(results["insert"]), "duplicate_records_per_s": round(results["duplicates"]),
    }  # fmt: skip
    typer.echo(msgspec.json.encode(out).decode() if as_json else str(out))


def bench_ingest(
    records: int = typer.Option(40_000, "--records", min=1, help="Records to publish."),
    batch: int = typer.Option(200, "--batch", min=1, help="Records per MQTT message."),
    db: str | None = typer.Option(None, "--db", help="Database URL (default: a temporary SQLite file)."),
) -> None:
    """Ingest throughput through a real Mosquitto with mutual TLS: a backlog of batches is
    published at once, timed from the first publish to the last ack after commit."""
    import tempfile
    import time
    from datetime import UTC, datetime

    import msgspec

    from cityedge.cloud.ingest import IngestConfig, IngestConsumer
    from cityedge.cloud.store import RecordStore
    from cityedge.protocol.errors import CityEdgeError

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp, now = Path(tmp_name), datetime.now(UTC)
        broker, ingest_tls, node = _bench_broker(tmp, now)
        store = RecordStore.open(db or f"sqlite:///{tmp}/bench.db")
        consumer = IngestConsumer(
            IngestConfig(port=broker.port, tls=ingest_tls, client_id="ingest"), store
        ).start()
        try:
            if not consumer.wait_subscribed(15):
                raise CityEdgeError(f"ingest did not subscribe; broker log:\n{broker.log_tail()}")
            payloads = _bench_payloads(records, batch, now)
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
    out = {
        "bench": "ingest", "records": records, "batch": batch, "stored": stats.records,
        "records_per_s": round(stats.records / elapsed), "messages_per_s": round(len(payloads) / elapsed),
    }  # fmt: skip
    typer.echo(msgspec.json.encode(out).decode())


def _bench_broker(tmp: Path, now: Any) -> tuple[Any, dict[str, Path], Any]:
    """A Mosquitto with an mTLS listener, the ingest TLS files, and a node's paho client."""
    from datetime import timedelta

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from cityedge.deploy.mosquitto import MosquittoConfig
    from cityedge.pki import CertificateAuthority
    from cityedge.sim.brokers import MosquittoProcess, free_port

    ca = CertificateAuthority.create("bench root", now=now)

    def issue(name: str, **kw: Any) -> Any:
        return ca.issue_to_directory(name, tmp / "certs", now=now, lifetime=timedelta(hours=1), **kw)

    server = issue("broker", server_auth=True, extra_sans=("localhost", "127.0.0.1"))
    ingest, node_id = issue("ingest"), issue("bench-node")
    cfg = MosquittoConfig(data_dir=tmp / "data", tls_port=free_port(), cafile=server.ca_path,
                          certfile=server.cert_path, keyfile=server.key_path)  # fmt: skip
    broker = MosquittoProcess(cfg, tmp / "broker").start()
    node = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-node", protocol=mqtt.MQTTv5)
    node.tls_set(str(node_id.ca_path), str(node_id.cert_path), str(node_id.key_path))
    node.max_inflight_messages_set(64)
    tls = {"cafile": ingest.ca_path, "certfile": ingest.cert_path, "keyfile": ingest.key_path}
    return broker, tls, node


def _bench_payloads(records: int, batch: int, now: Any) -> list[tuple[str, bytes]]:
    from cityedge.protocol import Envelope, encode_batch, encode_envelope, up_topic, uuid7

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


# `cloud serve` (the control plane's API) registers here, on `cloud_app`.
