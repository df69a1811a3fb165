"""A record leaves the node only when the cloud store has it: through a broker that forgets.

Each test streams from a real agent through the cloud Mosquitto as `cityedge broker config`
renders it, while the broker keeps nothing (no ingest session yet), dies within its autosave
interval, or loses its persistence file; each ends with every committed record stored exactly
once, in sequence per stream, counted in the database, and nothing left on the node.
"""

from __future__ import annotations

import time

import pytest

from ..support.e2e import finish, synthetic
from ..support.stack import NODE, Stack

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]


def test_an_agent_streaming_for_a_minute_before_ingest_ever_connects_loses_nothing(stack: Stack) -> None:
    # 60 s at 50 records/s (telemetry, incidents and the first heartbeat): the broker PUBACKs
    # every batch and keeps none of them, because no ingest session exists yet.
    agent = stack.agent(NODE, **synthetic(limit=3000, rate=50))
    time.sleep(60.0)
    assert "store's acknowledgement" in agent.tail(200)  # the node said what it was waiting for
    stack.ingest()
    counts = finish(stack, agent, 3000, timeout=120.0, arrival_order=False)
    assert counts.get("heartbeat") == 1  # the first heartbeat too: the store begins at seq 1


def test_the_cloud_broker_sigkilled_twice_mid_stream_with_ingest_away_loses_nothing(stack: Stack) -> None:
    ingest = stack.ingest()  # its persistent session exists, then it goes away
    ingest.stop()
    agent = stack.agent(NODE, **synthetic(limit=2400, rate=400))
    for _ in range(2):
        time.sleep(1.5)
        stack.cloud.kill()  # inside the autosave interval: what it PUBACKed last is gone
        stack.cloud.start()
    time.sleep(2.0)
    assert agent.alive(), agent.tail()
    stack.ingest()
    finish(stack, agent, 2400, arrival_order=False)


def test_the_cloud_broker_restarted_without_its_persistence_file_loses_nothing(stack: Stack) -> None:
    stack.ingest()
    agent = stack.agent(NODE, **synthetic(limit=2400, rate=400))
    time.sleep(1.5)
    stack.cloud.stop()
    stack.cloud.persistence_file.unlink()  # every session and queued message is forgotten
    stack.cloud.start()
    finish(stack, agent, 2400, arrival_order=False)
