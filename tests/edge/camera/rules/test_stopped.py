"""The stopped-vehicle rule's guards: what stands must be a vehicle that drove there, in the
lane it stands in, and a queue that is dissolving does not swallow a car that stops after it."""

from __future__ import annotations

from cityedge.edge.camera.rules import RuleConfig
from tests.support.rule_frames import T0, incidents, queue, run, sized, stops


def test_a_box_too_short_to_be_a_vehicle_is_not_a_stopped_vehicle() -> None:
    # the rim of a ghost or a shadow's edge: it "drives" and stands like a car, but is a sliver
    least = RuleConfig().for_width(1000).stopped_min_height_px
    assert incidents(run([sized(stops(1, 180, 0, 120, at=3.0), 1.5 * least, least - 2)], 20)) == []
    assert incidents(run([sized(stops(1, 180, 0, 120, at=3.0), 1.5 * least, least + 2)], 20)) == [
        ("stopped_vehicle", "east")
    ]


def test_a_strip_far_wider_than_tall_is_not_a_stopped_vehicle() -> None:
    assert incidents(run([sized(stops(1, 180, 0, 120, at=3.0), 180, 30)], 20)) == []
    assert incidents(run([sized(stops(1, 180, 0, 120, at=3.0), 100, 30)], 20)) == [
        ("stopped_vehicle", "east")
    ]


def test_a_still_blob_a_passing_car_swept_along_is_not_a_stopped_vehicle() -> None:
    # a ghost stands in lane east; a passing car merges with it for two seconds, long enough
    # to count as driving: the merged blob is far taller than the ghost that stands again after
    def swept(t: float) -> tuple[float, ...]:
        if 5 <= t < 7:  # 160 px: further than the arrival travel (`stopped_min_travel_px`)
            return (2, 510 + 80 * (t - 5), 180, 80.0, 10 + round(10 * t), 100, 70)
        return (2, 510 if t < 5 else 670, 180, 0.0, 10 + round(10 * t), 60, 30)

    assert incidents(run([swept], 40)) == []


def test_a_vehicle_judged_in_another_lane_has_stood_there_only_since() -> None:
    # a car stands 6 s in lane west just below lane east; then its box grows taller (a merge
    # with something behind it), which lifts the point its lane is judged at into lane east
    # for 8 s: neither lane saw it stand for the 10 s the rule waits
    def growing(t: float) -> tuple[float, ...]:
        if t < 3.0:
            return (1, 1000 - 120 * t, 212, -120.0, 10 + round(10 * t), 60, 30)
        return (1, 640, 212, 0.0, 10 + round(10 * t), 60, 30 if t < 9.0 else 55)

    assert incidents(run([growing], 17)) == []
    assert incidents(run([growing], 25)) == [("stopped_vehicle", "east")]


def test_a_vehicle_that_stops_while_a_queue_clears_is_reported_once_the_lane_is_free() -> None:
    # lane west's queue dissolves at 20 s; the lane says free only congestion_clear_s later.
    # A car that stops at 21 s was not part of the queue: it is reported, from when it stopped
    car = stops(50, 280, 1000 + 120 * 19, -120, at=21.0)
    arriving = lambda t: car(t) if t >= 19 else None  # noqa: E731
    outputs = run([*queue(10, 280, 5, -8.0, start=0.0, end=20.0), arriving], 45)
    assert incidents(outputs) == [("congestion", "west"), ("stopped_vehicle", "west")]
    stopped = next(i for o in outputs for i in o.incidents if i.type == "stopped_vehicle")
    assert stopped.track_id == 50


def test_the_dwell_counts_only_while_the_still_box_looks_like_a_vehicle() -> None:
    # a car stops at 3 s; from 4 s to 12 s only a sliver of it is seen (a ghost's rim, the
    # rest lost in the dark), then its whole box again: it has stood as a vehicle since about
    # 10 s (the speed probe's span), not since 3 s
    def fading(t: float) -> tuple[float, ...]:
        if t < 3.0:
            return (1, 120 * t, 180, 120.0, 10 + round(10 * t), 60, 30)
        return (1, 360, 180, 0.0, 10 + round(10 * t), 60, 8 if 4.0 <= t < 12.0 else 30)

    assert incidents(run([fading], 17)) == []
    found = [i for o in run([fading], 25) for i in o.incidents]
    assert [(i.type, i.lane) for i in found] == [("stopped_vehicle", "east")]
    assert found[0].started_at >= T0 + 9.5


def test_a_stopped_vehicle_whose_box_grew_downward_is_judged_where_its_top_puts_it() -> None:
    # a car drives in lane east (box 30 px tall, top at 160) and stops at 3 s; from 4 s its box
    # reaches down into lane west (a ghost's rim, a shadow below it merged): the top stays
    # where it drove, so the car is where its top and its height put it, in lane east
    def merged(t: float) -> tuple[float, ...]:
        if t < 3.0:
            return (1, 120 * t, 190, 120.0, 10 + round(10 * t), 60, 30)
        return (1, 360, 190 if t < 4.0 else 215, 0.0, 10 + round(10 * t), 60, 30 if t < 4.0 else 55)

    assert incidents(run([merged], 20)) == [("stopped_vehicle", "east")]


