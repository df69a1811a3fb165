"""Counting at count lines: each vehicle once per line, per lane and direction, per window."""

from __future__ import annotations

from cityedge.edge.camera.countline import CountLine
from cityedge.edge.camera.rules import RuleConfig, RuleEngine
from cityedge.edge.camera.zones import CameraZones
from cityedge.protocol.vision import FrameTracks, LaneCount
from tests.support.rule_frames import FPS, T0, ZONES, Vehicle, drives, ghost, track

LINES = ZONES.model_copy(update={"count_lines": [CountLine(name="mid", points=((500, 100), (500, 300)))]})


def counts(zones: CameraZones, vehicles: list[Vehicle], seconds: float) -> list[LaneCount]:
    engine = RuleEngine(zones, RuleConfig())
    found = []
    for k in range(round(seconds * FPS)):
        t = k / FPS
        tracks = [track(*v) for v in (f(t) for f in vehicles) if v is not None]  # type: ignore[arg-type]
        found += engine.step(FrameTracks("cam", k, T0 + t, tracks)).counts
    return found


def table(found: list[LaneCount]) -> dict[tuple[str, str | None, str | None], int]:
    return {(c.lane, c.line, c.direction): c.count for c in found}


def test_vehicles_are_counted_where_they_cross_the_line_per_lane_and_direction() -> None:
    east = [drives(k, 180, -200.0 * k, 150, until=50) for k in range(1, 4)]
    west = [drives(10, 280, 1000, -150, until=50)]
    found = counts(LINES, east + west, 61)
    assert table(found) == {
        ("east", "mid", "forward"): 0,  # the line runs down the picture: right of it is west
        ("east", "mid", "backward"): 3,
        ("west", "mid", "forward"): 1,
        ("west", "mid", "backward"): 0,
    }
    assert {(c.window_start, c.window_end) for c in found} == {(T0, T0 + 60)}
    assert next(c for c in found if c.count == 3).mean_speed_px_s == 150.0


def test_a_line_bound_to_a_lane_counts_for_that_lane_only() -> None:
    bound = ZONES.model_copy(
        update={"count_lines": [CountLine(name="e", points=((500, 100), (500, 200)), lane="east")]}
    )
    assert table(counts(bound, [drives(1, 180, 0, 150, until=50)], 61)) == {
        ("east", "e", "forward"): 0,
        ("east", "e", "backward"): 1,
    }


def test_a_vehicle_jittering_on_the_line_is_counted_once_and_a_still_blob_never() -> None:
    def dithers(t: float) -> tuple[float, ...]:  # drives up to the line, then rocks across it
        x = 150 * t if t < 3.3 else 495 + (10 if int(t * 10) % 2 else -10)
        return (1, x, 180, 150.0 if t < 3.3 else 0.0)

    assert table(counts(LINES, [dithers], 61))[("east", "mid", "backward")] == 1
    assert set(table(counts(LINES, [ghost(2, 180, 500)], 61)).values()) == {0}


def test_without_count_lines_lanes_count_the_tracks_that_entered_them() -> None:
    found = counts(ZONES, [drives(1, 180, 0, 150, until=50)], 61)
    assert table(found)[("east", None, None)] == 1
