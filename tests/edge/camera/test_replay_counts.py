"""How a replay adds up its counts: lane entries, or crossings per count line and direction."""

from __future__ import annotations

from cityedge.edge.camera.replay import _tally
from cityedge.edge.camera.zones import Lane
from cityedge.protocol.vision import LaneCount

SQUARE = [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0)]
LANES = [
    Lane(name="east", polygon=SQUARE),
    Lane(name="west", polygon=SQUARE),
    Lane(name="bay", polygon=SQUARE),
]


def row(
    lane: str, count: int, line: str | None = None, direction: str | None = None, start: float = 0
) -> LaneCount:
    return LaneCount("cam", lane, start, start + 60, count, None, line=line, direction=direction)


def test_crossings_are_counted_per_line_and_direction_and_a_vehicle_once_per_lane() -> None:
    rows = [
        row("east", 3, "near", "forward"),
        row("east", 1, "near", "backward"),
        row("east", 2, "far", "forward"),  # the same vehicles crossing a second line of the lane
        row("east", 1, "near", "forward", start=60),  # the next count window
        row("west", 2),  # a lane without count lines: lane entries
    ]
    counts, vehicles = _tally(LANES, rows)
    assert counts == {
        "east/near/forward": 4,
        "east/near/backward": 1,
        "east/far/forward": 2,
        "west": 2,
        "bay": 0,
    }
    assert vehicles == 5 + 2  # east: its busiest line (near, 5 either way); west: 2; bay: none
