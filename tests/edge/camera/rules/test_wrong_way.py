"""Wrong way, where merged blobs fool it: a blob of several cars that parts, and a track that
takes up a drive its own track is still on. Lane `east` (direction +x) of the shared test frame;
the wrong way is -x."""

from __future__ import annotations

from cityedge.edge.camera.rules import RuleConfig
from tests.support.rule_frames import FPS, Vehicle, incidents, queue, run

NO_SCALING = RuleConfig(reference_width=1000)  # the 1000 px test frame: thresholds as written


def _box(tid: int, x1: float, x2: float, vx: float, t: float, height: float = 40) -> tuple[float, ...]:
    """A track of lane east whose box spans x1..x2 (foot at 180)."""
    return (tid, (x1 + x2) / 2, 180, vx, 10 + round(t * FPS), x2 - x1, height)


def test_a_blob_of_cars_that_parts_is_not_one_car_speeding_the_wrong_way() -> None:
    # a blob 240 px long parts: the cars at its rear leave it, and its track stays on the last
    # one out, 60 px long. Both ends moved the wrong way (the front 60 px, the rear 240) and the
    # height held, but a car does not shrink to a quarter of its length
    def parting(t: float) -> tuple[float, ...] | None:
        if t >= 0.8:
            return None
        return _box(1, 500 - 75 * t, 740 - 300 * t, -187.0, t)

    assert incidents(run([parting], 2, NO_SCALING)) == []

    # a car of its own length over the same 0.8 s is a wrong-way driver
    def car(t: float) -> tuple[float, ...] | None:
        return _box(1, 500 - 180 * t, 560 - 180 * t, -180.0, t) if t < 0.8 else None

    assert incidents(run([car], 2, NO_SCALING)) == [("wrong_way", "east")]


def test_a_wrong_way_car_coming_in_over_the_frames_edge_may_grow_longer() -> None:
    # it enters at the right edge: its box grows from 20 px (cut off by the frame) to 60
    def entering(t: float) -> tuple[float, ...] | None:
        front = 980 - 150 * t
        return _box(1, front, min(front + 60, 1000), -150.0, t) if t < 1.5 else None

    assert incidents(run([entering], 3, NO_SCALING)) == [("wrong_way", "east")]


def test_a_drive_whose_own_track_is_still_on_it_is_not_taken_up_by_another() -> None:
    # track 1 drives the wrong way for 0.5 s (75 px: too short to judge) and goes on being seen
    # for a frame after track 2, right ahead of it, starts the wrong way too; track 2 is judged
    # first in each frame. Its own 0.5 s and 75 px are too short: only if it took up track 1's
    # drive (since 0 s) would it be a wrong-way driver, and track 1 was still on that drive
    first: Vehicle = lambda t: _box(1, 600 - 150 * t, 660 - 150 * t, -150.0, t) if t < 0.6 else None  # noqa: E731

    def ahead(t: float) -> tuple[float, ...] | None:
        if t < 0.5:
            return _box(2, 520, 580, 0.0, t)  # standing just ahead
        return _box(2, 520 - 150 * (t - 0.5), 580 - 150 * (t - 0.5), -150.0, t) if t < 1.0 else None

    assert incidents(run([ahead, first], 3, NO_SCALING)) == []


def test_a_drive_starts_from_a_box_one_vehicle_could_fill() -> None:
    # a blob five heights long (cars merged nose to tail) shrinks onto its front car while its
    # foot moves 125 px the wrong way in 0.8 s, both its ends too: the drive may only count from
    # when the box is one car's, and from then on it is too short
    def merged(t: float) -> tuple[float, ...] | None:
        return _box(1, 500 - 100 * t, 700 - 212 * t, -156.0, t) if t < 0.8 else None

    assert incidents(run([merged], 2, NO_SCALING)) == []


def _wrong_way_in_west(foot_y: float, height: float, start: float = 10.0) -> Vehicle:
    """A car in lane west (direction -x) driving +x at 150 px/s for 2 s from `start`."""
    return lambda t: (
        (1, 100 + 150 * (t - start), foot_y, 150.0, round(t * FPS), 60, height)
        if start <= t < start + 2
        else None
    )


def test_no_wrong_way_judgement_on_a_box_reaching_into_a_queue_in_the_lane_behind() -> None:
    # a queue stands in lane east from 0 s; a box whose foot is in lane west but whose centre
    # lies in the queued lane holds queued cars and passing ones, merging and parting
    jam = queue(10, 190, 5, 8.0, start=0.0, end=30.0)
    reaching = _wrong_way_in_west(215, 60)  # centre at y 185: in east
    assert _wrong_way([*jam, reaching]) == []
    assert _wrong_way([reaching]) == [("wrong_way", "west")]  # no queue: a wrong-way car
    # a car of lane west that does not reach that far up is judged as ever
    assert _wrong_way([*jam, _wrong_way_in_west(280, 60)]) == [("wrong_way", "west")]
    # once the queue has gone (lane east waits out `congestion_clear_s`), nobody stands there
    gone = _wrong_way_in_west(215, 60, start=32.0)
    assert _wrong_way([*jam, gone], 36) == [("wrong_way", "west")]


def _wrong_way(vehicles: list[Vehicle], seconds: float = 14) -> list[tuple[str, str]]:
    return [found for found in incidents(run(vehicles, seconds)) if found[0] == "wrong_way"]
