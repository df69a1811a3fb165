"""Helpers behind `cityedge audit ...`: open the auth store, read entries from a store or file."""

from __future__ import annotations

import json
from pathlib import Path

from cityedge.cloud.auth.audit import AuditEntry
from cityedge.cloud.auth.service import AuthService
from cityedge.cloud.store.auth import AuthStore
from cityedge.protocol.errors import ConfigError

__all__ = ["open_auth", "read_entries"]


def open_auth(database: str) -> AuthService:
    from cityedge.cloud.store import make_engine, upgrade

    engine = make_engine(database)
    upgrade(engine)
    return AuthService(AuthStore(engine))


def read_entries(database: str | None, file: Path | None) -> list[AuditEntry]:
    if (database is None) == (file is None):
        raise ConfigError("give exactly one of --database or --file")
    if database is not None:
        return open_auth(database).store.audit_entries()
    assert file is not None
    entries = []
    for n, line in enumerate(file.read_text().splitlines(), 1):
        try:
            entries.append(AuditEntry(**json.loads(line)))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{file}:{n}: not an audit entry: {exc}") from None
    return entries
