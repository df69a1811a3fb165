"""What the release, rollout, audit and TUF routers need, kept on `app.state.ota`.

The composition root calls `attach_ota(app, ...)` after `create_app`; `app.state.auth`
(an `AuthService`) is what `require(permission)` checks against.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request, status

from cityedge.cloud.auth.service import AuthService
from cityedge.cloud.clock import utcnow
from cityedge.cloud.store.releases import RolloutStore

__all__ = ["OtaState", "attach_ota", "ota_of"]


@dataclass
class OtaState:
    repo_dir: Path
    auth: AuthService
    rollouts: RolloutStore | None = None
    clock: Callable[[], datetime] = utcnow


def attach_ota(app: FastAPI, state: OtaState) -> FastAPI:
    app.state.ota = state
    app.state.auth = state.auth
    return app


def ota_of(request: Request) -> OtaState:
    state: OtaState | None = getattr(request.app.state, "ota", None)
    if state is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "releases are not configured")
    return state
