"""Quarantine: what ingest could not store, kept raw with its reason (replaces `rejections`).

Revision ID: 0005_quarantine
Revises: 0004_operator
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cityedge.cloud.store.migrations.ddl import create_rejections, create_table, id_column

revision = "0005_quarantine"
down_revision = "0004_operator"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_table(
        "quarantine",
        id_column(),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("district", sa.String(63), nullable=True),
        sa.Column("node", sa.String(63), nullable=True),
        sa.Column("stream", sa.String(63), nullable=True),
        sa.Column("record_id", sa.String(36), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(63), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        key="id",
        indexes=[("reason",), ("node",)],
    )
    op.execute(
        "INSERT INTO quarantine (topic, reason, detail, size, raw, received_at)"
        " SELECT topic, reason, detail, 0, '', received_at FROM rejections"
    )
    op.drop_table("rejections")


def downgrade() -> None:
    create_rejections()
    op.drop_table("quarantine")
