"""End to end: records made on a node reach the cloud store exactly once, in order per stream,
through link cuts, broker restarts, an agent SIGKILLed mid-batch, ingest killed between
commit and ack, and a local broker restart. Real Mosquitto with the configs `cityedge broker
config` renders (mTLS, CRL, ACLs), both store backends.
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
from cityedge.protocol.topics import local_sensor_topic
from cityedge.transport import TlsFiles, client_tls_context, make_client

from ..support.databases import fresh_database
from ..support.e2e import assert_exactly_once, finish, settle, synthetic
from ..support.stack import NODE, Stack, tls_dict, wait_until

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def stack(backend: str, tmp_path: Path) -> Iterator[Stack]:
    with fresh_database(backend, tmp_path) as url:
        s = Stack(tmp_path, url)
        try:
            yield s
        finally:
            s.close()


@pytest.fixture
def replicas_stack(backend: str, tmp_path: Path) -> Iterator[Stack]:
    with fresh_database(backend, tmp_path) as url:
        s = Stack(tmp_path, url, ingest_names=("ingest-a", "ingest-b"))
        try:
            yield s
        finally:
            s.close()


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
    replicas_stack: Stack,
) -> None:
    stack = replicas_stack
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
            client.tls_set_context(client_tls_context(TlsFiles(**tls_dict(ident))))
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
    agent = stack.agent(NODE, local_bus=stack.local_bus())
    # A plain sensor's readings are only as safe as the node broker's memory: published before
    # the agent ever subscribed, they match no one and are dropped (the sensor client resends).
    wait_until(lambda: "localbus: subscribed" in agent.tail(), 30, "the agent to subscribe on its broker")
    sensor = SensorPublisher(stack, 600)
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
