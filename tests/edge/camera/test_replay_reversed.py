"""Acceptance (issue 12): a synthetic road clip played backwards through `camera replay` makes
every vehicle a wrong-way driver, and each must be one incident; played forwards, none.

Recall counts the vehicles a motion camera can see as vehicles of their own: a car driving
level with a nearer one in the next lane touches it in the picture for most of its drive,
and the motion model sees the pair as one blob (whose foot, and incident, is the nearer
one's). The test checks such pairs are few, so they cannot hide a rule that misses.
"""

from __future__ import annotations

import math
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml
from numpy.typing import NDArray

from cityedge.edge.camera.config import load_node_cameras
from cityedge.edge.camera.replay import ReplayReport, replay
from cityedge.edge.camera.zones import CameraZones
from cityedge.sim.scene import Scenario, render, scene_zones

SCENE = Scenario(name="reverse", seed=8, seconds=40.0, arrivals_per_lane_s=0.1, size=(640, 360))
MIN_FRAMES = 15  # in a directed lane this long ...
MIN_TRAVEL_PX = 120.0  # ... and this far: a drive the rule can judge (not a car cut off by the clip's end)
MATCH_PX = 40.0
TOUCH_PX = 10.0  # boxes closer than this are one motion blob (the model closes small gaps)

Boxes = dict[int, tuple[float, float, float, float]]


def _foot(box: tuple[float, float, float, float]) -> tuple[float, float]:
    return ((box[0] + box[2]) / 2, box[3] - 0.1 * (box[3] - box[1]))  # where the rules judge a lane


def _write(path: Path, frames: list[NDArray[np.uint8]], fps: float) -> None:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=round(fps))
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = SCENE.size[0], SCENE.size[1], "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "20"}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, list[Boxes]]:
    """The road forwards and backwards (H.264, 640x360, 10 fps), a node config with the road's
    lanes, and every vehicle's true box per frame of the forward clip."""
    root = tmp_path_factory.mktemp("reverse")
    encoded, boxes = [], []
    for _, _, image, visible in render(SCENE):
        encoded.append(cv2.imencode(".png", image)[1])  # lossless, and small while held
        boxes.append(visible)
    frames = [np.asarray(cv2.imdecode(e, cv2.IMREAD_COLOR), dtype=np.uint8) for e in encoded]
    _write(root / "forward.mp4", frames, SCENE.fps)
    _write(root / "backward.mp4", frames[::-1], SCENE.fps)
    zones = scene_zones(SCENE).model_dump(mode="json")
    node = {"node_id": "n1", "district": "d1", "data_dir": str(root / "data"), "uplink": {}}
    camera = {"id": SCENE.camera, "url": "not-read.mp4", "zones": zones}
    (root / "node.yaml").write_text(yaml.safe_dump(node | {"cameras": [camera]}))
    return root / "forward.mp4", root / "backward.mp4", root / "node.yaml", boxes


def offenders(boxes: list[Boxes], zones: CameraZones) -> dict[int, list[tuple[int, tuple[float, float]]]]:
    """Vehicles that drive through a directed lane long and far enough to be judged: each
    one's (frame, foot) path while in such a lane, frames of the forward clip."""
    paths: dict[int, list[tuple[int, tuple[float, float]]]] = {}
    for index, visible in enumerate(boxes):
        for vid, box in visible.items():
            lane = zones.lane_at(_foot(box))
            if lane is not None and lane.direction is not None:
                paths.setdefault(vid, []).append((index, _foot(box)))
    return {
        vid: path
        for vid, path in paths.items()
        if len(path) >= MIN_FRAMES and math.dist(path[0][1], path[-1][1]) >= MIN_TRAVEL_PX
    }


def merged(vid: int, path: list[tuple[int, tuple[float, float]]], boxes: list[Boxes]) -> bool:
    """Touching a nearer vehicle (lower in the picture) for most of its drive."""
    touching = 0
    for index, _ in path:
        x1, y1, x2, y2 = boxes[index][vid]
        for other, (a1, b1, a2, b2) in boxes[index].items():
            apart = max(a1 - x2, x1 - a2, b1 - y2, y1 - b2)
            if other != vid and b2 > y2 and apart < TOUCH_PX:
                touching += 1
                break
    return touching > len(path) / 2


def culprit(report: ReplayReport, at: float, position: tuple[float, float], boxes: list[Boxes]) -> int | None:
    """The vehicle whose foot was where the incident says, when it says (backward clip time)."""
    frame = len(boxes) - 1 - round(at * SCENE.fps)
    near = [(math.dist(_foot(b), position), vid) for vid, b in boxes[frame].items()]
    best = min(near, default=(math.inf, None))
    return best[1] if best[0] <= MATCH_PX else None


def test_the_forward_road_raises_no_incident(clips: tuple[Path, Path, Path, list[Boxes]]) -> None:
    forward, _, config, _ = clips
    [camera] = load_node_cameras(config, SCENE.camera)
    report = replay(camera, forward)
    assert report.frames == round(SCENE.seconds * SCENE.fps)
    assert report.incidents == []


def test_played_backwards_every_vehicle_is_one_wrong_way_incident(
    clips: tuple[Path, Path, Path, list[Boxes]],
) -> None:
    _, backward, config, boxes = clips
    [camera] = load_node_cameras(config, SCENE.camera)
    report = replay(camera, backward)
    assert {i.type for i in report.incidents} == {"wrong_way"}
    drivers = offenders(boxes, camera.zones)
    truth = {vid for vid, path in drivers.items() if not merged(vid, path, boxes)}
    assert len(truth) >= 10, "the clip must carry enough traffic to measure recall"
    assert len(drivers) - len(truth) <= 0.2 * len(drivers), "few drivers are one blob with another"
    blamed = [culprit(report, i.detected_at, i.position, boxes) for i in report.incidents]
    assert None not in blamed, "every incident is a vehicle that drove the wrong way"
    assert len(blamed) == len(set(blamed)), "one incident per vehicle"
    recall = len(set(blamed) & set(truth)) / len(truth)
    assert recall >= 0.9, (recall, sorted(set(truth) - set(blamed)))
