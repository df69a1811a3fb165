"""The rollout verdict (pure): it passes only on what the spec expects, and names each problem."""

from __future__ import annotations

from typing import Any

from cityedge.protocol.spec_model import RolloutSpec
from cityedge.sim.pilot.rollout_judge import rollout_slo, waves_view

NODES = ("n1", "n2", "n3")


def _data(status: str, results: list[dict[str, str]], final: dict[str, str], starts: dict[str, int],
          reports: list[str]) -> dict[str, Any]:  # fmt: skip
    channels = ("canary", "staging", "stable")
    waves = [
        {"index": i, "channel": ch, "nodes": [NODES[i]], "started_at": 100.0 + 10 * i if results[i] else None,
         "healthy_at": 105.0 + 10 * i if results[i] else None, "results": results[i],
         "reasons": {n: ("crash" if o == "rolled_back" else "") for n, o in results[i].items()}}
        for i, ch in enumerate(channels)
    ]  # fmt: skip
    return {
        "version": "1.1.0", "factory_version": "1.0.0", "started_at": 90.0, "error": None,
        "accepts": {n: [] for n in NODES},
        "result": {"status": status, "reason": "wave 0 (canary) failed on n1" if status == "halted" else "",
                   "waves": waves},
        "nodes": {n: {"committed_version": final[n], "committed_slot": "a", "workload_starts": starts[n]}
                  for n in NODES},
        "reports": [{"node": n, "version": "1.1.0", "at": 101.0, "detail": ""} for n in reports],
    }  # fmt: skip


GOOD = _data("done", [{"n1": "committed"}, {"n2": "committed"}, {"n3": "committed"}],
             dict.fromkeys(NODES, "1.1.0"), dict.fromkeys(NODES, 2), list(NODES))  # fmt: skip
HALTED = _data("halted", [{"n1": "rolled_back"}, {}, {}], dict.fromkeys(NODES, "1.0.0"),
               {"n1": 3, "n2": 1, "n3": 1}, ["n1"])  # fmt: skip


def test_a_good_rollout_and_a_halted_one_pass_when_expected() -> None:
    assert rollout_slo(RolloutSpec(at_s=8, expect="done"), GOOD).verdict == "pass"
    halted = rollout_slo(RolloutSpec(at_s=8, bundle="bad", expect="halted"), HALTED)
    assert halted.verdict == "pass" and halted.detail["problems"] == []
    assert [n["health"] for w in waves_view(HALTED) for n in w["nodes"]] == [
        "rolled_back", "not started", "not started"
    ]  # fmt: skip
    assert waves_view(GOOD)[1]["started_s"] == 20.0


def test_each_way_a_rollout_misses_what_was_expected_is_named() -> None:
    assert (
        rollout_slo(RolloutSpec(at_s=8, expect="halted"), GOOD)
        .detail["problems"][0]
        .startswith("the rollout ended done")
    )
    leaked = _data("halted", [{"n1": "rolled_back"}, {}, {}], {"n1": "1.0.0", "n2": "1.0.0", "n3": "1.1.0"},
                   {"n1": 3, "n2": 1, "n3": 2}, ["n1", "n3"])  # fmt: skip
    problems = rollout_slo(RolloutSpec(at_s=8, expect="halted"), leaked).detail["problems"]
    assert problems == ["n3 ends on 1.1.0, not the factory 1.0.0",
                        "n3 outside the canary saw the release (a report or a restart)"]  # fmt: skip
    short = rollout_slo(RolloutSpec(at_s=8, expect="done"), HALTED)
    assert short.verdict == "fail" and short.measured == 4  # halted, and three nodes not on 1.1.0
    assert rollout_slo(RolloutSpec(at_s=8), None).verdict == "fail"
