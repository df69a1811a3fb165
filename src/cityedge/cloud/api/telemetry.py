"""Telemetry aggregates: records per time bucket and kind, and min/mean/max of a body field."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query

from cityedge.cloud.api.deps import ApiDeps, permitted
from cityedge.cloud.api.fleet_deps import FleetDeps, fleet_of
from cityedge.cloud.fleet.slo import aggregate

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/telemetry", tags=["telemetry"])


@router.get("/aggregates")
def aggregates(
    node: str | None = None,
    stream: str = Query("telemetry", pattern="^[a-z0-9-]+$"),
    field: str | None = Query(None, description="a numeric body field to summarise, e.g. pm25"),
    bucket_s: int = Query(60, ge=1, le=86400),
    window_s: int = Query(3600, ge=1, le=7 * 86400, description="how far back from now"),
    deps: ApiDeps = Depends(permitted("telemetry.read")),
    fleet: FleetDeps = Depends(fleet_of),
) -> dict[str, Any]:
    since: datetime = deps.clock() - timedelta(seconds=window_s)
    rows = fleet.store.events(stream=stream, node=node, since=since, limit=100_000)
    return {"stream": stream, "bucket_s": bucket_s, "buckets": aggregate(rows, bucket_s, field)}
