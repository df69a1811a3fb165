"""Rollout policy: pure. Plans waves and decides, from install reports and the time, what
happens next. Waves advance on measured health, never on the clock alone.

A rollout starts with a canary cohort (named nodes, or a percentage of the nodes that accept
the canary channel, picked by a per-release hash so each release samples a different
cohort), then widens to the staging nodes, then to the stable ones. A wave is done when each
of its nodes reported the release committed and `soak_s` has passed since the last of those
reports. It halts when failures pass the threshold: `canary_max_failures` (default 1) in the
canary wave, `failure_fraction` (default 5%) of a later wave.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Literal

import msgspec

from cityedge.protocol.errors import ReleaseError, TransitionError
from cityedge.protocol.release import CHANNELS

__all__ = ["Action", "Policy", "Rollout", "Wave", "pause", "plan", "resume", "roll_back_wave", "step"]

Status = Literal["running", "paused", "halted", "done", "rolled_back"]


class Policy(msgspec.Struct, frozen=True, kw_only=True):
    canary_nodes: tuple[str, ...] = ()
    canary_percent: float = 10.0
    soak_s: float = 300.0
    canary_max_failures: int = 1
    failure_fraction: float = 0.05


class Wave(msgspec.Struct, kw_only=True):
    index: int
    channel: str
    nodes: list[str]
    started_at: float | None = None
    healthy_at: float | None = None
    results: dict[str, str] = {}  # node -> committed | rolled_back | refused
    reasons: dict[str, str] = {}


class Action(msgspec.Struct, frozen=True):
    kind: Literal["list", "notify", "rollback"]
    channel: str = ""
    nodes: tuple[str, ...] = ()


class Rollout(msgspec.Struct, kw_only=True):
    id: str
    version: str
    policy: Policy
    waves: list[Wave]
    status: Status = "running"
    current: int = 0
    reason: str = ""
    pending: list[Action] = []  # decided outside `step` (an operator's rollback), not yet sent


def _cohort(version: str, candidates: Sequence[str], percent: float) -> list[str]:
    ranked = sorted(candidates, key=lambda n: hashlib.sha256(f"{version}/{n}".encode()).hexdigest())
    return sorted(ranked[: max(1, math.ceil(len(ranked) * percent / 100))])


def _canary(version: str, fleet: Mapping[str, Sequence[str]], policy: Policy) -> list[str]:
    unknown = [n for n in policy.canary_nodes if n not in fleet]
    if unknown:
        raise ReleaseError(f"canary nodes not in the fleet: {', '.join(unknown)}")
    refusing = [n for n in policy.canary_nodes if "canary" not in fleet[n]]
    if refusing:
        raise ReleaseError(f"canary nodes that do not accept the canary channel: {', '.join(refusing)}")
    if policy.canary_nodes:
        return sorted(policy.canary_nodes)
    accepts_canary = sorted(n for n, chans in fleet.items() if "canary" in chans)
    return _cohort(version, accepts_canary, policy.canary_percent) if accepts_canary else []


def plan(rollout_id: str, version: str, fleet: Mapping[str, Sequence[str]], policy: Policy) -> Rollout:
    """`fleet` maps each node to the channels it accepts (its install decides, not the cloud)."""
    canary = _canary(version, fleet, policy)
    rest = [n for n in sorted(fleet) if n not in canary]
    staging = [n for n in rest if "staging" in fleet[n]]
    stable = [n for n in rest if n not in staging]
    stranded = [n for n in stable if "stable" not in fleet[n]]
    if stranded:
        raise ReleaseError(f"nodes that accept none of {', '.join(CHANNELS)}: {', '.join(stranded)}")
    groups = [
        (ch, nodes) for ch, nodes in (("canary", canary), ("staging", staging), ("stable", stable)) if nodes
    ]
    if not groups:
        raise ReleaseError("the fleet is empty")
    waves = [Wave(index=i, channel=ch, nodes=nodes) for i, (ch, nodes) in enumerate(groups)]
    return Rollout(id=rollout_id, version=version, policy=policy, waves=waves)


def _over_threshold(r: Rollout, wave: Wave) -> bool:
    failed = sum(1 for o in wave.results.values() if o != "committed")
    if wave.index == 0 and wave.channel == "canary":
        return failed >= r.policy.canary_max_failures
    return failed > 0 and failed / len(wave.nodes) > r.policy.failure_fraction


def step(r: Rollout, reports: Mapping[str, tuple[str, str, str]], now: float) -> list[Action]:
    """Advance `r` (in place) given the latest report per node: (version, outcome, reason)."""
    pending, r.pending = r.pending, []
    if r.status != "running":
        return pending
    wave = r.waves[r.current]
    if wave.started_at is None:
        wave.started_at = now
        return [Action("list", wave.channel), Action("notify", wave.channel, tuple(wave.nodes))]
    for node in wave.nodes:
        version, outcome, reason = reports.get(node, ("", "", ""))
        if version == r.version and outcome:
            wave.results[node], wave.reasons[node] = outcome, reason
    if _over_threshold(r, wave):
        failed = sorted(n for n, o in wave.results.items() if o != "committed")
        r.status, r.reason = "halted", f"wave {wave.index} ({wave.channel}) failed on {', '.join(failed)}"
        return []
    if len(wave.results) < len(wave.nodes):
        return []  # a wave is judged when every node reported (failures under the threshold)
    wave.healthy_at = wave.healthy_at or now
    if now - wave.healthy_at < r.policy.soak_s:
        return []
    if r.current + 1 == len(r.waves):
        r.status = "done"
        return []
    r.current += 1
    return step(r, reports, now)


def pause(r: Rollout) -> None:
    if r.status != "running":
        raise TransitionError(f"rollout {r.id} is {r.status}, not running")
    r.status = "paused"


def resume(r: Rollout) -> None:
    if r.status != "paused":
        raise TransitionError(f"rollout {r.id} is {r.status}, not paused")
    r.status = "running"


def roll_back_wave(r: Rollout, index: int) -> list[Action]:
    """Send the nodes of a started wave back to their previous release; the rollout stops."""
    if not 0 <= index < len(r.waves) or r.waves[index].started_at is None:
        raise TransitionError(f"rollout {r.id}: wave {index} has not started")
    r.status, r.reason = "rolled_back", f"wave {index} rolled back by an operator"
    r.pending.append(Action("rollback", r.waves[index].channel, tuple(r.waves[index].nodes)))
    return list(r.pending)
