"""Records (id is the primary key; arrival is the insert order) and rejected messages.

Revision ID: 0001_records
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from cityedge.cloud.store.migrations.ddl import create_rejections, create_table, drop_tables

revision = "0001_records"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_table(
        "records",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("arrival", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("district", sa.String(63), nullable=False),
        sa.Column("node", sa.String(63), nullable=False),
        sa.Column("stream", sa.String(63), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(63), nullable=False),
        sa.Column("v", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        key="id",
        unique=["arrival"],
        indexes=[("node", "stream", "seq"), ("stream",)],
    )
    create_rejections()


def downgrade() -> None:
    drop_tables("rejections", "records")
