"""Certificates carry their profile (device, broker, api, ingest, revoker, dashboard).

Service certificates are recorded beside device certificates so `ca status` lists them by
expiry too; every row written before this revision is a device certificate.

Revision ID: 0004_operator
Revises: 0003_auth_releases
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_operator"
# Set to the newest revision at merge time (another branch adds 0003).
down_revision = "0003_auth_releases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(sa.Column("profile", sa.String(16), nullable=False, server_default="device"))


def downgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.drop_column("profile")
