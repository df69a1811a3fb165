"""What the API needs, handed to `create_app`: the registry, the auth service, a clock, metrics.

Every route that is not public depends on `permitted("<permission>")`: a bearer token that
maps to a role holding the permission (RBAC, `cloud/auth/`). A refusal is audited; so is
every allowed change (any method but GET). The configured operator tokens (stored as
SHA-256 hashes) still work, as a service principal with the operator role.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from fastapi import Header, Request
from prometheus_client import CollectorRegistry

from cityedge.cloud.auth.http import require
from cityedge.cloud.auth.service import AuthService
from cityedge.cloud.clock import utcnow
from cityedge.cloud.registry import Registry
from cityedge.cloud.store.auth import AuthStore

__all__ = ["ApiDeps", "auth_service", "client_certificate", "deps_of", "permitted"]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class ApiDeps:
    registry: Registry
    operator_token_hashes: frozenset[str] = field(default_factory=frozenset)
    clock: Callable[[], datetime] = utcnow
    auth: AuthService | None = None
    # Served at /metrics; every router's collectors register here.
    metrics: CollectorRegistry = field(default_factory=CollectorRegistry)

    @classmethod
    def with_tokens(cls, registry: Registry, tokens: Iterable[str], **kw: object) -> ApiDeps:
        return cls(registry, frozenset(_hash(t) for t in tokens), **kw)  # type: ignore[arg-type]


def deps_of(request: Request) -> ApiDeps:
    deps: ApiDeps = request.app.state.deps
    return deps


def auth_service(request: Request) -> AuthService:
    """The app's AuthService: `app.state.auth` if the composition root set one, else one over
    the registry's database that also accepts the configured operator tokens."""
    auth: AuthService | None = getattr(request.app.state, "auth", None)
    if auth is None:
        deps = deps_of(request)
        auth = deps.auth or AuthService(
            AuthStore(deps.registry.store.engine), deps.clock, deps.operator_token_hashes
        )
        request.app.state.auth = auth
    return auth


def permitted(permission: str) -> Callable[..., ApiDeps]:
    """Route dependency: the caller holds `permission` (401/403 otherwise); returns ApiDeps."""
    check = require(permission)

    def dependency(request: Request, authorization: str = Header(default="")) -> ApiDeps:
        auth = auth_service(request)
        who = check(request, authorization)
        if request.method != "GET":
            auth.audit(
                who.name, permission, f"{request.method} {request.url.path}", "allowed", {"role": who.role}
            )
        return deps_of(request)

    return dependency


def client_certificate(request: Request) -> bytes | None:
    """The verified client certificate (PEM) from the ASGI TLS extension, if the client sent one."""
    tls = request.scope.get("extensions", {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    return chain[0].encode() if chain else None
