"""What the release, rollout, audit and TUF routers need, kept on `app.state.ota`.

The composition root calls `attach_ota(app, ...)` after `create_app`; `app.state.auth`
(an `AuthService`) is what `require(permission)` checks against. A route that needs a
permission takes `Depends(ota_call(permission))`: the caller and the state in one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, status

from cityedge.cloud.auth.http import require
from cityedge.cloud.auth.service import AuthService, Principal
from cityedge.cloud.clock import utcnow
from cityedge.cloud.store.releases import RolloutStore

__all__ = ["OtaCall", "OtaState", "attach_ota", "ota_call", "ota_of"]


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


@dataclass(frozen=True)
class OtaCall:
    """A call on an OTA route by a caller who holds the route's permission."""

    who: Principal
    ota: OtaState

    def audit(self, action: str, target: str, outcome: str, detail: dict[str, Any]) -> None:
        self.ota.auth.audit(self.who.name, action, target, outcome, detail)


def ota_call(permission: str) -> Callable[..., OtaCall]:
    """Route dependency: the caller holds `permission` (401/403 otherwise), and OTA is configured."""
    check = require(permission)

    def dependency(who: Principal = Depends(check), ota: OtaState = Depends(ota_of)) -> OtaCall:
        return OtaCall(who, ota)

    return dependency
