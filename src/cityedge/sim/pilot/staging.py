"""What each camera of the pilot shows: a scene per camera with the spec's incidents staged on a timetable.

Every camera gets its own seed and lane rotation, so the district's cameras do not show the
same traffic. A decoy is a staged event the ground truth declares a non-incident (a delivery
van allowed to stop): every detection of one is a false positive, by definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cityedge.protocol.spec_model import LEAD_S, UseCaseSpec, slot_seconds
from cityedge.sim.scene import Injected, Scenario

__all__ = ["CameraFeed", "node_id", "plan_feeds", "truth_without_decoys"]

_LANES = ("west_2", "west_1", "east_1", "east_2")  # far side to near side
# (congestion, stopped) lanes never adjacent: a queue would hide the stopped car behind it
_PAIRS = ((0, 2), (1, 3), (2, 0), (3, 1), (0, 3), (3, 0))
_DURATION = {"congestion": 28.0, "stopped_vehicle": 20.0, "wrong_way": 0.0}


def node_id(number: int) -> str:
    return f"edge-node-{number:03d}"


@dataclass(frozen=True)
class CameraFeed:
    """One synthetic network camera: where it streams, and the scene it plays from `start_at`."""

    node: str
    camera: str
    port: int
    scenario: Scenario  # start_time is the wall time of frame 0
    decoys: tuple[Injected, ...] = field(default=())


def _timetable(spec: UseCaseSpec, index: int) -> tuple[list[Injected], list[Injected]]:
    """(staged incidents, decoys among them) for the camera with this district-wide index."""
    mix, slot = spec.incidents, slot_seconds(spec.incidents)
    staged: list[Injected] = []
    decoys: list[Injected] = []
    for k in range(spec.slots):
        start = LEAD_S + k * slot
        jam, stop = _PAIRS[(k + index) % len(_PAIRS)]
        events = {
            "congestion": Injected("congestion", _LANES[jam], start, _DURATION["congestion"]),
            "stopped_vehicle": Injected(
                "stopped_vehicle", _LANES[stop], start + 2.0, _DURATION["stopped_vehicle"]
            ),
            # after the queue has cleared, so the wrong-way car meets free-flowing traffic
            "wrong_way": Injected("wrong_way", _LANES[(k + index + 1) % 4], start + 44.0),
        }
        for kind, event in events.items():
            if mix.get(kind):
                staged.append(event)
                if spec.decoys.get(kind):
                    decoys.append(event)
    return staged, decoys


def plan_feeds(spec: UseCaseSpec, start_at: float, ports: list[int]) -> list[CameraFeed]:
    """Every camera of every node, numbered cam-1.. per node, streaming from `start_at` (wall time)."""
    feeds = []
    for n in range(spec.nodes):
        for c in range(spec.cameras_per_node):
            index = n * spec.cameras_per_node + c
            staged, decoys = _timetable(spec, index)
            scenario = Scenario(
                name=f"{node_id(n + 1)}/cam-{c + 1}",
                seed=spec.seed * 1000 + index,
                seconds=spec.run_s,
                fps=spec.fps_per_camera,
                size=(640, 360),
                arrivals_per_lane_s=0.1,
                noise_sigma=2.0,
                incidents=tuple(staged),
                start_time=start_at,
                camera=f"cam-{c + 1}",
            )
            feeds.append(CameraFeed(node_id(n + 1), f"cam-{c + 1}", ports[index], scenario, tuple(decoys)))
    return feeds


def truth_without_decoys(truth: list[dict[str, Any]], feed: CameraFeed, t0: float) -> list[dict[str, Any]]:
    """The scene's ground truth (wall time, frame 0 at `t0`) less the incidents a decoy caused."""

    def is_decoy(gt: dict[str, Any]) -> bool:
        return any(
            gt["type"] == d.type
            and gt["lane"] == d.lane
            and t0 + d.at - 1.0 <= gt["start"] <= t0 + d.at + 30.0
            for d in feed.decoys
        )

    return [gt for gt in truth if not is_decoy(gt)]
