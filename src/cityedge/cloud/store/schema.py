"""The cloud store's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

Migrations in `migrations/versions` create these; this module is what queries use. A record's
id is its primary key, so a redelivered record is a no-op insert, never a second row.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

__all__ = ["NAME", "NAMING", "TIMESTAMPTZ", "metadata", "quarantine", "records", "token_table"]

NAMING: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

# A name (district, node, stream, kind, device, user, action, alert): at most 63 characters,
# the limit of the protocol's NAME_PATTERN and KIND_PATTERN (one DNS label).
NAME: Final = String(63)
# Every time the store keeps is an instant: UTC, with its zone.
TIMESTAMPTZ: Final = DateTime(timezone=True)

# Identity() is a real sequence on PostgreSQL; SQLite ignores it and the store assigns
# `arrival` itself inside its write-locked transaction (see records.py).
records = Table(
    "records",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("arrival", BigInteger, Identity(), nullable=False, unique=True),
    Column("district", NAME, nullable=False),
    Column("node", NAME, nullable=False),
    Column("stream", NAME, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("kind", NAME, nullable=False),
    Column("v", Integer, nullable=False),
    Column("ts", TIMESTAMPTZ, nullable=False),
    Column("received_at", TIMESTAMPTZ, nullable=False),
    Column("body", JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    Column("raw", Text, nullable=False),
    Index(None, "node", "stream", "seq"),
    Index(None, "stream"),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), Identity(), primary_key=True),
    Column("topic", Text, nullable=False),
    Column("district", NAME),
    Column("node", NAME),
    Column("stream", NAME),
    Column("record_id", String(36)),
    Column("seq", BigInteger),
    Column("reason", NAME, nullable=False),
    Column("detail", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("received_at", TIMESTAMPTZ, nullable=False),
    Index(None, "reason"),
    Index(None, "node"),
)


def token_table(name: str, owner: Column[str], *columns: Column[Any]) -> Table:
    """A table of tokens kept only as SHA-256 hex digests: the digest is the key, and the
    tokens of one owner (a user, a device serial) are found by the owner's index."""
    return Table(
        name,
        metadata,
        Column("token_hash", String(64), primary_key=True),
        owner,
        Column("created_at", TIMESTAMPTZ, nullable=False),
        *columns,
        Index(None, owner.name),
    )
