"""The sensor client against a real Mosquitto: a reading stays on the sensor's disk until the
agent confirms it, goes again when no confirmation comes, and a refusal is final."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from cityedge.protocol.acks import SensorAck, SensorRefusal
from cityedge.protocol.topics import local_ack_topic
from cityedge.sensor import SensorClient, SensorSettings
from cityedge.sim.brokers import MosquittoProcess
from cityedge.transport import make_client

from ..support.stack import wait_until

pytestmark = pytest.mark.mosquitto


class Agent:
    """Stands in for the agent: collects readings, confirms (or refuses) what it is told to."""

    def __init__(self, port: int) -> None:
        self.got: list[dict[str, object]] = []
        self.client = make_client("agent", "5", persistent=False)
        self.client.on_message = lambda _c, _u, msg: self.got.append(msgspec.json.decode(msg.payload))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe("ce/local/v1/sensors/+/+", qos=1)
        time.sleep(0.3)

    def ids(self) -> list[str]:
        return [str(m["id"]) for m in self.got]

    def confirm(self, ids: list[str], refused: list[SensorRefusal] | None = None) -> None:
        ack = SensorAck(ids=ids, refused=refused or [])
        self.client.publish(local_ack_topic("air-1"), msgspec.json.encode(ack), qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def agent(plain_broker: MosquittoProcess) -> Iterator[Agent]:
    a = Agent(plain_broker.port)
    yield a
    a.close()


def sensor(tmp_path: Path, port: int, resend_after_s: float = 30.0) -> SensorClient:
    settings = SensorSettings(
        sensor_id="air-1", port=port, data_dir=tmp_path / "air", resend_after_s=resend_after_s
    )
    return SensorClient(settings).start()


def test_a_reading_stays_on_the_sensors_disk_until_the_agent_confirms_it(
    tmp_path: Path, plain_broker: MosquittoProcess, agent: Agent
) -> None:
    client = sensor(tmp_path, plain_broker.port)
    try:
        ids = [client.publish("telemetry", "reading", {"i": i}) for i in range(3)]
        wait_until(lambda: len(agent.got) == 3, 10, "the readings at the agent")
        assert agent.ids() == ids and client.unconfirmed() == 3  # a PUBACK is not enough
        agent.confirm(ids[:2])
        wait_until(lambda: client.unconfirmed() == 1, 10, "two readings forgotten")
        agent.confirm([], [SensorRefusal(id=ids[2], reason="bad_ts")])
        wait_until(lambda: client.unconfirmed() == 0, 10, "the refused reading forgotten too")
        assert client.refused == [(ids[2], "bad_ts")] and client.confirmed == 3
    finally:
        client.stop()


def test_an_unconfirmed_reading_goes_again_and_again_with_its_own_id(
    tmp_path: Path, plain_broker: MosquittoProcess, agent: Agent
) -> None:
    client = sensor(tmp_path, plain_broker.port, resend_after_s=0.5)
    try:
        rid = client.publish("telemetry", "reading", {"i": 1})
        wait_until(lambda: agent.ids().count(rid) >= 3, 10, "the reading sent three times")
        agent.confirm([rid])
        wait_until(lambda: client.unconfirmed() == 0, 10, "the reading forgotten")
        sent = agent.ids().count(rid)
        time.sleep(1.5)
        assert agent.ids().count(rid) == sent  # confirmed: it stops
    finally:
        client.stop()


def test_readings_made_while_the_broker_is_down_survive_a_restart_of_the_sensor(
    tmp_path: Path, plain_broker: MosquittoProcess
) -> None:
    plain_broker.stop()
    first = sensor(tmp_path, plain_broker.port)
    ids = [first.publish("telemetry", "reading", {"i": i}) for i in range(5)]
    first.stop()  # the sensor reboots before the broker is back
    plain_broker.start()
    agent = Agent(plain_broker.port)
    second = sensor(tmp_path, plain_broker.port)
    try:
        wait_until(
            lambda: sorted(set(agent.ids())) == sorted(ids), 15, "every reading from the sensor's disk"
        )
    finally:
        second.stop()
        agent.close()
