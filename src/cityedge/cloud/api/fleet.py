"""Devices' health: the fleet table (sortable by health), one node in detail, its status history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, status

from cityedge.cloud.api.deps import ApiDeps, permitted
from cityedge.cloud.api.fleet_deps import FleetDeps, fleet_of
from cityedge.cloud.fleet.views import node_summary, sort_nodes

__all__ = ["fleet_table", "node_detail", "router"]

router = APIRouter(prefix="/api/v1/fleet", tags=["fleet"])


def fleet_table(deps: ApiDeps, fleet: FleetDeps, sort: str = "health") -> list[dict[str, Any]]:
    """Every node heard from or in the inventory, one summary each."""
    now = deps.clock()
    rows = {r.node: r for r in fleet.store.nodes()}
    inventory = {d.device_id: d.attributes for d in deps.registry.store.devices()}
    alerts: dict[str, int] = {}
    for a in fleet.store.firing_alerts():
        alerts[a["node"]] = alerts.get(a["node"], 0) + 1
    names = sorted(set(rows) | set(inventory))
    return sort_nodes(
        (node_summary(n, rows.get(n), inventory.get(n), now, alerts.get(n, 0)) for n in names), sort
    )


def node_detail(deps: ApiDeps, fleet: FleetDeps, node: str) -> dict[str, Any]:
    rows = fleet.store.nodes(node)
    device = next((d for d in deps.registry.store.devices() if d.device_id == node), None)
    if not rows and device is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no node {node!r} in the inventory or the fleet")
    row = rows[0] if rows else None
    summary = node_summary(node, row, device.attributes if device else None, deps.clock())
    return {
        **summary,
        "heartbeat": row.heartbeat if row is not None else None,
        "heartbeat_ts": row.heartbeat_ts.isoformat() if row and row.heartbeat_ts else None,
        "inventory": device.as_dict() if device is not None else None,
        "history": [t.as_dict() for t in fleet.store.transitions(node)][-50:],
        "alerts": [a for a in fleet.store.firing_alerts() if a["node"] == node],
    }


@router.get("/nodes")
def nodes(
    sort: str = Query("health", pattern="^(health|node|last_seen_s|backlog_s|cert_days_left|rtt_ms)$"),
    deps: ApiDeps = Depends(permitted("fleet.read")),
    fleet: FleetDeps = Depends(fleet_of),
) -> list[dict[str, Any]]:
    return fleet_table(deps, fleet, sort)


@router.get("/summary")
def summary(
    deps: ApiDeps = Depends(permitted("fleet.read")), fleet: FleetDeps = Depends(fleet_of)
) -> dict[str, Any]:
    counts = {"online": 0, "stale": 0, "offline": 0, "unknown": 0}
    for row in fleet_table(deps, fleet):
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return {"nodes": counts, "alerts": len(fleet.store.firing_alerts())}


@router.get("/nodes/{node}")
def node(
    node: str, deps: ApiDeps = Depends(permitted("fleet.read")), fleet: FleetDeps = Depends(fleet_of)
) -> dict[str, Any]:
    return node_detail(deps, fleet, node)


@router.get("/nodes/{node}/history")
def history(
    node: str,
    after: int = Query(0, ge=0, description="cursor: the last transition id already seen"),
    limit: int = Query(100, ge=1, le=1000),
    _: ApiDeps = Depends(permitted("fleet.read")),
    fleet: FleetDeps = Depends(fleet_of),
) -> dict[str, Any]:
    """Status transitions of one node, oldest first; pass `next_cursor` as `after` for more."""
    items = [t.as_dict() for t in fleet.store.transitions(node, after, limit)]
    return {"items": items, "next_cursor": items[-1]["id"] if len(items) == limit else None}
