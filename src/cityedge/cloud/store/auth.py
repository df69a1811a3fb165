"""Users, hashed API tokens and the append-only, hash-chained audit log.

An append reads the last entry and writes the next one in one transaction under the write
lock (SQLite's BEGIN IMMEDIATE, a PostgreSQL advisory lock), so the chain never forks. The
store offers no update or delete of audit entries.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    String,
    Table,
    Text,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from cityedge.cloud.auth.audit import GENESIS, AuditEntry, canonical, entry_hash
from cityedge.cloud.store.engine import reading
from cityedge.cloud.store.schema import NAME, TIMESTAMPTZ, metadata, token_table
from cityedge.protocol.errors import StoreError

__all__ = ["AuthStore", "UserRow", "api_tokens", "audit_log", "users"]

_AUDIT_LOCK: Final = 0x61756469_74636861  # "auditcha": PostgreSQL advisory lock key

users = Table(
    "users",
    metadata,
    Column("name", NAME, primary_key=True),
    Column("role", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False),
)
api_tokens = token_table(
    "api_tokens",
    Column("user_name", NAME, nullable=False),
    Column("revoked_at", TIMESTAMPTZ, nullable=True),
)
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", String(40), nullable=False),
    Column("actor", NAME, nullable=False),
    Column("action", NAME, nullable=False),
    Column("target", Text, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("detail", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)


@dataclass(frozen=True)
class UserRow:
    name: str
    role: str
    kind: str  # "user" or "service"


class AuthStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _write(self, what: str) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"{what} failed: {exc.__class__.__name__}: {exc}") from exc

    def add_user(self, name: str, role: str, kind: str, now: datetime) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(users.insert().values(name=name, role=role, kind=kind, created_at=now))
        except IntegrityError:
            raise StoreError(f"user {name!r} already exists") from None

    def set_role(self, name: str, role: str) -> bool:
        with self._write("role change") as conn:
            return conn.execute(update(users).where(users.c.name == name).values(role=role)).rowcount == 1

    def user(self, name: str) -> UserRow | None:
        with reading(self.engine) as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
        return UserRow(row.name, row.role, row.kind) if row else None

    def users(self) -> list[UserRow]:
        with reading(self.engine) as conn:
            return [
                UserRow(r.name, r.role, r.kind) for r in conn.execute(select(users).order_by(users.c.name))
            ]

    def add_token(self, token_hash: str, user: str, now: datetime) -> None:
        with self._write("token issue") as conn:
            conn.execute(api_tokens.insert().values(token_hash=token_hash, user_name=user, created_at=now))

    def revoke_tokens(self, user: str, now: datetime) -> int:
        with self._write("token revocation") as conn:
            live = api_tokens.c.user_name == user, api_tokens.c.revoked_at.is_(None)
            return conn.execute(update(api_tokens).where(*live).values(revoked_at=now)).rowcount

    def user_for_token(self, token_hash: str) -> UserRow | None:
        query = (
            select(users)
            .join(api_tokens, api_tokens.c.user_name == users.c.name)
            .where(api_tokens.c.token_hash == token_hash, api_tokens.c.revoked_at.is_(None))
        )
        with reading(self.engine) as conn:
            row = conn.execute(query).first()
        return UserRow(row.name, row.role, row.kind) if row else None

    # -- audit ---------------------------------------------------------------------------

    def append_audit(self, actor: str, action: str, target: str, outcome: str, detail: dict[str, Any],
                     at: datetime) -> AuditEntry:  # fmt: skip
        stamp = at.astimezone(UTC).isoformat(timespec="microseconds")
        body = canonical(detail)
        with self._write("audit append") as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _AUDIT_LOCK})
            last = conn.execute(
                select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
            ).first()
            seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
            digest = entry_hash(seq, stamp, actor, action, target, outcome, body, prev)
            entry = AuditEntry(seq, stamp, actor, action, target, outcome, body, prev, digest)
            conn.execute(audit_log.insert().values(**entry.__dict__))
        return entry

    def audit_entries(self, after: int = 0, limit: int | None = None) -> list[AuditEntry]:
        query = select(audit_log).where(audit_log.c.seq > after).order_by(audit_log.c.seq)
        if limit is not None:
            query = query.limit(limit)
        with reading(self.engine) as conn:
            return [AuditEntry(**row) for row in conn.execute(query).mappings()]
