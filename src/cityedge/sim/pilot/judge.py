"""Judge every SLO of the spec from the run's own measurements (pure: measurements in, verdicts out).

Latency and frame rate are measured per frame in real time and never extrapolated. Incident
figures are measured on a run that stages incidents far more densely than the acceptance
test would see them: recall carries over as measured (with its Wilson interval), while false
alarms are a rate in time, so they are projected onto the acceptance test's camera-hours
(exact Poisson interval) before the false-positive share is judged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from cityedge.protocol.spec_model import UseCaseSpec
from cityedge.sim.pilot.measure import Measurements, Record
from cityedge.sim.pilot.stats import percentile, poisson_interval, wilson_interval

__all__ = ["MATCH_SLACK_S", "SloResult", "Verdict", "judge", "match_incidents"]

MATCH_SLACK_S = 3.0  # a detection counts for a true incident from its start to its end + slack
FPS_ALLOWANCE = 0.01  # the window's two edges cost at most a frame each


@dataclass(frozen=True)
class SloResult:
    name: str
    target: float
    comparison: str  # "<=" or ">="
    measured: float | None
    unit: str
    method: str
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        if self.measured is None:
            return "fail"
        ok = {"<=": self.measured <= self.target, "<": self.measured < self.target}.get(
            self.comparison, self.measured >= self.target
        )
        return "pass" if ok else "fail"

    @property
    def shortfall(self) -> str | None:
        """By how much a failed SLO missed, in its own unit."""
        if self.verdict == "pass":
            return None
        if self.measured is None:
            return "nothing was measured"
        gap = abs(self.measured - self.target)
        word = "under" if self.comparison == ">=" else "over"
        return f"{word} the target by {gap:.4g} {self.unit}".rstrip()

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict, "shortfall": self.shortfall}


@dataclass
class Verdict:
    slos: list[SloResult]
    figures: dict[str, Any]

    @property
    def passed(self) -> bool:
        return all(s.verdict == "pass" for s in self.slos)


def match_incidents(
    truth: list[dict[str, Any]], found: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Each true incident takes the earliest unused detection of its kind and lane in its span."""
    matches, used = [], set()
    ordered = sorted(enumerate(found), key=lambda p: p[1]["detected_at"])
    for gt in sorted(truth, key=lambda g: g["start"]):
        for k, inc in ordered:
            if k in used or inc["type"] != gt["type"] or inc["lane"] != gt["lane"]:
                continue
            if gt["start"] - MATCH_SLACK_S <= inc["detected_at"] <= gt["end"] + MATCH_SLACK_S:
                matches.append((gt, inc))
                used.add(k)
                break
    return matches


def _latency(spec: UseCaseSpec, m: Measurements) -> SloResult:
    values = [x for c in m.cameras for x in c.latencies_ms]
    q = spec.latency.percentile
    detail = {f"p{p:g}_ms": _round(percentile(values, p)) for p in (50, 95, 99)}
    detail |= {"max_ms": _round(max(values, default=None)), "frames": len(values)}
    return SloResult(
        "latency",
        spec.latency.target_ms,
        "<=",
        _round(percentile(values, q)),
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
        _round(measured, 2),
        "fps",
        f"frames judged per second by each node ({spec.cameras_per_node} cameras), counted by capture time "
        f"over the steady window of the run; the slowest node counts; {FPS_ALLOWANCE:.0%} allowance for "
        f"the window's edges (nominal {spec.throughput_fps:g} fps)",
        {
            "per_node_fps": {k: round(v, 2) for k, v in per_node.items()},
            "per_camera_fps": {f"{c.node}/{c.camera}": round(c.fps, 2) for c in m.cameras},
            "worst_10s_window_fps": _round(min((c.worst_window_fps for c in m.cameras), default=None), 2),
        },
    )


_LANE_ORDER = ("west_2", "west_1", "east_1", "east_2")  # far side to near side, as the scene draws them
PROVOKED_BEFORE_S, PROVOKED_AFTER_S = 10.0, 30.0


def _provoked(false_report: dict[str, Any], truth: list[dict[str, Any]]) -> bool:
    """A false report on the same or a neighbouring lane while a true incident is under way."""

    def near(a: str, b: str) -> bool:
        if a not in _LANE_ORDER or b not in _LANE_ORDER:
            return a == b
        return abs(_LANE_ORDER.index(a) - _LANE_ORDER.index(b)) <= 1

    t = false_report["detected_at"]
    return any(
        near(false_report["lane"], gt["lane"])
        and gt["start"] - PROVOKED_BEFORE_S <= t <= gt["end"] + PROVOKED_AFTER_S
        for gt in truth
    )


def _tally(m: Measurements) -> dict[str, Any]:
    t: dict[str, Any] = {"truth": 0, "found": 0, "tp": 0, "provoked": 0, "background": 0, "by_kind": {}}
    for cam in m.cameras:
        mine = [i for i in m.incidents if i["node"] == cam.node and i["camera"] == cam.camera]
        matched = match_incidents(cam.truth, mine)
        hits = {id(inc) for _gt, inc in matched}
        false = [i for i in mine if id(i) not in hits]
        provoked = sum(_provoked(f, cam.truth) for f in false)
        t["truth"] += len(cam.truth)
        t["found"] += len(mine)
        t["tp"] += len(matched)
        t["provoked"] += provoked
        t["background"] += len(false) - provoked
        for key, items in (("truth", cam.truth), ("reported", mine), ("matched", [g for g, _ in matched])):
            for item in items:
                t["by_kind"].setdefault(item["type"], {"truth": 0, "reported": 0, "matched": 0})[key] += 1
    return t


