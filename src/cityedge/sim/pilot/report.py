"""The acceptance report: `report.json` with every figure, and a self-contained `report.html`.

The HTML has no external reference (inline CSS, inline SVG plots), so it opens offline and
can be mailed as one file. Both files are written atomically (temp file + rename).
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cityedge.sim.pilot.plots import incident_timeline, latency_histogram, sync_delay
from cityedge.sim.pilot.rollout_judge import waves_view
from cityedge.sim.pilot.runner import PilotRun

__all__ = ["report_dict", "write_html", "write_json"]


def _compression(run: PilotRun) -> dict[str, Any]:
    spec, m = run.spec, run.measurements
    acc = spec.acceptance
    cams = len(m.cameras)
    run_h = cams * spec.run_s / 3600.0
    staged = sum(len(c.truth) for c in m.cameras)
    return {
        "acceptance_test": (
            f"controlled run {acc.hours:g} h, {acc.incidents} incidents, < {acc.max_fp_rate:.0%} FP"
        ),
        "run_s": spec.run_s,
        "cameras": cams,
        "time_factor": round(acc.hours * 3600.0 / spec.run_s, 1),
        "camera_hours_run": round(run_h, 4),
        "camera_hours_acceptance": acc.hours * cams,
        "incidents_staged": staged,
        "incidents_per_camera_hour_run": round(staged / run_h, 1) if run_h else None,
        "incidents_per_camera_hour_acceptance": round(acc.incidents / (acc.hours * cams), 4),
        "outages": len({(s, e) for _n, s, e in m.outages}),
        "how": [
            f"Time: the {acc.hours:g} h controlled run is compressed into {spec.run_s:g} s of scene time per "
            "camera; scene time runs at wall-clock speed (1x), so every frame is judged in real time.",
            f"Incidents: {staged} were staged, {'far ' if staged > acc.incidents else ''}denser than the "
            "acceptance "
            "test's; recall is measured as is (Wilson 95 % interval) and applied to its incident count.",
            "False positives: false alarms are a rate in time, so the run's false alarms per camera-hour "
            "(exact Poisson 95 % interval) are projected onto the acceptance test's camera-hours and weighed "
            "against its expected true reports; that share is what the FP SLO judges.",
            "Latency, frame rate, sync delay and drain: measured, not extrapolated. Outages are scaled with "
            "the "
            "run (their count and share of time follow the network profile).",
            "Retention: the nodes' own sweep is run at the end and again with its clock moved past the "
            "retention time, rather than waiting 24 h.",
        ],
    }


def report_dict(run: PilotRun) -> dict[str, Any]:
    m, v = run.measurements, run.verdict
    return {
        "verdict": "pass" if v.passed else "fail",
        "lost": v.figures["lost"],
        "duplicates": v.figures["duplicates"],
        "slos": [s.as_dict() for s in v.slos],
        "failed": [s.name for s in v.slos if s.verdict != "pass"],
        "title": run.spec.title,
        "broker": run.broker,
        "wall_s": run.wall_s,
        "workdir": str(run.workdir),
        "control_plane": {"api": run.api_url, "dashboard": run.dashboard_url},
        "compression": _compression(run),
        "spec": _jsonable(asdict(run.spec)),
        "figures": v.figures,
        "per_node": _per_node(run),
        "cameras": [
            {
                "node": c.node,
                "camera": c.camera,
                "fps": round(c.fps, 3),
                "frames": c.frames,
                "worst_10s_window_fps": round(c.worst_window_fps, 2),
                "truth": len(c.truth),
                "thinned": c.thinned,
                "behind": c.behind,
                "frames_sent": c.frames_sent,
                "max_late_s": round(c.max_late_s, 3),
                "error": c.error,
            }
            for c in m.cameras
        ],
        "outages": [{"node": n, "start": s, "end": e, "seconds": round(e - s, 2)} for n, s, e in m.outages],
        "monitor": {"messages": m.monitor_messages, "bytes": m.monitor_bytes},
        "redeliveries_ignored": m.redeliveries,
        "rollout": _rollout(run),
        "notes": run.notes,
    }


def _rollout(run: PilotRun) -> dict[str, Any] | None:
    """The spec's rollout: each wave, its nodes' health verdicts and timings, the final state."""
    data, spec = run.measurements.rollout, run.spec.rollout
    if data is None or spec is None:
        return None
    result, start = data.get("result") or {}, data["started_at"]
    slo = next(s for s in run.verdict.slos if s.name == "rollout")
    return {
        "bundle": data["bundle"],
        "version": data["version"],
        "factory_version": data["factory_version"],
        "expect": data["expect"],
        "verdict": slo.verdict,
        "problems": slo.detail.get("problems", []),
        "status": result.get("status"),
        "reason": result.get("reason"),
        "error": data["error"],
        "published_s": None if data["published_at"] is None else round(data["published_at"] - start, 2),
        "ended_s": None if data["ended_at"] is None else round(data["ended_at"] - start, 2),
        "waves": waves_view(data),
        "final": {
            n: {
                k: (st or {}).get(k)
                for k in (
                    "committed_version",
                    "committed_slot",
                    "floor",
                    "channel",
                    "failed",
                    "workload_starts",
                )
            }
            for n, st in data["nodes"].items()
        },
        "reports": [{**r, "at_s": round(r["at"] - start, 2)} for r in data["reports"]],
        "audit": data["audit"],
    }


def _per_node(run: PilotRun) -> list[dict[str, Any]]:
    m, v = run.measurements, run.verdict
    out = []
    for node in m.nodes:
        cams = [c for c in m.cameras if c.node == node.node]
        lat = sorted(x for c in cams for x in c.latencies_ms)
        inc = [i for i in m.incidents if i["node"] == node.node]
        delays = sorted(r.stored - r.ts for r in m.records if r.node == node.node)
        out.append(
            {
                "node": node.node,
                "cameras": len(cams),
                "fps": round(sum(c.fps for c in cams), 2),
                "latency_p99_ms": round(lat[int(0.99 * (len(lat) - 1))], 1) if lat else None,
                "incidents_truth": sum(len(c.truth) for c in cams),
                "incidents_reported": len(inc),
                "sync_p50_s": round(delays[len(delays) // 2], 3) if delays else None,
                "link": asdict(run.spec.link(int(node.node.rsplit("-", 1)[1]))),
                **v.figures["ledger"].get(node.node, {}),
                "retention_segments": node.retention.get("segments"),
                "precision": _precision(run, node.node),
            }
        )
    return out


def _precision(run: PilotRun, node: str) -> float | None:
    from cityedge.sim.pilot.incidents import match_incidents

    m = run.measurements
    tp = found = 0
    for cam in (c for c in m.cameras if c.node == node):
        mine = [i for i in m.incidents if i["node"] == node and i["camera"] == cam.camera]
        tp, found = tp + len(match_incidents(cam.truth, mine)), found + len(mine)
    return round(tp / found, 4) if found else None


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda o: dict(o) if hasattr(o, "items") else str(o)))


def _atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(run: PilotRun, path: Path) -> dict[str, Any]:
    data = report_dict(run)
    _atomic(path, json.dumps(data, indent=2, default=str) + "\n")
    return data


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222}
h1{margin-bottom:4px} .pass{color:#1a7f37} .fail{color:#c62828}
.banner{font-size:22px;font-weight:700;padding:10px 14px;border-radius:6px;margin:12px 0}
.banner.pass{background:#e6f4ea} .banner.fail{background:#fdecea}
table{border-collapse:collapse;width:100%;margin:10px 0 18px} th,td{border:1px solid #ddd;padding:5px 7px;
text-align:left;vertical-align:top} th{background:#f5f5f5} td.method{font-size:12px;color:#555}
figure{margin:14px 0;border:1px solid #eee;padding:6px} figcaption{font-weight:600;margin-bottom:4px}
svg{max-width:100%;height:auto} ul{margin-top:4px} code{background:#f3f3f3;padding:1px 3px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _slo_rows(data: dict[str, Any]) -> str:
    rows = []
    for s in data["slos"]:
        measured = "-" if s["measured"] is None else f"{s['measured']:g}"
        rows.append(
            f"<tr class='{s['verdict']}'><td>{_e(s['name'])}</td><td>{_e(s['comparison'])} {s['target']:g} "
            f"{_e(s['unit'])}</td><td>{measured} {_e(s['unit'])}</td><td class='{s['verdict']}'>"
            f"<b>{s['verdict'].upper()}</b>{'<br>' + _e(s['shortfall']) if s['shortfall'] else ''}</td>"
            f"<td class='method'>{_e(s['method'])}</td></tr>"
        )
    return "".join(rows)


def _node_rows(data: dict[str, Any]) -> str:
    keys = [
        "node",
        "cameras",
        "fps",
        "latency_p99_ms",
        "incidents_truth",
        "incidents_reported",
        "precision",
        "sync_p50_s",
        "committed",
        "stored",
        "missing",
        "duplicated",
        "retention_segments",
    ]
    head = "".join(f"<th>{_e(k)}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(n.get(k, '-'))}</td>" for k in keys) + "</tr>" for n in data["per_node"]
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _rollout_html(r: dict[str, Any] | None) -> str:
    if r is None:
        return ""
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "wave",
            "channel",
            "started (s)",
            "healthy (s)",
            "node",
            "health",
            "reason",
            "reported (s)",
            "final version",
            "slot",
        )
    )
    rows = []
    for w in r["waves"]:
        for i, n in enumerate(w["nodes"]):
            wave = (
                (
                    f"<td rowspan='{len(w['nodes'])}'>{w['index']}</td><td rowspan='{len(w['nodes'])}'>"
                    f"{_e(w['channel'])}</td><td rowspan='{len(w['nodes'])}'>{_e(w['started_s'] or '-')}</td>"
                    f"<td rowspan='{len(w['nodes'])}'>{_e(w['healthy_s'] or '-')}</td>"
                )
                if i == 0
                else ""
            )
            ok = {"committed": "pass", "not started": ""}.get(n["health"], "fail")
            why = ": ".join(x for x in (n["reason"], n["detail"]) if x)
            rows.append(
                f"<tr>{wave}<td>{_e(n['node'])}</td><td class='{ok}'>{_e(n['health'])}</td>"
                f"<td>{_e(why)}</td><td>{_e(n['reported_s'] or '-')}</td>"
                f"<td>{_e(n['final_version'])}</td><td>{_e(n['final_slot'])}</td></tr>"
            )
    problems = "".join(f"<li>{_e(p)}</li>" for p in r["problems"]) or "<li>none</li>"
    return (
        f"<h2>Rollout</h2><p id='rollout' class='{r['verdict']}'>bundle <code>{_e(r['bundle'])}</code> "
        f"({_e(r['version'])}, nodes ran {_e(r['factory_version'])}) published at {_e(r['published_s'])} s; "
        f"ended <b>{_e(r['status'])}</b> at {_e(r['ended_s'])} s {_e(r['reason'] or '')}; expected "
        f"<b>{_e(r['expect'])}</b>: <b>{r['verdict'].upper()}</b></p>"
        f"<table id='rollout-waves'><tr>{head}</tr>{''.join(rows)}</table><p>Problems:</p><ul>{problems}</ul>"
    )


def _plot(pid: str, title: str, svg_points: tuple[str, int]) -> str:
    svg, points = svg_points
    return f"<figure id='{pid}' data-points='{points}'><figcaption>{_e(title)}</figcaption>{svg}</figure>"


def write_html(run: PilotRun, path: Path, data: dict[str, Any] | None = None) -> Path:
    data = data or report_dict(run)
    m, spec = run.measurements, run.spec
    comp = data["compression"]
    plots = "".join(
        [
            _plot(
                "plot-latency",
                "Frame-to-decision latency, every frame",
                latency_histogram(m, spec.latency.target_ms),
            ),
            _plot(
                "plot-sync",
                "Cloud sync delay over time (outages shaded red, drains orange)",
                sync_delay(m, data["figures"]["drains"], spec.cloud_sync.target_s),
            ),
            _plot(
                "plot-incidents",
                "Incidents: ground truth (bars) and what the nodes reported (markers)",
                incident_timeline(m),
            ),
        ]
    )
    dash = _e(run.dashboard_url) if run.dashboard_url else "not started"
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>cityedge pilot: {_e(spec.title)}</title><style>{_CSS}</style></head><body>
<h1>{_e(spec.title)}</h1>
<div>district pilot, {len(m.nodes)} nodes x {spec.cameras_per_node} cameras,
network <code>{_e(spec.network.profile)}</code>,
broker <code>{_e(run.broker)}</code>, wall time {run.wall_s:g} s</div>
<div id="verdict" class="banner {data["verdict"]}">Verdict: {data["verdict"].upper()}
{"" if not data["failed"] else " - failed: " + _e(", ".join(data["failed"]))}</div>
<h2>SLOs</h2><table id="slos">
<tr><th>SLO</th><th>target</th><th>measured</th><th>verdict</th><th>how it was measured</th></tr>
{_slo_rows(data)}</table>
<h2>What was compressed, and how each figure was extrapolated</h2>
<p>Acceptance test: {_e(comp["acceptance_test"])}; this run: {comp["run_s"]:g} s x {comp["cameras"]} cameras
({comp["camera_hours_run"]} camera-hours, time factor {comp["time_factor"]:g}),
{comp["incidents_staged"]} incidents staged,
{comp["outages"]} outage(s).</p><ul>{"".join(f"<li>{_e(h)}</li>" for h in comp["how"])}</ul>
<h2>Plots</h2>{plots}
<h2>Per node</h2>{_node_rows(data)}
{_rollout_html(data.get("rollout"))}
<h2>Control plane</h2><p>API: <code>{_e(run.api_url)}</code>; dashboard: {dash}</p>
<h2>Notes</h2><ul>{"".join(f"<li>{_e(n)}</li>" for n in run.notes)}</ul>
<p>Every figure is in <code>report.json</code>; the run's files are in <code>{_e(run.workdir)}</code>.</p>
</body></html>
"""
    _atomic(path, page)
    return path
