"""What the API and the dashboard show of a node: its stored status row, its heartbeat and its
inventory row, summarised. Pure: plain rows and `now` in, dictionaries out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from cityedge.protocol.errors import CityEdgeError
from cityedge.protocol.health import Heartbeat, decode_heartbeat

__all__ = ["HEALTH_ORDER", "coordinates", "node_summary", "sort_nodes"]

HEALTH_ORDER: Final = {"offline": 0, "stale": 1, "unknown": 2, "online": 3}


def coordinates(attributes: Mapping[str, str]) -> tuple[float, float] | None:
    """(lat, lon) from the inventory's extra columns (`lat`/`lon`, `latitude`/`longitude`)."""
    for lat_key, lon_key in (("lat", "lon"), ("latitude", "longitude"), ("lat", "lng")):
        if lat_key in attributes and lon_key in attributes:
            try:
                lat, lon = float(attributes[lat_key]), float(attributes[lon_key])
            except ValueError:
                return None
            if -90 <= lat <= 90 and -180 <= lon <= 180:
                return lat, lon
    return None


def _beat(body: Mapping[str, Any] | None) -> Heartbeat | None:
    if body is None:
        return None
    try:
        return decode_heartbeat(dict(body))
    except CityEdgeError:
        return None


def node_summary(
    node: str, row: Any | None, attributes: Mapping[str, str] | None, now: datetime, alerts: int = 0
) -> dict[str, Any]:
    """One line of the fleet table. `row` is a store `NodeRow` (None: in the inventory, never heard)."""
    beat = _beat(row.heartbeat) if row is not None else None
    where = coordinates(attributes or {})
    out: dict[str, Any] = {
        "node": node,
        "district": row.district if row is not None else None,
        "status": row.status if row is not None else "unknown",
        "since": row.since.isoformat() if row is not None else None,
        "reason": row.reason if row is not None else "never heard from",
        "last_seen_s": round((now - row.last_seen).total_seconds(), 1) if row and row.last_seen else None,
        "alerts": alerts,
        "lat": where[0] if where else None,
        "lon": where[1] if where else None,
    }
    out.update(_beat_summary(beat))
    return out


def _beat_summary(beat: Heartbeat | None) -> dict[str, Any]:
    if beat is None:
        return {"version": None, "cameras": 0, "backlog_s": None, "pending": None, "cert_days_left": None,
                "disk_free_ratio": None, "rtt_ms": None, "dropped": None, "cpu_percent": None}  # fmt: skip
    return {
        "version": beat.versions.get("agent"),
        "cameras": len(beat.cameras),
        "backlog_s": round(beat.oldest_backlog_s, 1),
        "pending": sum(s.pending + s.sent for s in beat.outbox.values()),
        "cert_days_left": beat.cert_days_left,
        "disk_free_ratio": None if beat.disk_free_ratio is None else round(beat.disk_free_ratio, 3),
        "rtt_ms": beat.link.rtt_ms,
        "dropped": beat.dropped,
        "cpu_percent": beat.cpu_percent,
    }


def sort_nodes(rows: Iterable[dict[str, Any]], key: str = "health") -> list[dict[str, Any]]:
    """Worst first for `health` (offline, stale, never heard, online; more alerts first)."""
    if key == "health":
        return sorted(rows, key=lambda r: (HEALTH_ORDER.get(r["status"], 9), -r["alerts"], r["node"]))
    return sorted(rows, key=lambda r: (r.get(key) is None, r.get(key) or 0, r["node"]))
