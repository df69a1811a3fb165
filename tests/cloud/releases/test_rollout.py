"""Rollout policy: waves from the fleet's accepted channels, advance on health, halt on failures."""

from __future__ import annotations

import pytest

from cityedge.cloud.releases.rollout import Action, Policy, pause, plan, resume, roll_back_wave, step
from cityedge.protocol.errors import ReleaseError, TransitionError

FLEET = {f"n{i:02d}": ("canary", "staging", "stable") for i in range(10)} | {
    f"s{i:02d}": ("stable",) for i in range(40)
}


def _ok(nodes: list[str], version: str = "2.0.0") -> dict[str, tuple[str, str, str]]:
    return {n: (version, "committed", "") for n in nodes}


def test_a_percentage_canary_is_drawn_from_nodes_that_accept_canary_and_differs_per_release() -> None:
    a = plan("r", "2.0.0", FLEET, Policy(canary_percent=20))
    b = plan("r", "2.0.1", FLEET, Policy(canary_percent=20))
    assert [w.channel for w in a.waves] == ["canary", "staging", "stable"]
    assert len(a.waves[0].nodes) == 2 and all(n.startswith("n") for n in a.waves[0].nodes)
    assert a.waves[0].nodes != b.waves[0].nodes or a.waves[1].nodes != b.waves[1].nodes
    assert len(a.waves[2].nodes) == 40
    assert sorted(n for w in a.waves for n in w.nodes) == sorted(FLEET)


def test_named_canaries_must_exist_and_accept_the_canary_channel() -> None:
    assert plan("r", "2.0.0", FLEET, Policy(canary_nodes=("n03",))).waves[0].nodes == ["n03"]
    with pytest.raises(ReleaseError, match="not in the fleet: ghost"):
        plan("r", "2.0.0", FLEET, Policy(canary_nodes=("ghost",)))
    with pytest.raises(ReleaseError, match="do not accept the canary channel: s01"):
        plan("r", "2.0.0", FLEET, Policy(canary_nodes=("s01",)))


def test_waves_advance_only_on_healthy_reports_and_after_the_soak() -> None:
    r = plan("r", "2.0.0", FLEET, Policy(canary_nodes=("n00",), soak_s=60))
    assert step(r, {}, 0) == [Action("list", "canary"), Action("notify", "canary", ("n00",))]
    assert step(r, {}, 1000) == []  # time alone never advances a wave
    assert step(r, {"n00": ("1.9.0", "committed", "")}, 1001) == []  # an older release's report
    assert step(r, _ok(["n00"]), 1002) == [] and r.waves[0].healthy_at == 1002
    assert step(r, _ok(["n00"]), 1061) == []
    actions = step(r, _ok(["n00"]), 1062)
    assert actions[0] == Action("list", "staging") and r.current == 1
    staging = r.waves[1].nodes
    step(r, _ok(["n00", *staging]), 1100)
    actions = step(r, _ok(["n00", *staging]), 1161)
    assert actions[0] == Action("list", "stable") and r.current == 2
    everyone = _ok(sorted(FLEET))
    step(r, everyone, 1200)
    step(r, everyone, 1261)
    assert r.status == "done"


def test_one_canary_failure_halts_and_later_waves_halt_past_five_percent() -> None:
    r = plan("r", "2.0.0", FLEET, Policy(canary_nodes=("n00", "n01")))
    step(r, {}, 0)
    step(r, {"n00": ("2.0.0", "rolled_back", "crash")}, 1)
    assert (r.status, r.reason) == ("halted", "wave 0 (canary) failed on n00")
    assert step(r, _ok(list(FLEET)), 2) == []

    r = plan("r", "2.0.0", FLEET, Policy(canary_nodes=("n00",), soak_s=0))
    step(r, {}, 0)
    step(r, _ok(["n00"]), 1)
    step(r, _ok(["n00", *r.waves[1].nodes]), 2)
    assert r.current == 2 and len(r.waves[2].nodes) == 40
    stable = r.waves[2].nodes
    two_bad = _ok(stable) | {
        stable[0]: ("2.0.0", "refused", "hardware"),
        stable[1]: ("2.0.0", "rolled_back", "uplink"),
    }
    one_bad = {k: v for k, v in two_bad.items() if k != stable[1]}
    step(r, {s: one_bad[s] for s in stable[:1]}, 3)
    assert r.status == "running"  # 1 of 40 = 2.5%
    step(r, two_bad, 4)
    assert r.status == "done"  # 2 of 40 = 5%: at the threshold, not past it; the wave completes

    r = plan("r", "2.0.0", FLEET, Policy(canary_nodes=("n00",), soak_s=0))
    step(r, {}, 0)
    step(r, _ok(["n00"]), 1)
    step(r, _ok(["n00", *r.waves[1].nodes]), 2)
    three_bad = two_bad | {stable[2]: ("2.0.0", "rolled_back", "crash")}
    step(r, {s: three_bad[s] for s in stable[:3]}, 3)
    assert r.status == "halted" and r.reason.startswith("wave 2 (stable) failed on ")


def test_pause_resume_and_rolling_back_a_wave() -> None:
    r = plan("r", "2.0.0", FLEET, Policy(canary_nodes=("n00",)))
    step(r, {}, 0)
    pause(r)
    assert step(r, _ok(["n00"]), 1) == [] and r.waves[0].results == {}
    with pytest.raises(TransitionError):
        pause(r)
    resume(r)
    with pytest.raises(TransitionError):
        roll_back_wave(r, 1)
    assert roll_back_wave(r, 0) == [Action("rollback", "canary", ("n00",))]
    assert r.status == "rolled_back"
    assert step(r, {}, 2) == [Action("rollback", "canary", ("n00",))]  # sent once by the driver
    assert step(r, {}, 3) == []
