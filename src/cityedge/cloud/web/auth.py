"""Who is looking at the dashboard: the same tokens and roles as the API (`cloud/auth/`),
carried in an HttpOnly, SameSite=Strict cookie so pages and the live stream need no script
to attach a header. A refusal is audited, like the API's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from fastapi import HTTPException, Request, status

from cityedge.cloud.api.deps import auth_service
from cityedge.cloud.auth.roles import allowed
from cityedge.cloud.auth.service import Principal
from cityedge.protocol.errors import AuthError

__all__ = ["COOKIE", "can", "login_required", "web_principal"]

COOKIE: Final = "cityedge_token"


def login_required() -> HTTPException:
    return HTTPException(status.HTTP_303_SEE_OTHER, "log in first", {"Location": "/ui/login"})


def web_principal(permission: str, *, redirect: bool = True) -> Callable[[Request], Principal]:
    """Dependency: the cookie's caller holds `permission` (login page or 401; 403 otherwise)."""

    def dependency(request: Request) -> Principal:
        auth = auth_service(request)
        token = request.cookies.get(COOKIE, "")
        who = auth.authenticate(token) if token else None
        if who is None:
            if redirect:
                raise login_required()
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "log in first")
        try:
            auth.authorize(who, permission, f"{request.method} {request.url.path}")
        except AuthError as exc:
            raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
        if request.method != "GET":
            if request.headers.get("origin") not in (None, _origin(request)):
                raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-site request refused")
            auth.audit(
                who.name, permission, f"{request.method} {request.url.path}", "allowed", {"role": who.role}
            )
        return who

    return dependency


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def can(who: Principal, permission: str) -> bool:
    return allowed(who.role, permission)
