"""Incidents against ground truth: matching, false reports provoked or background, and the projection
of false alarms onto the acceptance test (pure).

Recall does not depend on how densely the run stages incidents; false alarms do. A false
report near a true incident (same or next lane, from 10 s before to 30 s after it) is
provoked and scales with the number of incidents; any other is background and scales with
camera-hours. Both are projected with exact Poisson intervals.
"""

from __future__ import annotations

from typing import Any

from cityedge.protocol.spec_model import UseCaseSpec
from cityedge.sim.pilot.measure import Measurements
from cityedge.sim.pilot.slo import SloResult, rounded
from cityedge.sim.pilot.stats import poisson_interval, wilson_interval

__all__ = ["MATCH_SLACK_S", "incident_slos", "match_incidents"]

MATCH_SLACK_S = 3.0  # a detection counts for a true incident from its start to its end + slack


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


def _share(false_alarms: float, true_reports: float) -> float:
    total = false_alarms + true_reports
    return false_alarms / total if total else 0.0


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


def incident_slos(spec: UseCaseSpec, m: Measurements) -> tuple[list[SloResult], dict[str, Any]]:
    t = _tally(m)
    acc, p = spec.acceptance, _projection(spec, m, t)
    recall = t["tp"] / t["truth"] if t["truth"] else None
    precision = rounded(t["tp"] / t["found"] if t["found"] else None, 4)
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
            rounded(recall, 4),
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
            rounded(share, 4),
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
