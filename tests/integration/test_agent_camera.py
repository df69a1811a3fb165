"""The whole node with a camera: a video file through the agent's camera pipeline; a stopped
vehicle becomes an incident, a local decision published at once on the node's own broker,
and records in the outbox for the cloud (never pixels)."""

from __future__ import annotations

import threading
from pathlib import Path

import msgspec
import pytest

from cityedge.edge.app import EdgeAgent
from cityedge.edge.config import EdgeConfig
from cityedge.edge.outbox import Outbox
from cityedge.protocol.codec import decode_envelope
from cityedge.sim.brokers import MosquittoProcess, free_port
from cityedge.sim.scene import scene_zones, write_video
from cityedge.transport import make_client

from ..support.scenes import stopped_vehicle_road

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]


def test_a_stopped_vehicle_on_camera_becomes_a_local_decision_and_outbox_records(
    tmp_path: Path, plain_broker: MosquittoProcess
) -> None:
    scenario = stopped_vehicle_road("agent-e2e", 14.0)
    video = tmp_path / "cam-1.mp4"
    write_video(scenario, video, size=scenario.size, fps=10.0)
    camera = {
        "id": "cam-1",
        "url": str(video),
        "fps": 10.0,
        "zones": scene_zones(scenario).model_dump(mode="json"),
        "rules": {"stopped_after_s": 3.0},
    }
    cfg = EdgeConfig.model_validate(
        {
            "node_id": "edge-node-001",
            "district": "corridor-a",
            "data_dir": str(tmp_path / "node"),
            "uplink": {"port": free_port()},  # no cloud: records wait in the outbox
            "local_bus": {"port": plain_broker.port},
            "heartbeat": {"interval_s": 3600},
            "cameras": [camera],
        }
    )
    decisions: list[dict[str, object]] = []
    got = threading.Event()
    watcher = make_client("watcher", "5", persistent=False)
    watcher.on_connect = lambda c, *_: c.subscribe("ce/local/v1/decisions/#", qos=1)
    watcher.on_message = lambda _c, _u, m: (decisions.append(msgspec.json.decode(m.payload)), got.set())
    watcher.connect("127.0.0.1", plain_broker.port)
    watcher.loop_start()
    agent = EdgeAgent(cfg).start()
    try:
        assert got.wait(40), "no local decision within 40 s"
    finally:
        agent.stop()
        watcher.disconnect()
        watcher.loop_stop()
    assert decisions[0]["camera"] == "cam-1" and "stopped_vehicle" in str(decisions[0]["reason"])
    ob = Outbox.open(tmp_path / "node" / "outbox.db")
    try:
        claimed = []
        while (batch := ob.claim(1000, 10_000_000)) is not None:
            claimed.extend(batch[1])
    finally:
        ob.close()
    envs = [decode_envelope(c.payload) for c in claimed]
    incidents = [e for e in envs if e.stream == "events" and e.kind == "incident"]
    assert any(e.body["type"] == "stopped_vehicle" for e in incidents)
    assert any(e.stream == "decisions" for e in envs)
    # metadata only: every record is small and none carries image bytes
    assert max(len(c.payload) for c in claimed) < 4096
