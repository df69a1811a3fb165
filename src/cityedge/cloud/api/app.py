"""The control plane's FastAPI app, built by a factory from its dependencies.

One router per resource. Routers that later capabilities add (fleet, releases, auth) come in
through `routers`; their own dependencies travel in `ApiDeps`.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter, FastAPI

from cityedge.cloud.api import (
    alerts,
    audit,
    ca,
    devices,
    enrollment,
    events,
    fleet,
    metrics,
    releases,
    revocation,
    rollouts,
    slo,
    telemetry,
    tuf_repo,
)
from cityedge.cloud.api.deps import ApiDeps
from cityedge.cloud.api.metrics import IdentityCollector

__all__ = ["DEFAULT_ROUTERS", "create_app"]

DEFAULT_ROUTERS: tuple[APIRouter, ...] = (
    devices.router,
    enrollment.router,
    revocation.router,
    ca.router,
    metrics.router,
    releases.router,
    rollouts.router,
    audit.router,
    tuf_repo.router,
    fleet.router,
    events.router,
    telemetry.router,
    alerts.router,
    slo.router,
)


def create_app(deps: ApiDeps, routers: Iterable[APIRouter] = DEFAULT_ROUTERS) -> FastAPI:
    app = FastAPI(title="cityedge control plane", version="1")
    app.state.deps = deps
    for router in routers:
        app.include_router(router)
    deps.metrics.register(IdentityCollector(deps.registry, deps.clock))
    return app
