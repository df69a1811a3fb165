"""SLO compliance per node over a window: availability, camera latency and frame rate."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query

from cityedge.cloud.api.deps import ApiDeps, permitted
from cityedge.cloud.api.fleet_deps import FleetDeps, fleet_of
from cityedge.cloud.fleet.slo import compliance

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/slo", tags=["slo"])


@router.get("")
def slo(
    node: str | None = None,
    window_s: int = Query(3600, ge=60, le=30 * 86400),
    deps: ApiDeps = Depends(permitted("fleet.read")),
    fleet: FleetDeps = Depends(fleet_of),
) -> dict[str, Any]:
    now = deps.clock()
    since = now - timedelta(seconds=window_s)
    nodes = [r.node for r in fleet.store.nodes(node)]
    t = fleet.config.alerts
    out = {}
    for name in nodes:
        beats = fleet.store.node_records(name, "heartbeat", since)
        changes = fleet.store.transitions(name, limit=100_000)
        out[name] = compliance(beats, changes, since, now, t.latency_slo_ms, t.fps_ratio)
    return {"window_s": window_s, "latency_slo_ms": t.latency_slo_ms, "nodes": out}
