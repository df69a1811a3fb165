"""Congestion's phase table: a jam must hold to turn the lane congested, short lapses while a
queue forms are forgiven, and a congested lane clears only after it stayed free."""

from __future__ import annotations

import pytest

from cityedge.edge.camera.rules import RuleConfig
from cityedge.edge.camera.rules.congestion import TRANSITIONS, CongestionWatch, Phase, Signal
from cityedge.protocol.errors import TransitionError

CFG = RuleConfig(
    congestion_window_s=1.0, congestion_after_s=3.0, congestion_grace_s=1.0, congestion_clear_s=2.0
)
JAM = (0.6, [0.5, 0.5, 0.5])  # occupancy, speeds (box heights/s) of three crawling vehicles
EMPTY = (0.0, [])


def _run(
    watch: CongestionWatch, plan: list[tuple[float, tuple[float, list[float]]]]
) -> list[tuple[float, bool]]:
    turns = []
    for t, (occ, speeds) in plan:
        turn = watch.step(t, occ, speeds, CFG)
        if turn is not None:
            turns.append((round(turn.at, 1), turn.congested))
    return turns


def _frames(
    t0: float, t1: float, sample: tuple[float, list[float]]
) -> list[tuple[float, tuple[float, list[float]]]]:
    return [(round(t0 + k * 0.1, 1), sample) for k in range(round((t1 - t0) / 0.1))]


def test_a_jam_turns_the_lane_congested_once_it_held_and_free_once_it_cleared() -> None:
    watch = CongestionWatch()
    turns = _run(watch, _frames(0.0, 10.0, JAM) + _frames(10.0, 20.0, EMPTY))
    assert [c for _, c in turns] == [True, False]
    on, off = turns[0][0], turns[1][0]
    assert 3.0 <= on <= 4.0  # window full (0.75 s) + after_s
    assert off >= 10.0 + CFG.congestion_clear_s
    assert watch.phase is Phase.FREE


def test_a_short_lapse_while_a_queue_forms_is_forgiven_a_long_one_restarts_the_count() -> None:
    short = _run(
        CongestionWatch(), _frames(0.0, 2.0, JAM) + _frames(2.0, 2.5, EMPTY) + _frames(2.5, 6.0, JAM)
    )
    assert short and short[0][1] and short[0][0] < 4.5
    long = _run(
        CongestionWatch(), _frames(0.0, 2.0, JAM) + _frames(2.0, 5.0, EMPTY) + _frames(5.0, 10.0, JAM)
    )
    assert long and long[0][0] >= 8.0  # counted again from when the jam came back


def test_a_clearing_lane_is_congested_again_only_when_a_queue_forms_anew() -> None:
    # the queue leaves at 10 s; from 11 s traffic drives past a car left standing: occupancy
    # above the "off" threshold and slow on average (the standing car weighs 0), but neither as
    # full nor as slow as a queue (the "on" thresholds). The lane clears after clear_s
    passing = (0.3, [0.0, 4.0])
    assert CFG.congestion_occupancy_off <= passing[0] < CFG.congestion_occupancy_on
    assert CFG.congestion_speed_on_hps < sum(passing[1]) / 2 <= CFG.congestion_speed_off_hps
    watch = CongestionWatch()
    plan = _frames(0.0, 10.0, JAM) + _frames(10.0, 11.0, EMPTY) + _frames(11.0, 20.0, passing)
    turns = _run(watch, plan)
    assert [c for _, c in turns] == [True, False]
    assert turns[1][0] <= 10.0 + CFG.congestion_window_s + CFG.congestion_clear_s
    # a queue that forms again while the lane clears makes it congested again, no new turn
    watch = CongestionWatch()
    turns = _run(watch, _frames(0.0, 10.0, JAM) + _frames(10.0, 11.5, EMPTY) + _frames(11.5, 16.0, JAM))
    assert [c for _, c in turns] == [True]
    assert watch.phase is Phase.CONGESTED


def test_the_watch_says_forming_then_congested_so_other_rules_can_hold_back() -> None:
    watch = CongestionWatch()
    _run(watch, _frames(0.0, 1.5, JAM))
    assert watch.forming and not watch.congested
    _run(watch, _frames(1.5, 5.0, JAM))
    assert watch.congested and not watch.forming


def test_every_phase_answers_the_signals_it_is_judged_on_and_nothing_else() -> None:
    judged = {Signal.JAMMED, Signal.CALM}
    for phase in Phase:
        signals = set(TRANSITIONS[phase]) - {Signal.HELD}
        assert signals == ({Signal.FREED, Signal.BUSY} if phase is Phase.CONGESTED else judged)
    watch = CongestionWatch()
    with pytest.raises(TransitionError, match="no transition from free on freed"):
        watch._go(Signal.FREED, 0.0)
