"""Running a scenario: frames with ground truth, the lanes as drawn, and H.264 video with its truth file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from cityedge.edge.camera.zones import CameraZones
from cityedge.sim.scene.geometry import Camera, Road, lane_zones
from cityedge.sim.scene.model import Scenario, SceneRun
from cityedge.sim.scene.render import Painter
from cityedge.sim.scene.traffic import Traffic
from cityedge.sim.scene.truth import Truth

__all__ = ["frames", "render", "scene_zones", "write_ground_truth", "write_video"]


def render(
    scenario: Scenario,
) -> Iterator[tuple[int, float, NDArray[np.uint8], dict[int, tuple[float, float, float, float]]]]:
    """Frames with the true box of every vehicle in view; see `frames` for the plain feed."""
    run = SceneRun(scenario, zones=scene_zones(scenario))
    yield from _render(scenario, run)


def _render(
    scenario: Scenario, run: SceneRun
) -> Iterator[tuple[int, float, NDArray[np.uint8], dict[int, tuple[float, float, float, float]]]]:
    rng = np.random.default_rng(scenario.seed)
    camera, road = Camera(scenario.size), Road()
    traffic, painter = Traffic(scenario, road, camera, rng), Painter(scenario, camera, road, rng)
    truth = Truth(run.zones, scenario.start_time, traffic.view)
    dt = 1.0 / scenario.fps
    # a short pre-roll so the road already carries traffic when the camera starts
    for k in range(int(20 * scenario.fps)):
        traffic.step(-20.0 + k * dt, dt)
    total = round(scenario.seconds * scenario.fps)
    for index in range(total):
        t = index * dt
        for v in traffic.step(t, dt):
            truth.staged[v.id] = "stopped_vehicle" if v.stop_at is not None else "wrong_way"
        image, boxes = painter.draw(traffic.vehicles, t)
        clipped = {vid: _clip(b, scenario.size) for vid, b in boxes.items()}
        visible = {vid: b for vid, b in clipped.items() if b is not None}
        for v in traffic.vehicles:
            truth.vehicle(v, visible.get(v.id), t)
        for lane in road.names:
            truth.lane(lane, traffic.vehicles, visible, t)
        run.incidents = truth.finish()
        run.vehicles_spawned = traffic.next_id - 1
        yield index, scenario.start_time + t, image, visible


def _clip(
    box: tuple[float, float, float, float], size: tuple[int, int]
) -> tuple[float, float, float, float] | None:
    x1, y1, x2, y2 = (
        max(0.0, box[0]),
        max(0.0, box[1]),
        min(float(size[0]), box[2]),
        min(float(size[1]), box[3]),
    )
    return (x1, y1, x2, y2) if x2 - x1 >= 2 and y2 - y1 >= 2 else None


def scene_zones(scenario: Scenario) -> CameraZones:
    """The lanes exactly as the scene draws them, for frames of the scenario's size."""
    return lane_zones(Camera(scenario.size), Road(), scenario.camera)


def frames(scenario: Scenario, run: SceneRun | None = None) -> Iterator[tuple[int, float, NDArray[np.uint8]]]:
    """(frame_index, capture time, BGR frame); `run` collects the ground truth as it goes."""
    run = run or SceneRun(scenario, zones=scene_zones(scenario))
    for index, t, image, _ in _render(scenario, run):
        yield index, t, image


def write_ground_truth(run: SceneRun, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(run.to_json(), indent=1))
    tmp.replace(path)


def write_video(
    scenario: Scenario,
    path: Path,
    size: tuple[int, int] = (1280, 720),
    fps: float = 10.0,
    seconds: float | None = None,
    *,
    codec: str = "libx264",
) -> SceneRun:
    """Render the scenario into an H.264 file (yuv420p) plus `<path>.truth.json` beside it."""
    import av

    sc = replace(scenario, size=size, fps=fps, seconds=seconds if seconds is not None else scenario.seconds)
    run = SceneRun(sc, zones=scene_zones(sc))
    tmp = path.with_name(path.name + ".part")
    with av.open(str(tmp), mode="w", format=path.suffix.lstrip(".") or "mp4") as container:
        stream = container.add_stream(codec, rate=round(fps))
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23", "g": str(round(fps * 2))}
        for _, _, image in frames(sc, run):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)
    write_ground_truth(run, path.with_name(path.name + ".truth.json"))
    return run
