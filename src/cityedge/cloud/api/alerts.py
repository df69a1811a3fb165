"""Alerts the control plane's own rules have firing now, and their history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from cityedge.cloud.api.deps import ApiDeps, permitted
from cityedge.cloud.api.fleet_deps import FleetDeps, fleet_of

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


@router.get("")
def firing(_: ApiDeps = Depends(permitted("alerts.read")), fleet: FleetDeps = Depends(fleet_of)) -> list[Any]:
    return sorted(fleet.store.firing_alerts(), key=lambda a: a["id"])


@router.get("/history")
def history(
    after: int = Query(0, ge=0, description="cursor: the last event id already seen"),
    node: str | None = None,
    limit: int = Query(200, ge=1, le=5000),
    _: ApiDeps = Depends(permitted("alerts.read")),
    fleet: FleetDeps = Depends(fleet_of),
) -> dict[str, Any]:
    items = fleet.store.alert_events(after, node, limit)
    return {"items": items, "next_cursor": items[-1]["id"] if len(items) == limit else None}
