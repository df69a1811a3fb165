"""`cityedge bench broker`: the embedded broker candidates against Mosquitto, through cityedge's own clients.

Per broker, on loopback without TLS (so the broker is the only difference): the node's outbox
and uplink, ingest with a SQLite store, all in this process. Figures: how long the uplink
takes to connect when it must discover the protocol (`auto`: MQTT 5 first) and when told
(3.1.1); source-to-stored latency at a steady rate; throughput of a burst; and whether a
persistent session works: records published while ingest is away must reach it when it
comes back (QoS 1, clean_session false), which the data plane relies on.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cityedge.cloud.ingest import IngestConfig, IngestConsumer
from cityedge.cloud.store import RecordStore
from cityedge.edge.app import OutboxSink
from cityedge.edge.config import UplinkConfig
from cityedge.edge.outbox import GroupCommitter, Outbox
from cityedge.edge.uplink import Uplink
from cityedge.protocol.envelope import Envelope, new_record
from cityedge.sim.brokers import free_port, wait_port

__all__ = ["BROKERS", "run_broker_bench"]

BROKERS = ("iotcore", "amqtt", "mosquitto")


def _start_broker(name: str, tmp: Path) -> tuple[int, Callable[[], None]]:
    port = free_port()
    if name == "iotcore":
        from cityedge.sim.iotcore_broker import IotcoreBroker

        broker = IotcoreBroker(tmp / "iotcore", port=port).start()
        return port, broker.stop
    if name == "mosquitto":
        from cityedge.deploy.mosquitto import MosquittoConfig
        from cityedge.sim.brokers import MosquittoProcess

        proc = MosquittoProcess(MosquittoConfig(data_dir=tmp / "mq", plain_port=port), tmp / "mq").start()
        return port, proc.stop
    return _start_amqtt(port)


def _start_amqtt(port: int) -> tuple[int, Callable[[], None]]:
    """amqtt (not a dependency: install it to compare) on its own event loop thread."""
    import asyncio
    import threading

    from amqtt.broker import Broker

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = asyncio.run_coroutine_threadsafe(_amqtt_boot(Broker, config, loop), loop).result(15)
    wait_port(port)

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(broker.shutdown(), loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)

    return port, stop


async def _amqtt_boot(broker_cls: Any, config: dict[str, Any], loop: Any) -> Any:
    broker = broker_cls(config, loop=loop)
    await broker.start()
    return broker


def _ingest(port: int, protocol: str, db_url: str, store: RecordStore) -> IngestConsumer:
    cfg = IngestConfig(port=port, client_id="bench-ingest", protocol=protocol, database=db_url)
    consumer = IngestConsumer(cfg, store).start()
    if not consumer.wait_subscribed(30):
        raise RuntimeError("ingest did not subscribe")
    return consumer


def _uplink(port: int, protocol: str, tmp: Path, node: str) -> tuple[Outbox, Uplink, float]:
    outbox = Outbox.open(tmp / f"{node}.db")
    cfg = UplinkConfig(port=port, protocol=protocol, backoff_base_s=0.05, backoff_cap_s=0.5)
    started = time.perf_counter()
    uplink = Uplink(cfg, node, "bench", outbox).start()
    while not uplink.connected and time.perf_counter() - started < 60:
        time.sleep(0.005)
    return outbox, uplink, time.perf_counter() - started


def _envelope(node: str, i: int) -> Envelope:
    return new_record(node, "telemetry", "reading", {"n": i, "pm25": 12.5})


def _wait_stored(store: RecordStore, node: str, n: int, timeout: float = 120.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if len(store.records(node=node)) >= n:
            break
        time.sleep(0.02)
    return time.perf_counter() - started


def _one(name: str, tmp: Path, rate: float, seconds: float, burst: int) -> dict[str, Any]:
    port, stop = _start_broker(name, tmp)
    db_url = f"sqlite:///{tmp / 'cloud.db'}"
    store = RecordStore.open(db_url)
    try:
        consumer = _ingest(port, "3.1.1", db_url, store)
        out: dict[str, Any] = {}
        for protocol in ("auto", "3.1.1"):
            outbox, uplink, connect_s = _uplink(port, protocol, tmp, f"connect-{protocol.replace('.', '')}")
            out[f"connect_{protocol}_s"] = round(connect_s, 3)
            uplink.stop()
            outbox.close()
        outbox, uplink, _ = _uplink(port, "3.1.1", tmp, "steady")
        group = GroupCommitter(outbox).start()
        sink = OutboxSink(outbox, group, "steady", {"agent": "bench"})
        interval, next_at = 1.0 / rate, time.perf_counter()
        for i in range(int(rate * seconds)):
            next_at += interval
            time.sleep(max(0.0, next_at - time.perf_counter()))
            sink.emit("telemetry", "reading", {"n": i}, datetime.now(UTC))
        _wait_stored(store, "steady", int(rate * seconds))
        lat = sorted((r.received_at - r.ts).total_seconds() * 1000 for r in store.records(node="steady"))
        out["p50_ms"], out["p99_ms"] = (
            round(statistics.median(lat), 1),
            round(lat[int(0.99 * (len(lat) - 1))], 1),
        )
        envs = [_envelope("steady", i) for i in range(burst)]
        started = time.perf_counter()
        for i in range(0, burst, 200):  # committed in batches, so the broker and ingest are the limit
            outbox.append_many(envs[i : i + 200])
            uplink.notify()
        _wait_stored(store, "steady", int(rate * seconds) + burst)
        out["burst_records_per_s"] = round(burst / (time.perf_counter() - started))
        out |= _offline(consumer, store, sink, port, db_url)
        group.stop()
        uplink.stop()
        outbox.close()
        consumer.stop()
        stored = store.records(node="steady")
        out["lost"] = sum(s.last_seq for s in outbox_stats(tmp / "steady.db")) - len(
            {(r.stream, r.seq) for r in stored}
        )
        out["duplicates"] = len(stored) - len({(r.stream, r.seq) for r in stored})
        return out
    finally:
        store.close()
        stop()


def outbox_stats(path: Path) -> list[Any]:
    with Outbox.open(path) as outbox:
        return list(outbox.stats().streams.values())


def _offline(
    consumer: IngestConsumer, store: RecordStore, sink: OutboxSink, port: int, db_url: str
) -> dict[str, Any]:
    """Ingest goes away; 500 records are published (the broker acknowledges them); ingest returns."""
    consumer.stop()
    before = len(store.records(node="steady"))
    for i in range(500):
        sink.emit("telemetry", "while-ingest-away", {"n": i}, datetime.now(UTC))
    time.sleep(2.0)  # the uplink has sent them and the broker acknowledged them
    back = _ingest(port, "3.1.1", db_url, store)
    waited = _wait_stored(store, "steady", before + 500, timeout=20.0)
    got = len(store.records(node="steady")) - before
    back.stop()
    return {"offline_published": 500, "offline_delivered": got, "offline_delivery_s": round(waited, 2)}


def run_broker_bench(
    brokers: list[str], runs: int = 3, rate: float = 200.0, seconds: float = 5.0, burst: int = 5000
) -> dict[str, Any]:
    result: dict[str, Any] = {"rate": rate, "seconds": seconds, "burst": burst, "runs": runs}
    for name in brokers:
        per_run = []
        for _ in range(runs):
            with tempfile.TemporaryDirectory(prefix=f"cityedge-bench-{name}-") as tmp:
                per_run.append(_one(name, Path(tmp), rate, seconds, burst))
        keys = [k for k, v in per_run[0].items() if isinstance(v, int | float)]
        result[name] = {k: statistics.median(r[k] for r in per_run) for k in keys} | {"per_run": per_run}
    return result
