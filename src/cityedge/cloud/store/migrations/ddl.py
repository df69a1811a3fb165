"""What the revisions in `versions/` share: a table created with its key, unique columns and
indexes named the way `schema.NAMING` names them (so a revision cannot drift from the names
the tables in `schema` carry), tables dropped in one call, and the `rejections` table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from cityedge.cloud.store.schema import NAMING

__all__ = ["create_rejections", "create_table", "create_token_table", "drop_tables", "id_column"]


def create_table(
    name: str,
    *columns: sa.Column[Any],
    key: str,
    unique: Sequence[str] = (),
    indexes: Sequence[Sequence[str]] = (),
) -> None:
    """Create `name` with primary key `key`, one unique constraint per column in `unique`,
    and one index per column list in `indexes`."""
    constraints: list[sa.Constraint] = [sa.PrimaryKeyConstraint(key, name=_named("pk", name, [key]))]
    constraints += [sa.UniqueConstraint(column, name=_named("uq", name, [column])) for column in unique]
    op.create_table(name, *columns, *constraints)
    for indexed in indexes:
        op.create_index(_named("ix", name, indexed), name, list(indexed))


def create_token_table(name: str, owner: sa.Column[Any], *columns: sa.Column[Any]) -> None:
    """The DDL of `schema.token_table`: tokens kept as SHA-256 hex digests, the digest the key,
    then `owner` (indexed) and `created_at`, then `columns`."""
    create_table(
        name,
        sa.Column("token_hash", sa.String(64), nullable=False),
        owner,
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        *columns,
        key="token_hash",
        indexes=[(owner.name,)],
    )


def id_column() -> sa.Column[Any]:
    """A surrogate key `id` the database numbers: a BIGINT identity on PostgreSQL, and on
    SQLite an INTEGER, so that it is the rowid."""
    number = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    return sa.Column("id", number, sa.Identity(), nullable=False)


def drop_tables(*names: str) -> None:
    """Drop the tables in the order given: a downgrade names the newest first."""
    for name in names:
        op.drop_table(name)


def create_rejections() -> None:
    """The rejections table of 0001_records, which 0005_quarantine replaces and gives back on
    downgrade."""
    create_table(
        "rejections",
        id_column(),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(63), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        key="id",
        indexes=[("reason",)],
    )


def _named(kind: str, table: str, columns: Sequence[str]) -> str:
    return NAMING[kind] % {"table_name": table, "column_0_N_name": "_".join(columns)}
