"""The report's plots as inline SVG (matplotlib, Agg): latency, sync delay with outages, incidents vs truth.

Each function returns (svg text, number of data points drawn), so the report can say when a
plot is empty instead of drawing a blank frame.
"""

from __future__ import annotations

import io
from typing import Any

from cityedge.sim.pilot.incidents import match_incidents
from cityedge.sim.pilot.measure import Measurements

__all__ = ["incident_timeline", "latency_histogram", "sync_delay"]

_KIND_COLOURS = {"stopped_vehicle": "#1f77b4", "wrong_way": "#d62728", "congestion": "#ff7f0e"}


def _figure(width: float, height: float) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.index("<svg") :]


def latency_histogram(m: Measurements, target_ms: float) -> tuple[str, int]:
    fig = _figure(7.5, 3.2)
    ax = fig.add_subplot()
    nodes = sorted({c.node for c in m.cameras})
    values = {n: [x for c in m.cameras if c.node == n for x in c.latencies_ms] for n in nodes}
    top = max([target_ms * 1.1] + [max(v) for v in values.values() if v])
    bins = [top * i / 60 for i in range(61)]
    for node in nodes:
        ax.hist(values[node], bins=bins, alpha=0.55, label=f"{node} ({len(values[node])} frames)")
    ax.axvline(target_ms, color="black", linestyle="--", label=f"target {target_ms:g} ms")
    ax.set_xlabel("capture to decision (ms)")
    ax.set_ylabel("frames")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    return _svg(fig), sum(len(v) for v in values.values())


def sync_delay(m: Measurements, drains: list[dict[str, Any]], target_s: float) -> tuple[str, int]:
    fig = _figure(7.5, 3.4)
    ax = fig.add_subplot()
    t0 = m.started_at
    for i, (start, end) in enumerate(sorted({(s, e) for _n, s, e in m.outages})):
        ax.axvspan(start - t0, end - t0, color="#d62728", alpha=0.18, label="link outage" if i == 0 else None)
    for i, d in enumerate(drains):
        ax.axvspan(
            d["end"] - t0,
            d["end"] - t0 + d["drain_s"],
            color="#ff7f0e",
            alpha=0.15,
            label="backlog draining" if i == 0 else None,
        )
    for node in sorted({r.node for r in m.records}):
        rows = [r for r in m.records if r.node == node]
        ax.scatter([r.ts - t0 for r in rows], [max(r.stored - r.ts, 1e-3) for r in rows], s=6, label=node)
    ax.axhline(target_s, color="black", linestyle="--", label=f"target {target_s:g} s")
    ax.set_yscale("log")
    ax.set_xlabel("source time (s since the cameras started)")
    ax.set_ylabel("source to stored (s)")
    ax.legend(fontsize=8, loc="upper right")
    return _svg(fig), len(m.records)


def incident_timeline(m: Measurements) -> tuple[str, int]:
    cams = sorted(m.cameras, key=lambda c: (c.node, c.camera))
    fig = _figure(8.5, 1.4 + 0.38 * max(1, len(cams)))
    ax = fig.add_subplot()
    t0, drawn = m.started_at, 0
    for row, cam in enumerate(cams):
        for gt in cam.truth:
            ax.broken_barh(
                [(gt["start"] - t0, max(gt["end"] - gt["start"], 0.5))],
                (row - 0.35, 0.7),
                color=_KIND_COLOURS.get(gt["type"], "grey"),
                alpha=0.45,
            )
            drawn += 1
        found = [i for i in m.incidents if i["node"] == cam.node and i["camera"] == cam.camera]
        hits = {id(inc) for _gt, inc in match_incidents(cam.truth, found)}
        for inc in found:
            ok = id(inc) in hits
            ax.plot(
                inc["detected_at"] - t0,
                row,
                marker="o" if ok else "X",
                color="#2ca02c" if ok else "#d62728",
                markersize=7 if ok else 9,
                markeredgecolor="black",
            )
            drawn += 1
    ax.set_yticks(range(len(cams)), [f"{c.node}/{c.camera}" for c in cams], fontsize=8)
    ax.set_xlim(0, m.ended_at - t0)
    ax.set_xlabel("time since the cameras started (s)")
    handles = [_patch(colour, kind) for kind, colour in _KIND_COLOURS.items()]
    handles += [_marker("o", "#2ca02c", "detected (true)"), _marker("X", "#d62728", "detected (false)")]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _svg(fig), drawn


def _patch(colour: str, label: str) -> Any:
    from matplotlib.patches import Patch

    return Patch(color=colour, alpha=0.45, label=f"truth: {label}")


def _marker(marker: str, colour: str, label: str) -> Any:
    from matplotlib.lines import Line2D

    return Line2D([], [], marker=marker, color=colour, linestyle="", markeredgecolor="black", label=label)
