"""Registry: devices from the inventory, hashed enrollment tokens, issued certificates.

Revision ID: 0002_registry
Revises: 0001_records
"""

from __future__ import annotations

import sqlalchemy as sa

from cityedge.cloud.store.migrations.ddl import create_table, create_token_table, drop_tables

revision = "0002_registry"
down_revision = "0001_records"
branch_labels = None
depends_on = None

# The columns a device has in the inventory file (registry.inventory.COLUMNS): each one a
# required string of at most this many characters.
_INVENTORY = {"device_id": 63, "serial": 128, "model": 128, "ip": 64, "mac": 17, "sim": 128}


def upgrade() -> None:
    create_table(
        "devices",
        *(sa.Column(name, sa.String(width), nullable=False) for name, width in _INVENTORY.items()),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        key="device_id",
        unique=["serial", "mac"],
    )
    create_token_table(
        "enrollment_tokens",
        sa.Column("serial", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    create_table(
        "certificates",
        sa.Column("serial", sa.String(40), nullable=False),
        sa.Column("device_id", sa.String(63), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        key="serial",
        indexes=[("device_id",), ("not_after",)],
    )


def downgrade() -> None:
    drop_tables("certificates", "enrollment_tokens", "devices")
