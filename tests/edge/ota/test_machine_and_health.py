"""The OTA state table and the health gates: pure, checked exhaustively."""

from __future__ import annotations

import pytest

from cityedge.edge.ota.health import HealthGates, Sample, judge
from cityedge.edge.ota.machine import BOOT, TABLE, State, boots_trial, next_state, table_rows
from cityedge.protocol.errors import TransitionError

EVENTS = sorted({e for _, e in TABLE})


@pytest.mark.parametrize("state", list(State))
def test_every_state_has_a_boot_row_and_nothing_else_is_allowed(state: State) -> None:
    assert state in BOOT
    for event in EVENTS:
        if (state, event) in TABLE:
            assert next_state(state, event) is TABLE[(state, event)]
        else:
            with pytest.raises(TransitionError, match=f"no transition from '{state.value}' on '{event}'"):
                next_state(state, event)


def test_a_restart_rolls_back_a_trial_and_resumes_anything_before_the_switch() -> None:
    before_switch = {State.DOWNLOADING, State.INSTALLING, State.INSTALLED}
    assert {s for s in before_switch if BOOT[s] is State.CHECKING} == before_switch
    assert BOOT[State.SWITCHED] is BOOT[State.SOAKING] is State.ROLLING_BACK
    assert [s for s in State if boots_trial(s)] == [State.SWITCHED, State.SOAKING]
    assert not any(boots_trial(BOOT[s]) for s in State), "a restart never boots an uncommitted slot"
    assert ("soaking", "healthy", "committed") in table_rows()


GATES = HealthGates(soak_s=10, settle_s=5, min_fps=8, require_uplink=True)


def _good(at: float) -> Sample:
    return Sample(at, True, fps={"cam-1": 10.0, "cam-2": 9.0}, uplink=True)


@pytest.mark.parametrize(
    ("samples", "now", "verdict"),
    [
        ([_good(1), _good(6)], 7, ("wait", "")),
        ([_good(6), _good(15)], 15, ("pass", "")),
        ([_good(1)], 100, ("wait", "")),  # nothing after the settle time: no evidence yet
        ([Sample(1, True, fps={"cam-1": 1.0}, uplink=False), _good(6)], 16, ("pass", "")),  # starting up
        ([_good(6), Sample(7, False, exit_code=3)], 8, ("fail", "crash")),
        ([Sample(2, False, exit_code=1)], 2, ("fail", "crash")),
        (
            [_good(6), Sample(7, True, fps={"cam-1": 10.0, "cam-2": 2.5}, uplink=True)],
            8,
            ("fail", "camera_fps"),
        ),
        ([Sample(6, True, fps={}, uplink=True)], 8, ("fail", "camera_fps")),
        ([Sample(6, True, fps={"cam-1": 10.0}, uplink=False)], 8, ("fail", "uplink")),
        ([Sample(6, True, fps=None)], 8, ("fail", "health_unreachable")),
    ],
)
def test_health_gates(samples: list[Sample], now: float, verdict: tuple[str, str]) -> None:
    v = judge(GATES, 0.0, samples, now)
    assert (v.result, v.reason) == verdict


def test_a_slow_camera_is_named_in_the_reason() -> None:
    v = judge(GATES, 0.0, [Sample(6, True, fps={"cam-7": 3.0, "cam-1": 9.0}, uplink=True)], 6)
    assert v.detail == "camera cam-7 at 3.0 fps, expected >= 8"


def test_the_docs_show_the_table_the_code_runs() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[3] / "docs" / "ota.md").read_text()
    for state, event, nxt in table_rows():
        assert f"| {state} | {event} | {nxt} |" in doc, f"docs/ota.md lacks {state} --{event}--> {nxt}"
