"""Real footage: the motion pipeline on Intel's car-detection.mp4 (CC BY 4.0, see its README).

A fixed camera looks down on a parking lot; vehicles drive through in three bursts (frames
~60-120: one car going up the frame; ~190-245: two cars at once, one going down and one up;
~320-376: one car going down). The lot has no single legal direction (cars cross it both
ways), so its zone has no direction and wrong-way cannot apply; the stopped-vehicle rule
stays on and must stay quiet, as no car stops. Auto-exposure darkens the whole frame by
half whenever a white car enters: the detector must not take that for motion.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import cv2
import pytest

from cityedge.edge.camera.detectors.motion import MotionDetector
from cityedge.edge.camera.perception import Perception
from cityedge.edge.camera.rules import RuleConfig, RuleEngine
from cityedge.edge.camera.tracker import Tracker, TrackerConfig
from cityedge.edge.camera.zones import CameraZones, Lane
from cityedge.protocol.vision import Incident, TrackState
from tests.support.services import require

FOOTAGE = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "car-detection.mp4"
FPS = 12.5
LOT = CameraZones(
    camera="lot",
    frame_size=(768, 432),
    lanes=[Lane(name="lot", polygon=[(0, 0), (768, 0), (768, 432), (0, 432)], direction=None)],
)
BURSTS = {"first": (50, 135, ["up"]), "middle": (175, 260, ["down", "up"]), "last": (305, 377, ["down"])}


@pytest.fixture(scope="module")
def observed() -> tuple[dict[int, list[tuple[int, TrackState]]], list[Incident], int]:
    require(FOOTAGE.is_file(), f"real footage {FOOTAGE} (see shared/data/README.md)")
    capture = cv2.VideoCapture(str(FOOTAGE))
    perception = Perception(MotionDetector(), Tracker(TrackerConfig(fps=FPS)))
    rules = RuleEngine(LOT, RuleConfig())
    tracks: dict[int, list[tuple[int, TrackState]]] = defaultdict(list)
    incidents: list[Incident] = []
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            assert frame.shape == (432, 768, 3)
            seen = perception.process("lot", index, frame, 1_767_225_600.0 + index / FPS)
            incidents.extend(rules.step(seen).incidents)
            for state in seen.tracks:
                tracks[state.track_id].append((index, state))
            index += 1
    finally:
        capture.release()
    return tracks, incidents, index


def drives_through(path: list[tuple[int, TrackState]]) -> bool:
    """A vehicle driving through: its foot travels a quarter of the frame height or more."""
    feet = [s.box.foot for _, s in path]
    return max(math.dist(feet[0], f) for f in feet) >= 110


def heading(path: list[tuple[int, TrackState]]) -> str:
    return "down" if path[-1][1].box.foot[1] > path[0][1].box.foot[1] else "up"


def test_the_whole_clip_decodes(
    observed: tuple[dict[int, list[tuple[int, TrackState]]], list[Incident], int],
) -> None:
    assert observed[2] == 377


@pytest.mark.parametrize("burst", list(BURSTS))
def test_each_vehicle_that_drives_through_is_one_track_going_its_way(
    observed: tuple[dict[int, list[tuple[int, TrackState]]], list[Incident], int], burst: str
) -> None:
    tracks, _, _ = observed
    start, end, expected = BURSTS[burst]
    moving = [p for p in tracks.values() if drives_through(p) and start <= p[0][0] and p[-1][0] <= end]
    assert sorted(heading(p) for p in moving) == sorted(expected)
    for path in moving:
        assert (path[-1][0] - path[0][0]) / FPS >= 2.0  # followed for seconds, not re-found in pieces


def test_no_vehicle_drives_through_outside_the_bursts(
    observed: tuple[dict[int, list[tuple[int, TrackState]]], list[Incident], int],
) -> None:
    tracks, _, _ = observed
    spans = [(s, e) for s, e, _ in BURSTS.values()]
    stray = [
        p[0][0] for p in tracks.values() if drives_through(p) and not any(s <= p[0][0] <= e for s, e in spans)
    ]
    assert stray == []


def test_the_default_rules_report_no_stopped_or_wrong_way_vehicle(
    observed: tuple[dict[int, list[tuple[int, TrackState]]], list[Incident], int],
) -> None:
    _, incidents, _ = observed
    assert [i for i in incidents if i.type in ("stopped_vehicle", "wrong_way")] == []
