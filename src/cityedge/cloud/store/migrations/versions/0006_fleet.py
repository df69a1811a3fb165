"""Fleet: each node's status, its transitions, alert events and the fleet monitor's cursor.

Revision ID: 0006_fleet
Revises: 0005_quarantine
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from cityedge.cloud.store.migrations.ddl import create_table, drop_tables, id_column

revision = "0006_fleet"
down_revision = "0005_quarantine"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def _node_and_district() -> list[sa.Column[Any]]:
    """Which node a row is about, and its district: how the status and transition tables
    (and the queries over them) name a node."""
    return [
        sa.Column("node", sa.String(63), nullable=False),
        sa.Column("district", sa.String(63), nullable=False),
    ]


def upgrade() -> None:
    create_table(
        "fleet_nodes",
        *_node_and_district(),
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
        *_node_and_district(),
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
