"""Scale-out on one machine: two, then four ingest processes on one MQTT shared subscription
against PostgreSQL store every record exactly once; and a shared-subscription member that
Mosquitto 2.0.11 robs of its queue across a broker restart costs a resend, not a record."""

from __future__ import annotations

import re
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cityedge.sim.brokers import free_port

from ..support.databases import fresh_database
from ..support.e2e import assert_exactly_once, finish, settle, synthetic
from ..support.stack import NODE, Stack

pytestmark = [pytest.mark.mosquitto, pytest.mark.postgres, pytest.mark.slow]

REPLICAS = tuple(f"ingest-{n}" for n in range(4))


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with fresh_database("postgres", tmp_path) as url:
        s = Stack(tmp_path, url, ingest_names=REPLICAS)
        try:
            yield s
        finally:
            s.close()


@pytest.mark.parametrize("replicas", [2, 4])
def test_replicas_on_one_shared_subscription_store_every_record_once(stack: Stack, replicas: int) -> None:
    procs = [stack.ingest(name=name, share_group="ingest") for name in REPLICAS[:replicas]]
    agent = stack.agent(NODE, **synthetic(limit=3000, rate=1000))
    finish(stack, agent, 3000, arrival_order=False, timeout=120)
    assert all(p.alive() and "subscribed" in p.tail(400) for p in procs)


def test_a_member_robbed_of_its_queue_by_a_broker_restart_costs_a_resend_not_a_record(stack: Stack) -> None:
    robbed = stack.ingest(name="ingest-0", share_group="ingest")
    stack.ingest(name="ingest-1", share_group="ingest")
    port = free_port()
    agent = stack.agent(NODE, health={"port": port}, **synthetic(limit=3000, rate=500))
    time.sleep(1.5)
    robbed.pause()  # it holds unacknowledged messages and takes no more
    time.sleep(1.0)
    stack.cloud.restart(down_for=0.5)  # graceful: Mosquitto saves the sessions
    time.sleep(2.0)  # published meanwhile: some of it queued for the paused member
    assert robbed.proc is not None
    robbed.proc.send_signal(signal.SIGCONT)
    settle(stack, 3000, timeout=180)
    # What the store never acknowledged, the node sent again (its outbox counts each resend).
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        metrics = resp.read().decode()
    resent = sum(float(v) for v in re.findall(r"(?m)^cityedge_outbox_resent_total\{.*\} (\S+)$", metrics))
    assert resent > 0, metrics
    agent.stop()
    assert_exactly_once(stack, stack.tmp / NODE, arrival_order=False)
