"""Judge every SLO of the spec from the run's own measurements (pure: measurements in, verdicts out).

Latency and frame rate are measured per frame in real time and never extrapolated. Incident
figures are measured on a run that stages incidents far more densely than the acceptance
test would see them: recall carries over as measured (with its Wilson interval), while false
alarms are projected onto the acceptance test first (`incidents.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cityedge.protocol.spec_model import UseCaseSpec
from cityedge.sim.pilot.incidents import MATCH_SLACK_S, incident_slos, match_incidents
from cityedge.sim.pilot.measure import Measurements, Record
from cityedge.sim.pilot.rollout_judge import rollout_slo
from cityedge.sim.pilot.slo import SloResult, rounded
from cityedge.sim.pilot.stats import percentile

__all__ = ["MATCH_SLACK_S", "SloResult", "Verdict", "judge", "match_incidents"]

FPS_ALLOWANCE = 0.01  # the window's two edges cost at most a frame each


@dataclass
class Verdict:
    slos: list[SloResult]
    figures: dict[str, Any]

    @property
    def passed(self) -> bool:
        return all(s.verdict == "pass" for s in self.slos)


def _latency(spec: UseCaseSpec, m: Measurements) -> SloResult:
    values = [x for c in m.cameras for x in c.latencies_ms]
    q = spec.latency.percentile
    detail = {f"p{p:g}_ms": rounded(percentile(values, p)) for p in (50, 95, 99)}
    detail |= {"max_ms": rounded(max(values, default=None)), "frames": len(values)}
    return SloResult(
        "latency",
        spec.latency.target_ms,
        "<=",
        rounded(percentile(values, q)),
        "ms",
        f"p{q:g} of capture-to-decision time over every frame every camera judged in the run, "
        "measured per frame in real time on the node (never extrapolated)",
        detail,
    )


def _throughput(spec: UseCaseSpec, m: Measurements) -> SloResult:
    per_node: dict[str, float] = {}
    for c in m.cameras:
        per_node[c.node] = per_node.get(c.node, 0.0) + c.fps
    measured = min(per_node.values(), default=None)
    return SloResult(
        "throughput",
        round(spec.throughput_fps * (1 - FPS_ALLOWANCE), 2),
        ">=",
        rounded(measured, 2),
        "fps",
        f"frames judged per second by each node ({spec.cameras_per_node} cameras), counted by capture time "
        f"over the steady window of the run; the slowest node counts; {FPS_ALLOWANCE:.0%} allowance for "
        f"the window's edges (nominal {spec.throughput_fps:g} fps)",
        {
            "per_node_fps": {k: round(v, 2) for k, v in per_node.items()},
            "per_camera_fps": {f"{c.node}/{c.camera}": round(c.fps, 2) for c in m.cameras},
            "worst_10s_window_fps": rounded(min((c.worst_window_fps for c in m.cameras), default=None), 2),
        },
    )


def _drains(m: Measurements) -> list[dict[str, Any]]:
    """For each outage: how long after the link came back the last record made before it was stored."""
    out = []
    for node, start, end in m.outages:
        backlog = [r for r in m.records if r.node == node and r.ts <= end and r.stored >= start]
        drained = max((r.stored for r in backlog), default=end)
        out.append(
            {
                "node": node,
                "start": start,
                "end": end,
                "drain_s": round(max(0.0, drained - end), 3),
                "backlog": len(backlog),
                "drained_at": drained,
            }
        )
    return out


def _sync(spec: UseCaseSpec, m: Measurements, drains: list[dict[str, Any]]) -> list[SloResult]:
    def affected(r: Record) -> bool:
        # not yet stored when the link went down (queued or in flight), or made before the backlog drained
        return any(d["node"] == r.node and r.stored >= d["start"] and r.ts <= d["drained_at"] for d in drains)

    calm = [r.stored - r.ts for r in m.records if not affected(r)]
    q, slo = spec.cloud_sync.percentile, spec.cloud_sync
    detail = {f"p{p:g}_s": rounded(percentile(calm, p), 4) for p in (50, 95, 99)}
    detail |= {"records": len(calm), "excluded_outage_and_drain": len(m.records) - len(calm)}
    worst = max((d["drain_s"] for d in drains), default=0.0)
    return [
        SloResult(
            "cloud_sync",
            slo.target_s,
            "<=",
            rounded(percentile(calm, q), 4),
            "s",
            f"p{q:g} of source timestamp to stored in the cloud, leaving out each record an outage caught "
            "(not yet stored when the link went down, or made before its backlog drained): those are "
            "judged by the drain SLO",
            detail,
        ),
        SloResult(
            "backlog_drain",
            slo.drain_s,
            "<=",
            worst,
            "s",
            "after each outage: link back to the last record made before it stored in the cloud; the "
            "slowest node and outage counts" + ("" if drains else " (no outage scheduled: nothing to drain)"),
            {"outages": [{k: v for k, v in d.items() if k != "drained_at"} for d in drains]},
        ),
    ]


def _privacy(m: Measurements) -> SloResult:
    seen = m.monitor_messages > 0
    measured = float(len(m.monitor_violations)) if seen else None
    return SloResult(
        "raw_pixels_stay_on_node",
        0,
        "<=",
        measured,
        "payloads",
        "a subscription to every topic (#) on the cloud broker inspected each payload it carried: a cityedge "
        "batch of envelopes, no image or video signature (raw or base64), no string long enough to hold "
        "a picture",
        {"messages": m.monitor_messages, "bytes": m.monitor_bytes, "violations": m.monitor_violations[:20]},
    )


def _retention(spec: UseCaseSpec, m: Measurements) -> SloResult:
    def ok(r: dict[str, Any]) -> bool:
        return (
            bool(r.get("segments"))
            and r.get("on_node") is True
            and r.get("deleted_early") == 0
            and r.get("left_after_ttl") == 0
            and r.get("files_left_after_ttl") == 0
        )

    failing = sum(not ok(n.retention) for n in m.nodes) + len(m.stray_video)
    return SloResult(
        "retention",
        0,
        "<=",
        failing,
        "nodes failing",
        f"raw video segments were written on every node and nowhere else; the node's own retention sweep "
        f"kept "
        f"them all at the end of the run and, run at end + {spec.retention.raw_s:g} s + 1 s, deleted every "
        "segment and its file (the retention time is checked by moving the sweep's clock, not by waiting)",
        {"nodes": {n.node: n.retention for n in m.nodes}, "stray_video": m.stray_video},
    )


def _ledger(m: Measurements) -> tuple[int, int, dict[str, Any]]:
    lost = dup = 0
    per: dict[str, Any] = {}
    for node in m.nodes:
        mine = [r for r in m.records if r.node == node.node]
        seqs: dict[str, set[int]] = {}
        for r in mine:
            seqs.setdefault(r.stream, set()).add(r.seq)
        missing = sum(
            n - len({s for s in seqs.get(st, set()) if 1 <= s <= n}) for st, n in node.committed.items()
        )
        node_dup = len(mine) - sum(len(v) for v in seqs.values())
        lost, dup = lost + missing + node.dropped, dup + node_dup
        per[node.node] = {
            "committed": sum(node.committed.values()),
            "stored": len(mine),
            "missing": missing,
            "dropped_by_outbox": node.dropped,
            "duplicated": node_dup,
            "pending_at_end": node.pending,
        }
    return lost, dup, per


def judge(spec: UseCaseSpec, m: Measurements) -> Verdict:
    drains = _drains(m)
    lost, dup, ledger = _ledger(m)
    incident_slos_, incident_figures = incident_slos(spec, m)
    count: Callable[[str, int, str], SloResult] = lambda name, value, method: SloResult(  # noqa: E731
        name, 0, "<=", value, "records", method, {"per_node": ledger, "redeliveries_ignored": m.redeliveries}
    )
    slos = [
        _latency(spec, m),
        _throughput(spec, m),
        *incident_slos_,
        *_sync(spec, m, drains),
        _privacy(m),
        _retention(spec, m),
        count(
            "records_lost",
            lost,
            "every sequence number each node's outbox committed, looked up in the cloud "
            "store, plus any record the outbox dropped by policy",
        ),
        count(
            "records_duplicated",
            dup,
            "records stored more than once for the same node, stream and sequence "
            "number (copies ingest received twice and ignored are counted apart, as redeliveries)",
        ),
    ]
    if spec.rollout is not None:
        slos.append(rollout_slo(spec.rollout, m.rollout))
    figures = {
        "lost": lost,
        "duplicates": dup,
        "ledger": ledger,
        "incidents": incident_figures,
        "drains": drains,
    }
    return Verdict(slos, figures)
