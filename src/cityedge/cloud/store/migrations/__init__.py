"""Alembic migrations of the cloud store, shipped inside the package (no alembic.ini needed)."""
