"""Database URLs and engines: SQLite (default, one file, WAL) or PostgreSQL via psycopg 3.

SQLite connections take the write lock at BEGIN (BEGIN IMMEDIATE) so two processes that
write (two ingest replicas, or ingest and a migration) serialise instead of failing mid-way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, overload

import msgspec
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from cityedge.protocol.errors import ConfigError

__all__ = ["READ_ONLY", "as_utc", "make_engine", "parse_url", "reading", "safe_url"]

# Execution option for read-only work: SQLite then begins a deferred (shared) transaction.
READ_ONLY: Final = "cityedge_read_only"
SQLITE_BUSY_TIMEOUT_MS: Final = 30_000


def parse_url(url: str) -> URL:
    """Validate a store URL; `postgresql://` is read as `postgresql+psycopg://`."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"database url {url!r} is not a URL like sqlite:///cloud.db") from None
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend == "postgresql":
        if driver not in ("psycopg", "psycopg2"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        elif driver == "psycopg2":
            raise ConfigError(f"database url {safe_url(parsed)}: use postgresql+psycopg:// (psycopg 3)")
        return parsed
    if backend != "sqlite":
        raise ConfigError(f"database url {safe_url(parsed)}: only sqlite and postgresql are supported")
    return parsed


def safe_url(url: URL | str) -> str:
    """The URL with its password hidden, for logs and error messages."""
    try:
        return (url if isinstance(url, URL) else make_url(url)).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid url>"


def _json_dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def make_engine(url: str) -> Engine:
    """An engine with the pragmas and pooling the store relies on."""
    parsed = parse_url(url)
    options: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": msgspec.json.decode}
    if parsed.get_backend_name() == "postgresql":
        # A connection that died while the database blipped is replaced, not reused.
        engine = create_engine(parsed, pool_pre_ping=True, **options)
        return engine
    database = parsed.database or ""
    if database in ("", ":memory:"):
        engine = create_engine(parsed, poolclass=StaticPool, **options)
    else:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **options)
    _sqlite_events(engine)
    return engine


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction: on SQLite a deferred BEGIN, so a reader never waits for the write lock."""
    with engine.connect() as plain:
        conn = plain.execution_options(**{READ_ONLY: True})
        with conn.begin():
            yield conn


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """A stored time in UTC: SQLite hands back naive datetimes (stored as UTC), PostgreSQL aware ones."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own implicit BEGIN is turned off; `_begin` below issues ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit is on disk before ingest acknowledges the message to the broker.
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
