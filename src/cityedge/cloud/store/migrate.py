"""Bring a database to the newest schema with Alembic, configured in code.

Safe to run from two processes at once: the upgrade runs under a lock (SQLite's write lock,
a PostgreSQL advisory lock), so the second one finds the schema current and does nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

from sqlalchemy import Engine, text


def _quiet_alembic() -> None:
    # Alembic narrates every step at INFO (even its imports); keep that out of ingest's log
    # unless the user set a level for it.
    quiet = logging.getLogger("alembic")
    if quiet.level == logging.NOTSET:
        quiet.setLevel(logging.WARNING)


_quiet_alembic()

from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from alembic.runtime.migration import MigrationContext  # noqa: E402
from alembic.script import ScriptDirectory  # noqa: E402

__all__ = ["MIGRATIONS_DIR", "alembic_config", "current_revision", "head_revision", "upgrade"]

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
# Any fixed 64-bit number works; it only has to be the same in every cityedge process.
_PG_LOCK_KEY: Final = 0x63697479_65646765  # "cityedge"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations folder has no revisions"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade to `revision` in one locked transaction (idempotent)."""
    cfg = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
