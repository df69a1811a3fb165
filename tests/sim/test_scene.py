"""The synthetic traffic scene: deterministic, ground truth consistent with what it draws."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from cityedge.protocol.errors import ConfigError
from cityedge.sim.scenarios import PRESETS, preset, suite
from cityedge.sim.scene import Injected, Scenario, SceneRun, frames, render, scene_zones, write_video


def digest(scenario: Scenario, count: int) -> tuple[str, list[float]]:
    h = hashlib.sha256()
    times = []
    for index, t, image in frames(scenario):
        if index >= count:
            break
        h.update(image.tobytes())
        times.append(t)
    return h.hexdigest(), times


def test_a_scenario_is_deterministic_from_its_seed() -> None:
    sc = preset("heavy_traffic", slots=1, size=(320, 180))
    assert digest(sc, 40) == digest(sc, 40)
    assert digest(sc, 40)[0] != digest(replace(sc, seed=sc.seed + 1), 40)[0]
    _, times = digest(sc, 40)
    assert times[1] - times[0] == pytest.approx(0.1)
    assert times[0] == sc.start_time


def test_ground_truth_records_every_staged_incident_with_its_lane_and_time() -> None:
    sc = preset("clear_day", slots=1, size=(320, 180))
    run = SceneRun(sc, zones=scene_zones(sc))
    for _ in frames(sc, run):
        pass
    staged = {(i.type, i.lane) for i in sc.incidents}
    assert {(g.type, g.lane) for g in run.incidents} == staged
    for g in run.incidents:
        injected = next(i for i in sc.incidents if i.type == g.type)
        assert sc.start_time + injected.at <= g.start < g.end
        assert run.zones.lane_at(g.position) is not None
    stopped = next(g for g in run.incidents if g.type == "stopped_vehicle")
    assert stopped.end - stopped.start == pytest.approx(20.0, abs=0.3)  # the staged dwell
    assert run.vehicles_spawned > 10
    assert json.loads(json.dumps(run.to_json()))["zones"]["camera"] == sc.camera


def test_the_zones_match_the_lanes_vehicles_are_drawn_in() -> None:
    sc = preset("clear_day", slots=1)
    zones = scene_zones(sc)
    inside = total = 0
    for index, _, image, boxes in render(sc):
        assert image.shape == (360, 640, 3)
        for x1, y1, x2, y2 in boxes.values():
            if x1 > 0 and x2 < 640 and y2 < 360:  # fully in view
                total += 1
                inside += zones.lane_at(((x1 + x2) / 2, y2 - 0.1 * (y2 - y1))) is not None
        if index >= 150:
            break
    assert total > 50
    assert inside / total > 0.97
    directions = {lane.name: lane.direction for lane in zones.lanes}
    assert directions["east_1"][0] > 0.9  # type: ignore[index]
    assert directions["west_1"][0] < -0.9  # type: ignore[index]


def test_dusk_darkens_the_scene_over_the_run() -> None:
    sc = replace(preset("dusk_noise", slots=1, size=(160, 90)), seconds=20.0)
    levels = [float(image.mean()) for _, _, image in frames(sc)]
    assert levels[-1] < 0.6 * levels[0]


def test_the_suite_has_at_least_twenty_incidents_of_each_type() -> None:
    scenarios = suite()
    assert [s.name for s in scenarios] == list(PRESETS)
    for kind in ("stopped_vehicle", "wrong_way", "congestion"):
        assert sum(1 for s in scenarios for i in s.incidents if i.type == kind) >= 20


def test_bad_scenarios_are_refused_clearly() -> None:
    with pytest.raises(ConfigError, match="unknown scenario preset 'rainy'"):
        preset("rainy")
    bad = Scenario(name="x", seed=1, seconds=1, incidents=(Injected("stopped_vehicle", "north_9", 0.0),))
    with pytest.raises(ConfigError, match="incident lane 'north_9'"):
        next(frames(bad))


def test_write_video_makes_an_h264_file_and_its_ground_truth(tmp_path: Path) -> None:
    path = tmp_path / "clear.mp4"
    run = write_video(preset("clear_day", slots=1), path, size=(320, 180), fps=10, seconds=3)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        decoded = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
    assert len(decoded) == 30
    assert decoded[0].shape == (180, 320, 3)
    assert np.mean(decoded[0]) > 50
    truth = json.loads((tmp_path / "clear.mp4.truth.json").read_text())
    assert truth["size"] == [320, 180]
    assert truth["zones"]["frame_size"] == [320, 180]
    assert truth["seconds"] == 3
    assert run.scenario.size == (320, 180)


def test_a_queue_that_thins_out_for_a_moment_is_one_true_congestion_episode() -> None:
    from cityedge.sim.scene.traffic import Vehicle
    from cityedge.sim.scene.truth import FREE_FOR_S, Truth

    zones = scene_zones(preset("clear_day", slots=1))
    lane = zones.lanes[0]
    x = sum(p[0] for p in lane.polygon) / len(lane.polygon)
    y = sum(p[1] for p in lane.polygon) / len(lane.polygon)
    cars = [Vehicle(k, lane.name, "car", 4.5, 1.8, 1.5, (0, 0, 0), 10.0, 5.0 * k, 1.0) for k in range(10)]
    boxes = {car.id: (x - 10, y - 10, x + 10, y) for car in cars}

    def episodes(gap_s: float) -> list[tuple[float, float]]:
        truth = Truth(zones, 0.0, {lane.name: (0.0, 100.0)})
        for k in range(400):  # queued 10 s, two cars left for gap_s, queued again, then gone
            t = k / 10
            present = cars if t < 10 or 10 + gap_s <= t < 20 else cars[:2] if t < 20 else []
            truth.lane(lane.name, present, boxes, t)
        return [(round(g.start, 1), round(g.end, 1)) for g in truth.finish()]

    assert episodes(FREE_FOR_S / 3) == [(0.0, 19.9)]
    assert episodes(FREE_FOR_S + 1) == [(0.0, 9.9), (10.0 + FREE_FOR_S + 1, 19.9)]
