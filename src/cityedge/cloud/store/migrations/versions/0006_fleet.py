"""Fleet: each node's status, its transitions, alert events and the fleet monitor's cursor.

Revision ID: 0006_fleet
Revises: 0005_quarantine
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from cityedge.cloud.store.migrations.ddl import create_table, drop_tables, id_column

revision = "0006_fleet"
down_revision = "0005_quarantine"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    create_table(
        "fleet_nodes",
        sa.Column("node", sa.String(63), nullable=False),
        sa.Column("district", sa.String(63), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("interval_s", sa.Float(), nullable=True),
        sa.Column("heartbeat_id", sa.String(36), nullable=True),
        sa.Column("heartbeat_ts", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat", _JSON, nullable=True),
        key="node",
    )
    create_table(
        "fleet_transitions",
        id_column(),
        sa.Column("node", sa.String(63), nullable=False),
        sa.Column("district", sa.String(63), nullable=False),
        sa.Column("before", sa.String(16), nullable=True),
        sa.Column("after", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        key="id",
        indexes=[("node",)],
    )
    create_table(
        "fleet_alerts",
        id_column(),
        sa.Column("alert", sa.String(63), nullable=False),
        sa.Column("node", sa.String(63), nullable=False),
        sa.Column("subject", sa.String(127), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        key="id",
        indexes=[("node",)],
    )
    create_table(
        "fleet_meta",
        sa.Column("key", sa.String(63), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        key="key",
    )


def downgrade() -> None:
    drop_tables("fleet_meta", "fleet_alerts", "fleet_transitions", "fleet_nodes")
