"""Cameras in worker processes: the agent gets the same decisions and records as when its
cameras run in its own process, a worker that dies is restarted and counted, and stopping
ends every worker cleanly. Real processes, the real pipeline, generated clips."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from cityedge.edge.app import EdgeAgent
from cityedge.edge.camera.config import CameraConfig
from cityedge.edge.camera.processes import ProcessPipeline, process_count
from cityedge.edge.config import EdgeConfig
from cityedge.edge.outbox import Outbox
from cityedge.protocol.codec import decode_envelope
from cityedge.sim.brokers import free_port
from cityedge.sim.scene import scene_zones, write_video

from ...support.scenes import stopped_vehicle_road

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A small road with a vehicle that stops (an incident and a decision), 12 s at 10 fps."""
    scenario = stopped_vehicle_road("workers", 12.0)
    video = tmp_path_factory.mktemp("clip") / "road.mp4"
    write_video(scenario, video, size=scenario.size, fps=10.0)
    return video, scene_zones(scenario).model_dump(mode="json")


def _camera(i: int, clip: tuple[Path, dict[str, Any]], **extra: Any) -> dict[str, Any]:
    video, zones = clip
    cam = f"cam-{i}"
    return {
        "id": cam,
        "url": str(video),
        "fps": 10.0,
        "zones": zones | {"camera": cam},
        "rules": {"stopped_after_s": 3.0},
    } | extra


def _run_node(tmp: Path, cameras: list[dict[str, Any]], processes: int) -> list[Any]:
    cfg = EdgeConfig.model_validate(
        {
            "node_id": "edge-node-001",
            "district": "corridor-a",
            "data_dir": str(tmp / "node"),
            "uplink": {"port": free_port()},  # no cloud: records wait in the outbox
            "heartbeat": {"interval_s": 3600},
            "cameras": cameras,
            "camera_workers": {"processes": processes},
        }
    )
    agent = EdgeAgent(cfg, registry=CollectorRegistry()).start()
    try:
        deadline = time.monotonic() + 90
        while not all(s.source_state == "ended" for s in agent.cameras.stats()):
            assert time.monotonic() < deadline, f"clips not played to the end: {agent.cameras.stats()}"
            time.sleep(0.2)
        kind = type(agent.cameras).__name__
    finally:
        agent.stop()
    assert kind == ("ProcessPipeline" if processes else "CameraPipeline")
    ob = Outbox.open(tmp / "node" / "outbox.db")
    try:
        claimed = []
        while (batch := ob.claim(1000, 10_000_000)) is not None:
            claimed.extend(batch[1])
    finally:
        ob.close()
    return [decode_envelope(c.payload) for c in claimed]


def _what(envs: list[Any]) -> Counter[tuple[str, ...]]:
    """Incidents and decisions, without their wall-clock times and ids."""
    out: Counter[tuple[str, ...]] = Counter()
    for e in envs:
        if e.stream == "events" and e.kind == "incident":
            out[(e.kind, e.body["camera"], e.body["type"], str(e.body.get("lane")))] += 1
        elif e.stream == "decisions":
            out[(e.kind, e.body["camera"], e.body["action"], str(e.body["reason"]))] += 1
    return out


def test_cameras_in_worker_processes_put_the_same_decisions_into_the_outbox(
    tmp_path: Path, clip: tuple[Path, dict[str, Any]]
) -> None:
    cameras = [_camera(i, clip) for i in (1, 2, 3)]
    here = _what(_run_node(tmp_path / "in-process", cameras, processes=0))
    there = _what(_run_node(tmp_path / "workers", cameras, processes=2))
    assert any(k[0] == "incident" and k[2] == "stopped_vehicle" for k in here), here
    assert any(k[0] == "decision" for k in here), here
    assert {k[1] for k in here} == {"cam-1", "cam-2", "cam-3"}
    assert there == here


def _frames(pipeline: ProcessPipeline, camera: str, since: float) -> int:
    return len(pipeline.views[camera].latencies(since))


def test_a_killed_worker_process_is_restarted_counted_and_its_cameras_go_on(
    clip: tuple[Path, dict[str, Any]],
) -> None:
    cameras = [CameraConfig.model_validate(_camera(i, clip, loop=True)) for i in (1, 2)]
    records: list[tuple[str, str]] = []
    registry = CollectorRegistry()
    pipeline = ProcessPipeline(
        cameras,
        2,
        sink=type("Sink", (), {"emit": lambda _s, stream, kind, body, ts: records.append((stream, kind))})(),
        publish_local=lambda _suffix, _payload: True,
        registry=registry,
    ).start()
    try:
        _until(lambda: all(_frames(pipeline, c.id, 0.0) > 10 for c in cameras), "first frames")
        victim = pipeline.slots[0]
        old_pid = victim.process.pid
        os.kill(old_pid, signal.SIGKILL)
        killed_at = time.time()
        _until(lambda: pipeline.views["cam-1"].state == "stopped", "the death noticed")
        assert "exited with code -9" in pipeline.views["cam-1"].reason
        _until(lambda: _frames(pipeline, "cam-1", killed_at + 0.5) > 10, "frames after the restart")
        assert victim.process.pid != old_pid and victim.restarts == 1
        assert registry.get_sample_value("cityedge_camera_worker_restarts_total", {"worker": "0"}) == 1.0
        assert _frames(pipeline, "cam-2", killed_at + 0.5) > 10  # the other worker never stopped
        streaming = {s.camera: s.source_state for s in pipeline.stats()}
        assert streaming == {"cam-1": "streaming", "cam-2": "streaming"}
    finally:
        pipeline.stop()
    assert all(s.process.exitcode == 0 for s in pipeline.slots)  # asked to stop, they did
    assert registry.get_sample_value("cityedge_camera_frames_processed_total", {"camera": "cam-2"}) == float(
        pipeline.views["cam-2"].processed
    )


def _until(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_auto_runs_a_few_cameras_in_process_and_more_in_groups() -> None:
    assert process_count(4, "auto", 8) == 0
    assert process_count(8, "auto", 8) == 0
    assert process_count(9, "auto", 8) == 2
    assert process_count(24, "auto", 8) == 3
    assert process_count(3, 0, 8) == 0
    assert process_count(3, 5, 8) == 3  # never more processes than cameras


def test_a_negative_process_count_is_refused_naming_the_setting() -> None:
    base = {"node_id": "n-1", "district": "d-1", "data_dir": "/tmp/x", "uplink": {"port": 1883}}
    with pytest.raises(ValidationError, match="processes must be `auto` or a number >= 0"):
        EdgeConfig.model_validate(base | {"camera_workers": {"processes": -1}})
    with pytest.raises(ValidationError, match=r"camera_workers\.processes"):
        EdgeConfig.model_validate(base | {"camera_workers": {"processes": "many"}})
