"""The rollout's verdict (pure): what the control plane and the nodes reported, judged against
what the spec expects.

`expect: done`: the rollout finished, every wave's nodes reported the release committed (each
after its own health soak) and every node ends on it. `expect: halted`: the rollout stopped
in the canary wave, the canary nodes rolled back to the factory release, no later wave started,
and the other nodes never restarted their workload nor reported anything about it.
"""

from __future__ import annotations

from typing import Any

from cityedge.protocol.spec_model import RolloutSpec
from cityedge.sim.pilot.slo import SloResult

__all__ = ["rollout_slo", "waves_view"]


def _rel(at: float | None, start: float) -> float | None:
    return None if at is None else round(at - start, 2)


def waves_view(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Each wave with its nodes' health verdicts, report times and final versions (seconds into the run)."""
    result, start = data.get("result") or {}, data["started_at"]
    reports = {r["node"]: r for r in data["reports"] if r.get("version") == data["version"]}
    out = []
    for w in result.get("waves", []):
        nodes = []
        for n in w["nodes"]:
            report, state = reports.get(n, {}), data["nodes"].get(n) or {}
            nodes.append(
                {
                    "node": n,
                    "accepts": data["accepts"].get(n, []),
                    "health": w["results"].get(
                        n, "no report" if w["started_at"] is not None else "not started"
                    ),
                    "reason": w["reasons"].get(n, ""),
                    "detail": report.get("detail") or "",
                    "reported_s": _rel(report.get("at"), start),
                    "final_version": state.get("committed_version"),
                    "final_slot": state.get("committed_slot"),
                    "workload_starts": state.get("workload_starts"),
                }
            )
        out.append(
            {
                "index": w["index"],
                "channel": w["channel"],
                "started_s": _rel(w["started_at"], start),
                "healthy_s": _rel(w["healthy_at"], start),
                "nodes": nodes,
            }
        )
    return out


def _done_problems(data: dict[str, Any], result: dict[str, Any]) -> list[str]:
    problems = []
    if result.get("status") != "done":
        problems.append(
            f"the rollout ended {result.get('status')}: {result.get('reason') or 'no reason given'}"
        )
    for node, state in sorted(data["nodes"].items()):
        if (state or {}).get("committed_version") != data["version"]:
            problems.append(f"{node} runs {(state or {}).get('committed_version')}, not {data['version']}")
    return problems


def _halted_problems(data: dict[str, Any], result: dict[str, Any]) -> list[str]:
    problems = []
    waves = result.get("waves", [])
    canary = set(waves[0]["nodes"]) if waves else set()
    if result.get("status") != "halted" or not str(result.get("reason", "")).startswith("wave 0 (canary)"):
        problems.append(
            f"the rollout ended {result.get('status')} ({result.get('reason')}), not halted at the canary"
        )
    problems += [
        f"wave {w['index']} ({w['channel']}) started" for w in waves[1:] if w["started_at"] is not None
    ]
    return problems + _untouched(data, canary, waves[0]["results"] if waves else {})


def _untouched(data: dict[str, Any], canary: set[str], canary_results: dict[str, str]) -> list[str]:
    """Every node ends on the factory release; the canary rolled back; nobody else saw it."""
    problems = []
    reported = {r["node"] for r in data["reports"] if r.get("version") == data["version"]}
    for node, found in sorted(data["nodes"].items()):
        state = found or {}
        if state.get("committed_version") != data["factory_version"]:
            problems.append(
                f"{node} ends on {state.get('committed_version')}, not the factory {data['factory_version']}"
            )
        if node in canary and canary_results.get(node) != "rolled_back":
            problems.append(f"canary {node} reported {canary_results.get(node, 'nothing')}, not rolled_back")
        if node not in canary and (node in reported or state.get("workload_starts") != 1):
            problems.append(f"{node} outside the canary saw the release (a report or a restart)")
    return problems


def rollout_slo(spec: RolloutSpec, data: dict[str, Any] | None) -> SloResult:
    if data is None:
        return SloResult("rollout", 0, "<=", None, "problems", "the rollout did not run")
    result = data.get("result") or {}
    problems = [data["error"]] if data.get("error") else []
    problems += _done_problems(data, result) if spec.expect == "done" else _halted_problems(data, result)
    expected = (
        f"{data['version']} goes canary -> staging -> stable, each wave widening only after every node in it "
        "reported the release committed after its own health soak, and every node ends on it"
        if spec.expect == "done"
        else f"{data['version']} fails its health gate on the canary, which rolls back to "
        f"{data['factory_version']}; the rollout halts, no later wave starts, no other node restarts"
    )
    return SloResult(
        "rollout",
        0,
        "<=",
        len(problems),
        "problems",
        f"bundle '{spec.bundle}' published {spec.at_s:g} s into the run, expected: {expected}. Judged on the "
        "control plane's rollout, the install reports the nodes' outboxes delivered, and each node's OTA "
        "state read from its supervisor at the end",
        {
            "expect": spec.expect,
            "status": result.get("status"),
            "reason": result.get("reason"),
            "problems": problems,
            "waves": waves_view(data),
        },
    )
