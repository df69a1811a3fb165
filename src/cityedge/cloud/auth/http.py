"""RBAC for FastAPI routes: `Depends(require("releases.publish"))` on every route.

The `AuthService` comes from `app.state.auth` (set by the composition root). No or an
unknown token is 401; a known caller without the permission is 403, and the attempt is
written to the audit log first.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Header, HTTPException, Request, status

from cityedge.cloud.auth.roles import PERMISSIONS
from cityedge.cloud.auth.service import AuthService, Principal
from cityedge.protocol.errors import AuthError

__all__ = ["auth_of", "require"]


def auth_of(request: Request) -> AuthService:
    auth: AuthService | None = getattr(request.app.state, "auth", None)
    if auth is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "authorization is not configured")
    return auth


def require(permission: str) -> Callable[..., Principal]:
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def dependency(request: Request, authorization: str = Header(default="")) -> Principal:
        auth = auth_of(request)
        scheme, _, token = authorization.partition(" ")
        who = auth.authenticate(token) if scheme.lower() == "bearer" and token else None
        if who is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "a valid bearer token is required",
                {"WWW-Authenticate": "Bearer"},
            )
        try:
            auth.authorize(who, permission, f"{request.method} {request.url.path}")
        except AuthError as exc:
            raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
        return who

    return dependency