def test_a_vehicle_reported_standing_is_not_reported_again_when_judged_in_another_lane() -> None:
    # the car from the test above, but its box grows only after it was reported in lane west:
    # it still stands where it was reported, so lane east gets no second incident
    def growing(t: float) -> tuple[float, ...]:
        if t < 3.0:
            return (1, 1000 - 120 * t, 212, -120.0, 10 + round(10 * t), 60, 30)
        return (1, 640, 212, 0.0, 10 + round(10 * t), 60, 30 if t < 15.0 else 55)

    assert incidents(run([growing], 40)) == [("stopped_vehicle", "west")]


def test_a_car_seen_driving_only_merged_and_briefly_is_judged_by_the_box_it_stands_with() -> None:
    # its track was at driving speed for 1.1 s (two frames past the arrival time), merged with
    # its shadow the whole time (70 px tall); it stands as itself, 30 px tall: two frames of
    # driving do not tell how tall the car is, so the still box is not held against them
    def brief(t: float) -> tuple[float, ...]:
        if t < 1.1:
            return (1, 300 + 120 * t, 180, 120.0, 10 + round(10 * t), 100, 70)
        return (1, 432, 180, 0.0, 10 + round(10 * t), 60, 30)

    found = [i for o in run([brief], 20) for i in o.incidents]
    assert [(i.type, i.lane) for i in found] == [("stopped_vehicle", "east")]


def test_a_car_that_pulls_over_onto_the_lane_line_stands_in_the_lane_it_drove_in() -> None:
    # it drives in lane east (foot at y 190), then stands with its foot 5 px past the line into
    # lane west (y 200), its box 40 px tall: standing, it is judged 30% of its height up
    def pulls_over(t: float) -> tuple[float, ...]:
        if t < 3.0:
            return (1, 120 * t, 190, 120.0, 10 + round(10 * t), 60, 40)
        return (1, 360, 205, 0.0, 10 + round(10 * t), 60, 40)

    assert incidents(run([pulls_over], 20)) == [("stopped_vehicle", "east")]


def test_a_part_of_a_standing_car_tracked_on_its_own_is_the_same_stop() -> None:
    # a car stands in lane east from 3 s (box 80 x 40); from 5 s the tracker also follows a
    # part of it on its own (its foot 32 px from the car's, inside the car's box): one
    # vehicle, one incident, also once the lane's cooldown is over
    car = sized(stops(1, 180, 0, 120, at=3.0), 80, 40)
    part = lambda t: (2, 385, 160, 0.0, 10 + round(10 * t), 30, 28) if t >= 5.0 else None  # noqa: E731
    found = [i for o in run([car, part], 60) for i in o.incidents]
    assert [(i.type, i.lane, i.track_id) for i in found] == [("stopped_vehicle", "east", 1)]


def test_the_imprint_a_stopped_car_leaves_as_it_drives_off_is_no_new_stop() -> None:
    # the car stands from 3 s to 20 s and drives off; the motion model keeps a blob where its
    # upper part stood (it learned some of the car into the background) until 60 s
    car = sized(stops(1, 180, 0, 120, at=3.0, leaves=20.0), 80, 40)
    imprint = lambda t: (2, 385, 160, 0.0, 10 + round(10 * t), 30, 28) if 20.5 <= t < 60 else None  # noqa: E731
    assert incidents(run([car, imprint], 60)) == [("stopped_vehicle", "east")]


def test_a_stopped_car_hidden_by_passing_traffic_keeps_its_dwell_under_a_new_track() -> None:
    # the car stops at 3 s; traffic in front hides it from 6 s to 9.5 s and the tracker takes
    # it up again under a new id: it has stood since 3 s, not since 9.5 s
    first = stops(1, 180, 0, 120, at=3.0)
    hidden = lambda t: first(t) if t < 6.0 else None  # noqa: E731
    again = lambda t: (2, 360, 180, 0.0, round(10 * (t - 9.5))) if t >= 9.5 else None  # noqa: E731
    found = [i for o in run([hidden, again], 20) for i in o.incidents]
    assert [(i.type, i.lane) for i in found] == [("stopped_vehicle", "east")]
    assert found[0].started_at <= T0 + 4.0
    assert found[0].detected_at <= T0 + 14.0


def test_a_car_that_stops_where_another_stood_and_drove_off_has_its_own_dwell() -> None:
    # car 1 stands 8 s (not long enough) and drives off at 11 s; car 2 stops on the same spot
    # at 17 s: its dwell starts then, it does not inherit car 1's
    first = stops(1, 180, 0, 120, at=3.0, leaves=11.0)
    second = stops(2, 180, 360 - 120 * 17, 120, at=17.0)
    arriving = lambda t: second(t) if t >= 14.0 else None  # noqa: E731
    found = [i for o in run([first, arriving], 35) for i in o.incidents]
    assert [(i.type, i.track_id) for i in found] == [("stopped_vehicle", 2)]
    assert found[0].started_at >= T0 + 16.5
