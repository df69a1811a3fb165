"""Incident rules as scenario tables: tracks in, incidents, congestion changes and counts out.

Pure and clock-free, so each scenario is a list of frames built here (10 fps) and checked
without sleeps.
"""

from __future__ import annotations

import pytest

from cityedge.edge.camera.rules import RuleConfig, RuleEngine
from cityedge.edge.camera.rules.wrong_way import HANDOVER_S
from cityedge.protocol.errors import ConfigError
from cityedge.protocol.vision import FrameTracks
from tests.support.rule_frames import (
    FPS,
    T0,
    ZONES,
    Vehicle,
    drives,
    ghost,
    incidents,
    queue,
    run,
    stops,
    track,
)

SCENARIOS = {
    "free flow in both directions is quiet": ([drives(1, 180, 0, 120), drives(2, 280, 1000, -120)], 30, []),
    "a vehicle that stops in a lane is one stopped-vehicle incident": (
        [stops(1, 180, 0, 120, at=3.0)],
        40,
        [("stopped_vehicle", "east")],
    ),
    "a vehicle that stops and drives off after the dwell is still one incident": (
        [stops(1, 180, 0, 120, at=3.0, leaves=20.0)],
        40,
        [("stopped_vehicle", "east")],
    ),
    "a short stop is no incident": ([stops(1, 180, 0, 120, at=3.0, leaves=9.0)], 30, []),
    "a still blob that never moved (a ghost, a parked car) is no incident": ([ghost(1, 180, 500)], 40, []),
    "a vehicle driving against the lane is one wrong-way incident": (
        [drives(1, 180, 1000, -150)],
        8,
        [("wrong_way", "east")],
    ),
    "against the traffic on a lane without a direction is no incident": ([drives(1, 380, 1000, -150)], 8, []),
    "stopping in a lot without a direction is still a stopped vehicle": (
        [stops(1, 380, 0, 120, at=2.0)],
        20,
        [("stopped_vehicle", "lot")],
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str) -> None:
    vehicles, seconds, expected = SCENARIOS[name]
    assert incidents(run(vehicles, seconds)) == expected


def test_a_stopped_vehicle_is_reported_after_the_dwell_threshold_from_when_it_stopped() -> None:
    (inc,) = [i for o in run([stops(1, 180, 0, 120, at=3.0)], 20) for i in o.incidents]
    assert inc.started_at == pytest.approx(T0 + 3.0, abs=0.3)
    assert inc.detected_at - inc.started_at == pytest.approx(RuleConfig().stopped_after_s, abs=0.15)
    assert inc.track_id == 1
    assert inc.position == pytest.approx((360.0, 180.0))


def test_a_stopped_vehicle_that_the_tracker_loses_and_finds_again_is_one_incident() -> None:
    before = stops(1, 180, 0, 120, at=3.0)
    after = ghost(2, 180, 360)  # an occlusion made the tracker start a new id on the same car
    outputs = run([lambda t: before(t) if t < 6 else None, lambda t: after(t) if t >= 6.5 else None], 40)
    found = [i for o in outputs for i in o.incidents]
    assert [(i.type, i.track_id) for i in found] == [("stopped_vehicle", 2)]
    assert found[0].started_at == pytest.approx(T0 + 3.0, abs=0.3)


def test_a_blob_whose_foot_jumps_back_once_is_not_wrong_way() -> None:
    # two blobs merge for a moment: the foot jumps 80 px back, then the vehicle drives on
    def merged(t: float) -> tuple[int, float, float, float]:
        x = 100 + 120 * t - (80 if 2.0 <= t < 2.5 else 0)
        return (1, x, 180, -60.0 if 2.0 <= t < 2.3 else 120.0)

    assert incidents(run([merged], 8)) == []


def test_wrong_way_waits_for_the_minimum_time_and_travel() -> None:
    (inc,) = [i for o in run([drives(1, 180, 1000, -150)], 8) for i in o.incidents]
    cfg = RuleConfig()
    assert inc.detected_at - inc.started_at >= cfg.wrong_way_min_s
    assert inc.details["travel_px"] >= cfg.wrong_way_min_travel_px
    assert inc.details["cos"] == pytest.approx(-1.0)


def test_a_queue_turns_the_lane_congested_once_and_clears() -> None:
    outputs = run(queue(10, 280, 5, -8.0, start=2.0, end=30.0), 50)
    changes = [(c.lane, c.congested) for o in outputs for c in o.congestion]
    assert changes == [("west", True), ("west", False)]
    found = [i for o in outputs for i in o.incidents]
    assert [(i.type, i.lane) for i in found] == [("congestion", "west")]  # queued vehicles are not "stopped"
    cfg = RuleConfig()
    assert found[0].detected_at - found[0].started_at == pytest.approx(cfg.congestion_after_s, abs=0.15)
    on = next(c for o in outputs for c in o.congestion if c.congested)
    assert on.occupancy >= cfg.congestion_occupancy_on
    assert on.mean_speed <= cfg.congestion_speed_on_hps


def test_a_second_queue_within_the_cooldown_changes_state_but_is_not_a_second_incident() -> None:
    first = queue(10, 280, 5, -8.0, start=0.0, end=20.0)
    second = queue(30, 280, 5, -8.0, start=40.0, end=60.0)
    outputs = run(first + second, 75)
    changes = [c.congested for o in outputs for c in o.congestion]
    assert changes == [True, False, True, False]
    assert incidents(outputs) == [("congestion", "west")]


def test_a_platoon_merged_by_its_shadows_weighs_on_the_lane_it_covers_not_where_its_foot_lies() -> None:
    # at dusk the cars of a queue in "west" and their long shadows are one blob, far wider than
    # any vehicle; its foot (the shadows' tip) lies in "lot", its centre in "west"
    def platoon(t: float) -> tuple[float, ...] | None:
        return (1, 500 - 8.0 * t, 350, -8.0, 10 + round(t * FPS), 800, 140) if t < 30 else None

    outputs = run([platoon], 50)
    assert [(c.lane, c.congested) for o in outputs for c in o.congestion] == [("west", True), ("west", False)]
    assert incidents(outputs) == [("congestion", "west")]


def test_one_still_car_is_not_congestion() -> None:
    outputs = run([ghost(1, 280, 500)], 40, RuleConfig(congestion_occupancy_on=0.01))
    assert [c for o in outputs for c in o.congestion] == []


def test_lane_counts_are_emitted_per_minute_window() -> None:
    vehicles = [drives(k, 180, -200.0 * k, 150, until=50) for k in range(1, 4)]
    outputs = run(vehicles, 61)
    counts = [c for o in outputs for c in o.counts]
    east = [c for c in counts if c.lane == "east"]
    assert [(c.window_start, c.window_end, c.count) for c in east] == [(T0, T0 + 60, 3)]
    assert east[0].mean_speed_px_s == pytest.approx(150.0)
    assert {c.count for c in counts if c.lane != "east"} == {0}


def test_unconfirmed_tracks_are_ignored() -> None:
    engine = RuleEngine(ZONES)
    for k in range(400):
        out = engine.step(
            FrameTracks("cam", k, T0 + k / FPS, [track(1, 1000 - 150 * k / FPS, 180, -150, hits=1)])
        )
        assert out.incidents == []


def test_a_frame_of_another_camera_is_refused() -> None:
    with pytest.raises(ConfigError, match="rules of camera 'cam' got a frame of camera 'other'"):
        RuleEngine(ZONES).step(FrameTracks("other", 0, T0, []))


def test_unknown_rule_options_are_refused() -> None:
    with pytest.raises(ValueError, match="stoped_after_s"):
        RuleConfig.model_validate({"stoped_after_s": 3})


def test_rules_scale_their_pixel_thresholds_with_the_frame() -> None:
    cfg = RuleConfig()
    double = cfg.scaled(2.0)
    assert double.wrong_way_min_travel_px == 2 * cfg.wrong_way_min_travel_px
    assert double.stopped_speed_px_s == 2 * cfg.stopped_speed_px_s
    assert double.congestion_speed_on_hps == cfg.congestion_speed_on_hps  # heights/s: scale-free
    assert double.stopped_after_s == cfg.stopped_after_s


def test_each_wrong_way_vehicle_is_one_incident_up_to_the_lanes_storm_limit() -> None:
    # six vehicles drive the wrong way in lane east, one every 2 s
    convoy = [drives(k, 180, 1000 + 300 * k, -150) for k in range(1, 7)]
    found = [i for o in run(convoy, 20) for i in o.incidents]
    assert [(i.type, i.track_id) for i in found] == [("wrong_way", k) for k in range(1, 7)]
    capped = [i for o in run(convoy, 20, RuleConfig(wrong_way_storm_max=2)) for i in o.incidents]
    assert [i.track_id for i in capped] == [1, 2]  # the rest of the storm is held back


def test_after_a_storm_the_next_incident_says_how_many_were_held_back() -> None:
    convoy = [drives(k, 180, 1000 + 300 * k, -150) for k in range(1, 5)]
    late = drives(9, 180, 1000 + 150 * 30, -150)  # arrives after the storm window has passed
    cfg = RuleConfig(wrong_way_storm_max=1, wrong_way_storm_window_s=10)
    found = [i for o in run([*convoy, late], 40, cfg) for i in o.incidents]
    assert [(i.track_id, i.details["held_back"]) for i in found] == [(1, 0), (9, 3)]


def test_a_far_small_vehicle_needs_less_travel_than_a_near_one() -> None:
    # a 12 px tall vehicle drives the wrong way 60 px (5 box heights), under the 90 px threshold
    def small(t: float) -> tuple[float, ...] | None:
        return (1, 1000 - 50 * t, 180, -50.0, 10 + round(t * 10), 20, 12) if t < 1.2 else None

    cfg = RuleConfig(reference_width=1000)  # no scaling: thresholds as written
    assert incidents(run([small], 3, cfg)) == [("wrong_way", "east")]
    assert incidents(run([small], 3, cfg.model_copy(update={"wrong_way_min_travel_boxes": 10.0}))) == []


def test_pixel_thresholds_follow_the_frame_width() -> None:
    half = ZONES.scaled((500, 200))
    engine = RuleEngine(half, RuleConfig())
    assert engine.config.wrong_way_min_travel_px == pytest.approx(90.0 * 500 / 640)
    assert engine.config.stopped_speed_px_s == pytest.approx(4.0 * 500 / 640)
    assert engine.config.congestion_speed_on_hps == RuleConfig().congestion_speed_on_hps
    assert RuleEngine(half, engine.config).config == engine.config  # scaled once, not twice


def test_a_ghost_whose_blob_merges_with_a_passing_car_for_a_moment_never_arrived_moving() -> None:
    # a ghost sits in lane east; for half a second a passing car merges with its blob, which
    # drags its foot 40 px along and back: it jumped, but it never drove, so it never "stopped"
    def merged(t: float) -> tuple[float, ...]:
        drag = 80 * (t - 5) if 5 <= t < 5.5 else 0.0
        return (2, 510 + drag, 180, 80.0 if 5 <= t < 5.5 else 0.0)

    assert incidents(run([merged], 60)) == []


def test_a_vehicle_lost_while_braking_and_found_standing_is_one_stopped_vehicle() -> None:
    # the tracker loses the car as it halts at x = 360 and coasts on its guess (hits frozen)
    # for half a second; a new track then finds the car standing where it was last seen
    def braking(t: float) -> tuple[float, ...] | None:
        if t < 3.0:
            return (1, 120 * t, 180, 120.0, 10 + round(10 * t))
        if t < 3.5:
            return (1, 360 + 120 * (t - 3.0), 180, 120.0, 40)  # the guess drives on
        return None

    standing = lambda t: (2, 362, 180, 0.0) if t >= 3.6 else None  # noqa: E731
    found = [i for o in run([braking, standing], 30) for i in o.incidents]
    assert [(i.type, i.track_id) for i in found] == [("stopped_vehicle", 2)]


def test_a_vehicle_that_halts_inside_a_blob_merged_with_a_passing_car_is_a_stopped_vehicle() -> None:
    # two cars side by side are one blob (one track) until the nearer one drives on: the one
    # that halted splits off as a new track standing still, and it did arrive moving
    def pair(t: float) -> tuple[float, ...] | None:
        if t < 3.0:
            return (1, 120 * t + 40, 180, 120.0, 10 + round(10 * t), 140, 60)  # the merged blob
        return (1, 400 + 150 * (t - 3.0), 180, 150.0, 40 + round(10 * t))  # the passing car

    halted = lambda t: (2, 380, 180, 0.0) if t >= 3.0 else None  # noqa: E731
    found = [i for o in run([pair, halted], 30) for i in o.incidents]
    assert [(i.type, i.track_id) for i in found] == [("stopped_vehicle", 2)]


def test_a_vehicle_cut_off_by_the_frame_edge_is_not_judged_stopped_until_it_is_in_view() -> None:
    # the east lane's cars come in at the left edge after driving for 2 s: one stands there
    # half in view (its box reaches past x = 0), the other further in, fully in view
    at_edge = stops(1, 180, -220, 120, at=2.0)  # stands with its centre at x = 20, box from -10
    in_view = stops(2, 180, 0, 120, at=2.0)  # stands at x = 240, box from 210
    assert incidents(run([at_edge], 20)) == []
    assert incidents(run([in_view], 20)) == [("stopped_vehicle", "east")]


def _fragment(tid: int, x0: float, start: float, end: float, vx: float = -150.0) -> Vehicle:
    """A wrong-way car in the east lane seen under track `tid` from `start` to `end` only."""
    return lambda t: (tid, x0 + vx * t, 180, vx, 10 + round(t * FPS)) if start <= t < end else None


def _oncoming_then(x0: float, start: float, end: float) -> Vehicle:
    """Track 2: a car driving the lane's way until it merges with the wrong-way car, whose
    track id it then carries (the tracker kept the id of the blob, not of the car)."""
    return lambda t: (
        (2, 500 + 150 * t, 180, 150.0, 10 + round(t * FPS)) if t < 0.6 else _fragment(2, x0, start, end)(t)
    )


def test_a_wrong_way_drive_carried_on_by_another_track_is_one_incident() -> None:
    # a wrong-way car meets oncoming cars: its blob merges with theirs and comes out under
    # another id. Neither piece alone goes far or long enough (75 and 60 px, 0.5 and 0.4 s).
    pieces = [_fragment(1, 900, 0.0, 0.5), _oncoming_then(900, 0.7, 1.1)]
    found = [i for o in run(pieces, 3) for i in o.incidents]
    assert [(i.type, i.lane, i.track_id) for i in found] == [("wrong_way", "east", 2)]
    assert found[0].started_at == T0  # the drive began with the first piece
    # the second piece appears behind where the drive was lost: another vehicle, no hand-over
    assert incidents(run([_fragment(1, 900, 0.0, 0.5), _oncoming_then(1060, 0.7, 1.1)], 3)) == []
    # hidden for 1.5 s behind a truck it meets, the car comes out where it could have driven to
    assert incidents(run([_fragment(1, 900, 0.0, 0.5), _oncoming_then(900, 2.0, 2.4)], 3)) == [
        ("wrong_way", "east")
    ]
    # ... and one that appears too late (lost over HANDOVER_S ago) is not carried on either
    late = 0.5 + HANDOVER_S + 0.3
    pieces = [_fragment(1, 900, 0.0, 0.5), _oncoming_then(900, late, late + 0.4)]
    assert incidents(run(pieces, late + 1)) == []


def test_a_blob_growing_at_its_front_is_not_driving_the_wrong_way() -> None:
    # a vehicle merging into a still blob stretches it the wrong way: its foot moves 200 px
    # against the lane, its rear edge stays where it was
    def growing(t: float) -> tuple[float, ...]:
        x1, x2 = 900 - 200 * t, 960
        return (1, (x1 + x2) / 2, 180, -100.0, 10 + round(t * FPS), x2 - x1, 30)

    assert incidents(run([growing], 2)) == []


def test_a_coasting_track_is_no_evidence_of_driving_the_wrong_way() -> None:
    # the tracker lost the vehicle (hits stop growing) and moves its box along on a guess
    assert incidents(run([lambda t: (1, 900 - 150 * t, 180, -150.0, 10)], 3)) == []
    assert incidents(run([_fragment(1, 900, 0.0, 3.0)], 3)) == [("wrong_way", "east")]
