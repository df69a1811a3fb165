"""Fresh, isolated databases for tests: a SQLite file or a new PostgreSQL database per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .services import postgres_available, require

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


@contextmanager
def fresh_database(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'cloud.db'}"
        return
    require(postgres_available(), "PostgreSQL at 127.0.0.1:5432 (database test)")
    import psycopg

    name = f"cityedge_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
