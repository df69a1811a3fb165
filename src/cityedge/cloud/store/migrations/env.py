"""Alembic environment: runs on the connection `cityedge.cloud.store.migrate` hands in.

That connection already holds the migration lock (an open write transaction on SQLite, an
advisory lock on PostgreSQL), so the upgrade runs inside it and commits with it.
"""

from __future__ import annotations

from alembic import context

from cityedge.cloud.store.schema import metadata

config = context.config
connection = config.attributes.get("connection")

if context.is_offline_mode():
    # `alembic upgrade --sql` for a DBA who wants to review the DDL.
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
elif connection is None:
    raise RuntimeError("run migrations through cityedge.cloud.store.migrate.upgrade(engine)")
else:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
