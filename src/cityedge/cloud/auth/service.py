"""Who is calling and may they: tokens (stored as SHA-256 hashes) mapped to users and roles,
and the audit trail of every change and every refused attempt."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cityedge.cloud.auth.audit import AuditEntry, verify_chain
from cityedge.cloud.auth.roles import allowed, check_role
from cityedge.cloud.clock import utcnow
from cityedge.cloud.store.auth import AuthStore
from cityedge.protocol.errors import AuthError, ConfigError

__all__ = ["AuthService", "Principal", "hash_token"]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    kind: str = "user"


class AuthService:
    """`legacy_tokens` are the interim operator tokens (hashes) some deployments still
    configure; they act as a service principal with the operator role."""

    def __init__(
        self,
        store: AuthStore,
        clock: Callable[[], datetime] = utcnow,
        legacy_tokens: Iterable[str] = (),
    ) -> None:
        self.store = store
        self.clock = clock
        self.legacy = frozenset(legacy_tokens)

    def create_user(self, name: str, role: str, by: str, kind: str = "user") -> str:
        """Create a user or service account and return its first token (shown once)."""
        try:
            check_role(role)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        now = self.clock()
        self.store.add_user(name, role, kind, now)
        token = secrets.token_urlsafe(32)
        self.store.add_token(hash_token(token), name, now)
        self.audit(by, "user.create", name, "ok", {"role": role, "kind": kind})
        return token

    def set_role(self, name: str, role: str, by: str) -> None:
        try:
            check_role(role)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if not self.store.set_role(name, role):
            raise AuthError(f"no user {name!r}")
        self.audit(by, "user.role", name, "ok", {"role": role})

    def revoke(self, name: str, by: str) -> int:
        n = self.store.revoke_tokens(name, self.clock())
        self.audit(by, "user.revoke_tokens", name, "ok", {"tokens": n})
        return n

    def authenticate(self, token: str) -> Principal | None:
        digest = hash_token(token)
        if any(hmac.compare_digest(digest, known) for known in self.legacy):
            return Principal("legacy-operator-token", "operator", "service")
        row = self.store.user_for_token(digest)
        return Principal(row.name, row.role, row.kind) if row else None

    def authorize(self, who: Principal, permission: str, target: str = "") -> None:
        """Raise AuthError (after auditing the refusal) unless `who` holds `permission`."""
        if not allowed(who.role, permission):
            self.audit(who.name, permission, target, "denied", {"role": who.role})
            raise AuthError(f"{who.name} ({who.role}) lacks permission {permission}")

    def audit(self, actor: str, action: str, target: str, outcome: str, detail: dict[str, Any]) -> AuditEntry:
        return self.store.append_audit(actor, action, target, outcome, detail, self.clock())

    def verify(self) -> int:
        return verify_chain(self.store.audit_entries())
