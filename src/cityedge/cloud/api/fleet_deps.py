"""What the fleet, event, telemetry, alert and SLO routers and the dashboard need, kept on
`app.state.fleet`: the fleet store and (in the process that runs it) the fleet monitor.

Without `attach_fleet` the routers still work, over the registry's database."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import FastAPI, Request

from cityedge.cloud.api.deps import deps_of
from cityedge.cloud.fleet.config import FleetSection
from cityedge.cloud.fleet.monitor import FleetMonitor
from cityedge.cloud.store.fleet import FleetStore

__all__ = ["FleetDeps", "attach_fleet", "fleet_of"]


@dataclass
class FleetDeps:
    store: FleetStore
    monitor: FleetMonitor | None = None
    config: FleetSection = field(default_factory=FleetSection)


def attach_fleet(app: FastAPI, fleet: FleetDeps) -> FastAPI:
    from cityedge.cloud.fleet.metrics import FleetCollector

    app.state.fleet = fleet
    if fleet.monitor is not None:
        deps_of_app = app.state.deps
        deps_of_app.metrics.register(FleetCollector(fleet.monitor))
    return app


def fleet_of(request: Request) -> FleetDeps:
    fleet: FleetDeps | None = getattr(request.app.state, "fleet", None)
    if fleet is None:
        fleet = FleetDeps(FleetStore(deps_of(request).registry.store.engine))
        request.app.state.fleet = fleet
    return fleet
