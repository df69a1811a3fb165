"""`cityedge bench uplink`: batching uplink vs. raw one-message-per-publish paho, end to end.

One Mosquitto with mutual TLS, one ingest process with a SQLite store, the node's outbox and
uplink in this process. Per run: a baseline (raw paho QoS 1, one small message per publish,
same broker, same topic tree), the uplink's throughput, latency at a moderate rate (source
timestamp to store commit), and a backlog built while the link is down then drained.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from cityedge.bench._broker import BenchBroker, start_bench_broker, tls_files
from cityedge.cloud.store import RecordStore
from cityedge.edge.app import OutboxSink
from cityedge.edge.config import UplinkConfig
from cityedge.edge.outbox import GroupCommitter, Outbox
from cityedge.edge.uplink import Uplink
from cityedge.pki import IssuedIdentity
from cityedge.protocol.codec import encode_batch, encode_envelope
from cityedge.protocol.envelope import Envelope, new_record
from cityedge.protocol.topics import up_topic
from cityedge.sim.brokers import MosquittoProcess
from cityedge.sim.proxy import TcpProxy
from cityedge.transport import client_tls_context, make_client

__all__ = ["run_uplink_bench"]

DISTRICT = "bench"


@dataclass
class _Env:
    """The benchmark's broker and CA, the link proxy, and ingest as a process."""

    base: BenchBroker
    proxy: TcpProxy
    ingest: subprocess.Popen[bytes]
    db_url: str

    @property
    def tmp(self) -> Path:
        return self.base.tmp

    @property
    def broker(self) -> MosquittoProcess:
        return self.base.broker

    def identity(self, name: str) -> IssuedIdentity:
        return self.base.identity(name)


def _envelope(node: str, stream: str, i: int) -> Envelope:
    return new_record(node, stream, "reading", {"n": i, "sensor": "air-1", "pm25": 12.5, "no2": 31.0})


def _start(tmp: Path) -> _Env:
    base = start_bench_broker(tmp)
    db_url = f"sqlite:///{tmp / 'cloud.db'}"
    RecordStore.open(db_url).close()
    conf = {
        "host": "127.0.0.1", "port": base.broker.port, "client_id": "ingest", "share_group": None,
        "database": db_url, "tls": tls_files(base.identity("ingest")).model_dump(mode="json"),
    }  # fmt: skip
    (tmp / "ingest.yaml").write_text(yaml.safe_dump(conf))
    log = (tmp / "ingest.log").open("ab")
    ingest = subprocess.Popen(
        [sys.executable, "-m", "cityedge.cli", "cloud", "ingest", "--config", str(tmp / "ingest.yaml")],
        stdout=log,
        stderr=log,
    )
    proxy = TcpProxy(base.broker.port).start()
    time.sleep(1.0)
    return _Env(base, proxy, ingest, db_url)


def _baseline(env: _Env, n: int) -> float:
    """Raw paho: one small record per QoS 1 publish, wait for all PUBACKs."""
    ident = env.identity("bench-baseline")
    client = make_client("bench-baseline", "5", persistent=False)
    client.tls_set_context(client_tls_context(tls_files(ident)))
    done = threading.Event()
    acked = 0

    def on_publish(*_: Any) -> None:
        nonlocal acked
        acked += 1
        if acked == n:
            done.set()

    client.on_publish = on_publish
    client.connect("127.0.0.1", env.broker.port)
    client.loop_start()
    topic = up_topic(DISTRICT, "bench-baseline", "telemetry")
    payloads = [
        encode_batch(
            "bench-baseline", "telemetry", [encode_envelope(_envelope("bench-baseline", "telemetry", i))]
        )
        for i in range(n)
    ]
    start = time.perf_counter()
    for p in payloads:
        client.publish(topic, p, qos=1)
    done.wait(120)
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    return n / elapsed


