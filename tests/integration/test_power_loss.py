"""A node loses power: its local broker and its agent die together (SIGKILL), over and over,
while sensors using cityedge's sensor client publish steadily. The broker's memory goes
with them; the sensors still hold every reading the agent has not confirmed, and send it
again. Every reading reaches the cloud store exactly once.

Three ways to lose power, five trials each: both killed at once; the agent stalled for 3 s
first (the broker holding what it took, in memory); the agent coming back 5 s after the broker
(sensors meanwhile publish into a broker where the agent's subscription may be gone).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cityedge.cloud.store import RecordStore
from cityedge.sensor import SensorClient, SensorSettings
from cityedge.transport import TlsFiles

from ..support.stack import NODE, Proc, Stack, tls_dict, wait_until

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]
TRIALS = 5
SENSORS = ("air-1", "noise-1")


class Sensor(threading.Thread):
    """A sensor publishing through the sensor client at a steady rate until told to stop."""

    def __init__(self, stack: Stack, name: str, per_s: float = 60.0) -> None:
        super().__init__(daemon=True, name=name)
        assert stack.local is not None
        ident = stack.identity(name)
        self.client = SensorClient(
            SensorSettings(
                sensor_id=name, port=stack.local.port, data_dir=stack.tmp / "sensors",
                tls=TlsFiles(**tls_dict(ident)), resend_after_s=2.0, backoff_cap_s=1.0,
            )
        ).start()  # fmt: skip
        self.per_s = per_s
        self.ids: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.halt.wait(1.0 / self.per_s):
            self.ids.append(self.client.publish("telemetry", "reading", {"i": i}))
            i += 1


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = Stack(tmp_path, f"sqlite:///{tmp_path / 'cloud.db'}")
    try:
        yield s
    finally:
        s.close()


def power_cut(stack: Stack, agent: Proc, variant: str) -> None:
    assert stack.local is not None
    if variant == "agent_stalled":
        agent.pause()  # the broker goes on taking readings the agent will never see
        time.sleep(3.0)
    stack.local.kill()
    agent.kill()
    stack.local.start()
    if variant == "agent_late":
        time.sleep(5.0)
    agent.start()


@pytest.mark.parametrize("variant", ["together", "agent_stalled", "agent_late"])
def test_power_lost_on_the_node_again_and_again_loses_and_duplicates_no_reading(
    stack: Stack, variant: str
) -> None:
    stack.start_local_broker()
    stack.ingest()
    agent = stack.agent(NODE, local_bus=stack.local_bus())
    sensors = [Sensor(stack, name) for name in SENSORS]
    for sensor in sensors:
        sensor.start()
    try:
        for _ in range(TRIALS):
            time.sleep(2.0)
            power_cut(stack, agent, variant)
        time.sleep(2.0)
    finally:
        for sensor in sensors:
            sensor.halt.set()
            sensor.join(10)
    made = [rid for sensor in sensors for rid in sensor.ids]
    wait_until(
        lambda: all(s.client.unconfirmed() == 0 for s in sensors), 90, "the agent to confirm every reading"
    )
    with RecordStore.open(stack.db_url) as store:
        wait_until(
            lambda: store.counts().get("telemetry", 0) >= len(made), 60, "the store to hold every reading"
        )
        stored = [r.id for r in store.records(node=NODE, stream="telemetry")]
    for sensor in sensors:
        sensor.client.stop()
    lost = set(made) - set(stored)
    assert len(made) > TRIALS * 2 * 100
    assert not lost, f"{len(lost)} of {len(made)} readings lost"
    assert len(stored) == len(set(stored)) == len(made)  # and none stored twice
