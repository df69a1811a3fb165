"""The control plane's FastAPI app, built by a factory from its dependencies."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import make_asgi_app

from cityedge.cloud.api import audit, ca, devices, enrollment, releases, revocation, rollouts, tuf_repo
from cityedge.cloud.api.deps import ApiDeps
from cityedge.cloud.api.metrics import identity_registry

__all__ = ["create_app"]


def create_app(deps: ApiDeps) -> FastAPI:
    app = FastAPI(title="cityedge control plane", version="1")
    app.state.deps = deps
    for module in (devices, enrollment, revocation, ca):
        app.include_router(module.router)
    for ota_module in (releases, rollouts, audit, tuf_repo):
        app.include_router(ota_module.router)
    app.mount("/metrics", make_asgi_app(identity_registry(deps.registry, deps.clock)))
    return app
