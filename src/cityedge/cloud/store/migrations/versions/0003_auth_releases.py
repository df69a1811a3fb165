"""Auth and releases: users, hashed API tokens, the hash-chained audit log, rollouts.

Revision ID: 0003_auth_releases
Revises: 0002_registry
"""

from __future__ import annotations

import sqlalchemy as sa

from cityedge.cloud.store.migrations.ddl import create_table, create_token_table, drop_tables

revision = "0003_auth_releases"
down_revision = "0002_registry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_table(
        "users",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        key="name",
    )
    create_token_table(
        "api_tokens",
        sa.Column("user_name", sa.String(63), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(63), nullable=False),
        sa.Column("action", sa.String(63), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        key="seq",
    )
    create_table(
        "rollouts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        key="id",
    )


def downgrade() -> None:
    drop_tables("rollouts", "audit_log", "api_tokens", "users")
