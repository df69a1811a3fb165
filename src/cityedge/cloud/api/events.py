"""Events and incidents: filter by node, camera, type and time; cursor pagination by arrival."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query

from cityedge.cloud.api.deps import ApiDeps, permitted
from cityedge.cloud.api.fleet_deps import FleetDeps, fleet_of

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/events", tags=["events"])


@router.get("")
def events(
    node: str | None = None,
    camera: str | None = None,
    type: str | None = Query(None, description="incident type, e.g. stopped_vehicle"),
    since: datetime | None = Query(None, description="from this source time (RFC 3339)"),
    until: datetime | None = Query(None, description="before this source time (RFC 3339)"),
    cursor: int = Query(0, ge=0, description="the `next_cursor` of the previous page"),
    limit: int = Query(100, ge=1, le=1000),
    _: ApiDeps = Depends(permitted("events.read")),
    fleet: FleetDeps = Depends(fleet_of),
) -> dict[str, Any]:
    """Incidents in arrival order; `next_cursor` is null on the last page."""
    rows = fleet.store.events(
        after=cursor, limit=limit, node=node, camera=camera, kind=type, since=since, until=until
    )
    return {
        "items": [r.as_dict() for r in rows],
        "next_cursor": rows[-1].arrival if len(rows) == limit else None,
    }
