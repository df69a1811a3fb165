"""What the API needs, handed to `create_app`: the registry, operator tokens, a clock, metrics.

Operator endpoints take a bearer token from a configured set (stored as SHA-256 hashes);
roles and RBAC come with the auth issue, this is the interim gate.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import Header, HTTPException, Request, status
from prometheus_client import CollectorRegistry

from cityedge.cloud.registry import Registry

__all__ = ["ApiDeps", "client_certificate", "deps_of", "require_operator"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class ApiDeps:
    registry: Registry
    operator_token_hashes: frozenset[str] = field(default_factory=frozenset)
    clock: Callable[[], datetime] = _utcnow
    # Served at /metrics; every router's collectors register here.
    metrics: CollectorRegistry = field(default_factory=CollectorRegistry)

    @classmethod
    def with_tokens(cls, registry: Registry, tokens: Iterable[str], **kw: object) -> ApiDeps:
        return cls(registry, frozenset(_hash(t) for t in tokens), **kw)  # type: ignore[arg-type]

    def is_operator(self, token: str) -> bool:
        presented = _hash(token)
        return any(hmac.compare_digest(presented, known) for known in self.operator_token_hashes)


def deps_of(request: Request) -> ApiDeps:
    deps: ApiDeps = request.app.state.deps
    return deps


def require_operator(request: Request, authorization: str = Header(default="")) -> ApiDeps:
    deps = deps_of(request)
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token or not deps.is_operator(token):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "operator bearer token required", {"WWW-Authenticate": "Bearer"}
        )
    return deps


def client_certificate(request: Request) -> bytes | None:
    """The verified client certificate (PEM) from the ASGI TLS extension, if the client sent one."""
    tls = request.scope.get("extensions", {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    return chain[0].encode() if chain else None
