"""The motion model's ghost checks on a staged scene: a bus parked through the camera's
warm-up drives off at 3 s and leaves a thin strip of its roof along the kerb in the
background (the `ghosts` preset on a seed the rules were not tuned on)."""

from __future__ import annotations

import math

import pytest

from cityedge.edge.camera.detectors import motion
from cityedge.edge.camera.rules import RuleConfig, stopped, tracks
from cityedge.sim import evaluate
from cityedge.sim.scenarios import preset

STRIP = (356.0, 98.0)  # the foot of the strip's blob, in the far lane (west_2)


def false_alarms(
    monkeypatch: pytest.MonkeyPatch, rules: RuleConfig | None = None, **options: float
) -> list[tuple[str, str, float, float]]:
    config = motion.MotionConfig(**options)
    monkeypatch.setattr(evaluate, "MotionDetector", lambda: motion.MotionDetector(config))
    scenario = preset("ghosts", slots=2, seed_offset=2000)
    result = evaluate.run_scenario(scenario, rules)
    assert len(result.truth) == 6
    matched = {id(inc) for _, inc in result.matches}
    return [(inc.type, inc.lane, *inc.position) for inc in result.found if id(inc) not in matched]


def near_strip(alarms: list[tuple[str, str, float, float]]) -> list[tuple[str, str, float, float]]:
    return [a for a in alarms if a[0] == "stopped_vehicle" and math.dist(a[2:], STRIP) < 15]


def test_the_strip_a_bus_leaves_along_the_kerb_raises_no_stopped_vehicle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert near_strip(false_alarms(monkeypatch)) == []


def test_without_the_rim_check_the_strip_is_a_stopped_vehicle(monkeypatch: pytest.MonkeyPatch) -> None:
    # its outline runs along the kerb's own edge, so the outline check alone keeps it. (The
    # stopped-vehicle rule refuses such a strip on its own too, by its size, shape and short
    # arrival: those guards are relaxed here, so that this test sees what the motion model does)
    monkeypatch.setattr(stopped, "VEHICLE_ASPECT", 1e9)
    monkeypatch.setattr(tracks, "SIZE_CHANGE", 1e9)
    relaxed = RuleConfig(stopped_min_height_px=1.0, stopped_min_travel_px=20.0)
    assert near_strip(false_alarms(monkeypatch, relaxed, ghost_seam=1.0)) != []
    assert near_strip(false_alarms(monkeypatch, relaxed)) == []


def test_without_ghost_suppression_the_scene_raises_more_false_alarms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert len(false_alarms(monkeypatch, ghost_frames=0)) > len(false_alarms(monkeypatch))
