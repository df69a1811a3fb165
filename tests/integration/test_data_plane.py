"""End to end: records made on a node reach the cloud store exactly once, in order per stream,
through link cuts, broker restarts, an agent SIGKILLed mid-batch, ingest killed between
commit and ack, and a local broker restart. Real Mosquitto (mTLS), both store backends.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from cityedge.cloud.store import RecordStore
from cityedge.edge.mqtt import make_client, tls_context
from cityedge.edge.outbox import Outbox
from cityedge.protocol.topics import local_sensor_topic

from ..support.databases import fresh_database
from ..support.stack import Proc, Stack, wait_until

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]

NODE = "edge-node-001"


@pytest.fixture(params=["sqlite", "postgres"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    with fresh_database(request.param, tmp_path) as url:
        s = Stack(tmp_path, url)
        try:
            yield s
        finally:
            s.close()


def synthetic(limit: int, rate: float) -> dict[str, object]:
    return {"synthetic": {"telemetry_per_s": rate, "incidents_per_min": rate * 6, "limit": limit}}


def settle(stack: Stack, at_least: int, timeout: float = 60.0) -> None:
    """Wait until the store has at least `at_least` records and stopped growing."""
    store = RecordStore.open(stack.db_url)
    try:
        last, stable_since = -1, time.monotonic()

        def settled() -> bool:
            nonlocal last, stable_since
            n = store.counts().get("total", 0)
            if n != last:
                last, stable_since = n, time.monotonic()
            return n >= at_least and time.monotonic() - stable_since > 2.0

        try:
            wait_until(settled, timeout, f"the store to settle at >= {at_least} records")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; it has {last}") from None
    finally:
        store.close()


def assert_exactly_once(stack: Stack, agent_dir: Path, *, arrival_order: bool = True) -> dict[str, int]:
    """Every committed record stored once, none missing; with one ingest replica, arrival
    order is seq order per stream (replicas commit concurrently, so then only seq orders)."""
    ob = Outbox.open(agent_dir / "outbox.db")
    try:
        stats = ob.stats()
    finally:
        ob.close()
    assert stats.total_pending == 0, f"records left on the node: {stats}"
    store = RecordStore.open(stack.db_url)
    try:
        records = store.records(node=NODE)
    finally:
        store.close()
    by_stream: dict[str, list[int]] = {}
    for r in records:
        by_stream.setdefault(r.stream, []).append(r.seq)
    committed = {name: s.last_seq for name, s in stats.streams.items() if s.last_seq}
    assert set(by_stream) == set(committed)
    for stream, last_seq in committed.items():
        seqs = by_stream[stream] if arrival_order else sorted(by_stream[stream])
        assert seqs == list(range(1, last_seq + 1)), (
            f"{stream}: stored seqs are not exactly 1..{last_seq} in order"
        )
    assert len({r.id for r in records}) == len(records)
    return {s: len(v) for s, v in by_stream.items()}


def finish(stack: Stack, agent: Proc, at_least: int, *, arrival_order: bool = True) -> dict[str, int]:
    settle(stack, at_least)
    agent.stop()
    return assert_exactly_once(stack, stack.tmp / NODE, arrival_order=arrival_order)


def test_link_cut_and_restored_repeatedly_loses_and_duplicates_nothing(stack: Stack) -> None:
    stack.ingest()
    agent = stack.agent(NODE, **synthetic(limit=1500, rate=300))
    for _ in range(4):
        time.sleep(0.8)
        stack.proxy.cut()
        time.sleep(0.6)
        stack.proxy.restore()
    counts = finish(stack, agent, 1500)
    assert sum(counts.values()) >= 1500 and stack.proxy.cuts == 4


def test_two_ingest_replicas_on_a_shared_subscription_split_the_load_and_store_everything_once(
    stack: Stack,
) -> None:
    stack.ingest(name="ingest-a", share_group="ingest")
    stack.ingest(name="ingest-b", share_group="ingest")
    agent = stack.agent(NODE, **synthetic(limit=1500, rate=500))
    time.sleep(1.0)
    stack.proxy.cut()
    time.sleep(0.5)
    stack.proxy.restore()
    finish(stack, agent, 1500, arrival_order=False)
    logs = [p.log.read_text() for p in stack.procs if "ingest" in p.log.name]
    assert len(logs) == 2 and all("subscribed" in text for text in logs)


def test_cloud_broker_restart_loses_and_duplicates_nothing(stack: Stack) -> None:
    stack.ingest()
    agent = stack.agent(NODE, **synthetic(limit=1500, rate=300))
    time.sleep(1.5)
    stack.cloud.restart(down_for=1.0)
    time.sleep(1.0)
    stack.cloud.restart()
    finish(stack, agent, 1500)


def test_agent_sigkilled_mid_batch_and_restarted_loses_and_duplicates_nothing(stack: Stack) -> None:
    stack.ingest()
    agent = stack.agent(NODE, **synthetic(limit=3000, rate=1500))
    for _ in range(2):
        time.sleep(1.2)
        agent.kill()
        agent.start()
    finish(stack, agent, 3000)


def test_ingest_killed_after_insert_before_ack_loses_and_duplicates_nothing(stack: Stack) -> None:
    doomed = stack.ingest(env={"CITYEDGE_FAULT": "ingest_exit_after_commit"})
    agent = stack.agent(NODE, **synthetic(limit=800, rate=400))
    wait_until(lambda: not doomed.alive(), 30, "ingest to exit after its first commit")
    assert doomed.proc is not None and doomed.proc.returncode == 137, doomed.tail()
    stack.procs.remove(doomed)
    stack.ingest()
    finish(stack, agent, 800)


class SensorPublisher(threading.Thread):
    """A sensor that publishes QoS 1 messages with their own ids to the node's local broker,
    retrying each until the broker acknowledges it (so a broker restart costs nothing)."""

    def __init__(self, stack: Stack, count: int) -> None:
        super().__init__(daemon=True)
        self.stack, self.count = stack, count
        self.ids: list[str] = []

    def run(self) -> None:
        ident = self.stack.identity("sensor-1")
        assert self.stack.local is not None
        port = self.stack.local.port
        i = 0
        while i < self.count:
            client = make_client("sensor-1", "5", persistent=False)
            client.tls_set_context(tls_context(ident.ca_path, ident.cert_path, ident.key_path))
            try:
                client.connect("127.0.0.1", port)
                client.loop_start()
                while i < self.count:
                    rid = str(uuid.uuid4())
                    body = msgspec.json.encode({"id": rid, "kind": "reading", "body": {"i": i}})
                    info = client.publish(local_sensor_topic("sensor-1", "telemetry"), body, qos=1)
                    info.wait_for_publish(5)
                    if not info.is_published():
                        raise OSError("not acknowledged")
                    self.ids.append(rid)
                    i += 1
                    time.sleep(0.004)
            except (OSError, RuntimeError, ValueError):
                time.sleep(0.2)
            finally:
                client.disconnect()
                client.loop_stop()


def test_local_broker_restart_loses_and_duplicates_nothing(stack: Stack) -> None:
    local = stack.start_local_broker()
    stack.ingest()
    agent_ident = stack.identity("cityedge-agent")
    agent = stack.agent(
        NODE,
        local_bus={
            "host": "127.0.0.1",
            "port": local.port,
            "client_id": "cityedge-agent",
            "tls": {
                "cafile": str(agent_ident.ca_path),
                "certfile": str(agent_ident.cert_path),
                "keyfile": str(agent_ident.key_path),
            },
        },
    )
    sensor = SensorPublisher(stack, 600)
    time.sleep(1.0)
    sensor.start()
    time.sleep(1.0)
    local.restart(down_for=0.5)
    sensor.join(60)
    assert len(sensor.ids) == 600
    settle(stack, 600)
    agent.stop()
    assert_exactly_once(stack, stack.tmp / NODE)
    store = RecordStore.open(stack.db_url)
    try:
        stored = [r.id for r in store.records(node=NODE, stream="telemetry")]
    finally:
        store.close()
    assert sorted(stored) == sorted(sensor.ids)
