"""SLO compliance and telemetry aggregates over stored rows: pure, time passed in.

Availability is the share of the window a node was online (from its status transitions);
latency and frame-rate compliance are the share of its heartbeats in the window whose
cameras met the latency SLO (p95) and their frame-rate target.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cityedge.protocol.errors import CityEdgeError
from cityedge.protocol.health import decode_heartbeat

__all__ = ["aggregate", "availability", "compliance"]


def availability(transitions: Sequence[Any], since: datetime, now: datetime) -> float | None:
    """Share of [since, now] spent online; None when the node has no status before `now`."""
    state, online_s = None, 0.0
    cursor = since
    for t in transitions:
        at = max(t.at, since)
        if at > now:
            break
        if state == "online":
            online_s += (at - cursor).total_seconds()
        state, cursor = t.after, max(cursor, at)
    if state is None:
        return None
    if state == "online":
        online_s += (now - cursor).total_seconds()
    total = (now - since).total_seconds()
    return round(online_s / total, 4) if total > 0 else None


def compliance(
    beats: Sequence[Any], transitions: Sequence[Any], since: datetime, now: datetime, slo_ms: float,
    fps_ratio: float,
) -> dict[str, Any]:  # fmt: skip
    judged = latency_ok = fps_judged = fps_ok = 0
    for row in beats:
        try:
            beat = decode_heartbeat(row.body)
        except CityEdgeError:
            continue
        for cam in beat.cameras.values():
            if cam.p95_ms is not None:
                judged += 1
                latency_ok += cam.p95_ms <= slo_ms
            if cam.fps_target:
                fps_judged += 1
                fps_ok += cam.fps >= fps_ratio * cam.fps_target
    return {
        "availability": availability(transitions, since, now),
        "latency_within_slo": round(latency_ok / judged, 4) if judged else None,
        "fps_within_target": round(fps_ok / fps_judged, 4) if fps_judged else None,
        "heartbeats": len(beats),
    }


def aggregate(rows: Sequence[Any], bucket_s: int, field: str | None) -> list[dict[str, Any]]:
    """Per bucket of source time: records by kind, and min/mean/max of `field` when given."""
    buckets: dict[int, dict[str, Any]] = {}
    for row in rows:
        start = int(row.ts.timestamp()) // bucket_s * bucket_s
        b = buckets.setdefault(start, {"start": start, "records": 0, "kinds": {}, "values": []})
        b["records"] += 1
        b["kinds"][row.kind] = b["kinds"].get(row.kind, 0) + 1
        value = row.body.get(field) if field else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            b["values"].append(float(value))
    out = []
    for start in sorted(buckets):
        b = buckets[start]
        values = b.pop("values")
        if field:
            b[field] = (
                {"min": min(values), "mean": round(sum(values) / len(values), 4), "max": max(values)}
                if values
                else None
            )
        b["start"] = datetime.fromtimestamp(start, tz=rows[0].ts.tzinfo).isoformat()
        out.append(b)
    return out