def _projection(spec: UseCaseSpec, m: Measurements, t: dict[str, Any]) -> dict[str, Any]:
    """False alarms expected in the acceptance test: background ones scale with camera-hours,
    provoked ones with the number of incidents; each with its exact Poisson 95 % interval."""
    acc = spec.acceptance
    hours = len(m.cameras) * (m.ended_at - m.started_at) / 3600.0
    acceptance_hours = acc.hours * len(m.cameras)
    bg = [t["background"], *poisson_interval(t["background"])]
    pr = [t["provoked"], *poisson_interval(t["provoked"])]
    per_hour = [x / hours if hours else 0.0 for x in bg]
    per_incident = [x / t["truth"] if t["truth"] else 0.0 for x in pr]
    projected = [
        h * acceptance_hours + i * acc.incidents for h, i in zip(per_hour, per_incident, strict=True)
    ]
    recall = t["tp"] / t["truth"] if t["truth"] else 0.0
    return {
        "camera_hours_run": round(hours, 4),
        "camera_hours_acceptance": acceptance_hours,
        "background_per_camera_hour": [round(x, 3) for x in per_hour],
        "provoked_per_incident": [round(x, 4) for x in per_incident],
        "projected_false_alarms_acceptance": [round(x, 2) for x in projected],
        "expected_true_reports_acceptance": round(recall * acc.incidents, 2),
        "share": [_share(x, recall * acc.incidents) for x in projected],
    }


def _incidents(spec: UseCaseSpec, m: Measurements) -> tuple[list[SloResult], dict[str, Any]]:
    t = _tally(m)
    acc, p = spec.acceptance, _projection(spec, m, t)
    recall = t["tp"] / t["truth"] if t["truth"] else None
    precision = _round(t["tp"] / t["found"] if t["found"] else None, 4)
    precision_ci = [round(x, 4) for x in wilson_interval(t["tp"], t["found"])]
    recall_ci = [round(x, 4) for x in wilson_interval(t["tp"], t["truth"])]
    fp = t["found"] - t["tp"]
    share, low, high = p.pop("share")
    figures = {
        "ground_truth": t["truth"],
        "reported": t["found"],
        "true_positives": t["tp"],
        "false_positives": fp,
        "false_provoked": t["provoked"],
        "false_background": t["background"],
        "by_kind": t["by_kind"],
        "precision": precision,
        "precision_95ci": precision_ci,
        "recall_95ci": recall_ci,
        **p,
        "false_positive_share_95ci": [round(low, 4), round(high, 4)],
    }
    results = [
        SloResult(
            "incidents_detected",
            acc.incidents,
            ">=",
            t["tp"],
            "incidents",
            "staged incidents the nodes detected and the cloud stored, matched to ground truth by kind, "
            f"lane and time (detection inside the incident's span + {MATCH_SLACK_S:g} s)",
            {"staged": t["truth"], "reported": t["found"], "by_kind": t["by_kind"]},
        ),
        SloResult(
            "recall",
            acc.min_recall,
            ">=",
            _round(recall, 4),
            "",
            f"matched / staged, measured as is (95 % Wilson interval {recall_ci}); it carries over to the "
            f"acceptance test: {p['expected_true_reports_acceptance']} of its {acc.incidents} incidents "
            "expected",
            {"wilson_95ci": recall_ci},
        ),
        SloResult(
            "false_positive_rate",
            acc.max_fp_rate,
            "<",
            _round(share, 4),
            "",
            "false reports / all reports, projected onto the acceptance test "
            f"({p['camera_hours_acceptance']:g} "
            f"camera-hours, {acc.incidents} incidents): {t['background']} background false reports in "
            f"{p['camera_hours_run']:g} camera-hours scale with time, {t['provoked']} provoked ones (same or "
            f"next lane, {PROVOKED_BEFORE_S:g} s before to {PROVOKED_AFTER_S:g} s after a true incident) "
            "scale "
            f"with incidents; 95 % interval [{low:.3g}, {high:.3g}] from exact Poisson intervals; "
            f"in-run precision {precision} (Wilson 95 % {precision_ci})",
            {"interval_95": [round(low, 4), round(high, 4)], **figures},
        ),
    ]
    return results, figures


def _share(false_alarms: float, true_reports: float) -> float:
    total = false_alarms + true_reports
    return false_alarms / total if total else 0.0


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
        return any(d["node"] == r.node and d["start"] <= r.ts <= d["drained_at"] for d in drains)

    calm = [r.stored - r.ts for r in m.records if not affected(r)]
    q, slo = spec.cloud_sync.percentile, spec.cloud_sync
    detail = {f"p{p:g}_s": _round(percentile(calm, p), 4) for p in (50, 95, 99)}
    detail |= {"records": len(calm), "excluded_outage_and_drain": len(m.records) - len(calm)}
    worst = max((d["drain_s"] for d in drains), default=0.0)
    return [
        SloResult(
            "cloud_sync",
            slo.target_s,
            "<=",
            _round(percentile(calm, q), 4),
            "s",
            f"p{q:g} of source timestamp to stored in the cloud, over every record made while its node's "
            "link was up and no outage backlog was draining (outages are judged by the drain SLO)",
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
    incident_slos, incident_figures = _incidents(spec, m)
    count: Callable[[str, int, str], SloResult] = lambda name, value, method: SloResult(  # noqa: E731
        name, 0, "<=", value, "records", method, {"per_node": ledger, "redeliveries_ignored": m.redeliveries}
    )
    slos = [
        _latency(spec, m),
        _throughput(spec, m),
        *incident_slos,
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
    figures = {
        "lost": lost,
        "duplicates": dup,
        "ledger": ledger,
        "incidents": incident_figures,
        "drains": drains,
    }
    return Verdict(slos, figures)


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)