def _wait_empty(outbox: Outbox, timeout: float) -> float:
    """Until the cloud store has acknowledged every record (the outbox is empty)."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if outbox.stats().total_records == 0:
            break
        time.sleep(0.002)
    return time.perf_counter() - start


def _uplink_run(env: _Env, run: int, n: int, backlog: int, rate: float, seconds: float) -> dict[str, float]:
    node = f"bench-node-{run}"
    ident = env.identity(node)
    outbox = Outbox.open(env.tmp / f"{node}.db")
    cfg = UplinkConfig(
        host="127.0.0.1",
        port=env.proxy.port,
        tls=tls_files(ident),
        backoff_base_s=0.05,
        backoff_cap_s=0.5,
    )
    uplink = Uplink(cfg, node, DISTRICT, outbox).start()
    group = GroupCommitter(outbox).start()
    sink = OutboxSink(outbox, group, node, {"agent": "bench"})
    try:
        deadline = time.monotonic() + 10
        while not uplink.connected and time.monotonic() < deadline:
            time.sleep(0.01)
        # Throughput: the outbox is fed as fast as producers can commit while the uplink sends.
        envs = [_envelope(node, "telemetry", i) for i in range(n)]
        start = time.perf_counter()
        for i in range(0, n, 200):
            outbox.append_many(envs[i : i + 200])
        _wait_empty(outbox, 120)
        records_per_s = n / (time.perf_counter() - start)
        # Latency at a moderate rate: source timestamp -> store commit, and commit on the node ->
        # deletion after the store's acknowledgement.
        outbox.delivery_delays.clear()
        t0 = datetime.now(UTC)
        interval = 1.0 / rate
        next_at = time.perf_counter()
        for i in range(int(rate * seconds)):
            next_at += interval
            time.sleep(max(0.0, next_at - time.perf_counter()))
            sink.emit("events", "incident.bench", {"n": i}, datetime.now(UTC))
        _wait_empty(outbox, 60)
        store_ack = list(outbox.delivery_delays)
        # Drain: a backlog made while the link is down, then the link comes back.
        env.proxy.cut()
        envs = [_envelope(node, "telemetry", i) for i in range(backlog)]
        for i in range(0, backlog, 500):
            outbox.append_many(envs[i : i + 500])
        time.sleep(0.3)
        env.proxy.restore()
        drain_s = _wait_empty(outbox, 300)
        committed = {name: s.last_seq for name, s in outbox.stats().streams.items() if s.last_seq}
    finally:
        group.stop()
        uplink.stop()
        outbox.close()
    return {
        "records_per_s": records_per_s,
        "drain_records_per_s": backlog / drain_s,
        **_store_ack_percentiles(store_ack),
        **_check_store(env, node, committed, t0),
    }


def _check_store(env: _Env, node: str, committed: dict[str, int], since: datetime) -> dict[str, float]:
    expected = sum(committed.values())
    store = RecordStore.open(env.db_url)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            records = store.records(node=node)
            if len(records) >= expected:
                break
            time.sleep(0.2)
    finally:
        store.close()
    keys = {(r.stream, r.seq) for r in records}
    lost = sum(1 for s, last in committed.items() for q in range(1, last + 1) if (s, q) not in keys)
    duplicates = len(records) - len(keys)
    lat = sorted((r.received_at - r.ts).total_seconds() * 1000 for r in records if r.stream == "events")
    return {
        "p50_ms": statistics.median(lat),
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
        "lost": lost,
        "duplicates": duplicates,
    }


def _store_ack_percentiles(delays_s: list[float]) -> dict[str, float]:
    """Commit on the node -> deletion after the store's acknowledgement, for the latency phase."""
    ms = sorted(d * 1000.0 for d in delays_s) or [float("nan")]
    return {
        "store_ack_p50_ms": statistics.median(ms),
        "store_ack_p99_ms": ms[min(len(ms) - 1, int(len(ms) * 0.99))],
    }


def run_uplink_bench(
    runs: int = 3, n: int = 20_000, backlog: int = 50_000, rate: float = 200.0, seconds: float = 5.0
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cityedge-bench-") as tmpdir:
        env = _start(Path(tmpdir))
        try:
            results = []
            for run in range(runs):
                baseline = _baseline(env, min(n, 5000))
                result = _uplink_run(env, run, n, backlog, rate, seconds)
                result["baseline_records_per_s"] = baseline
                result["ratio"] = result["records_per_s"] / baseline
                results.append(result)
        finally:
            env.proxy.stop()
            env.ingest.terminate()
            env.ingest.wait(10)
            env.broker.stop()
    keys = [
        "records_per_s", "baseline_records_per_s", "ratio", "p50_ms", "p99_ms", "drain_records_per_s",
        "store_ack_p50_ms", "store_ack_p99_ms",
    ]  # fmt: skip
    out: dict[str, Any] = {k: round(statistics.median(r[k] for r in results), 2) for k in keys}
    out["lost"] = int(sum(r["lost"] for r in results))
    out["duplicates"] = int(sum(r["duplicates"] for r in results))
    out["runs"] = runs
    out["rate_for_latency"] = rate
    out["per_run"] = [{k: round(v, 2) for k, v in r.items()} for r in results]
    return out
