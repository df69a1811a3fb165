"""`RecordStore`: insert records idempotently (the record id is the key), read them back, and
keep what could not be stored in the quarantine.

Every write is one transaction. Duplicates are ignored by the database (ON CONFLICT DO
NOTHING on both dialects) and counted. Each backend has its own insert fast path
(`sqlite_insert.py`: multi-row INSERT; `pg_insert.py`: COPY into a staging table, then one
INSERT ... SELECT). Database failures become `StoreUnavailableError`
(worth retrying: the database is down or busy) or `StoreRejectedError` (this data cannot
be stored; retrying will not help).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

import msgspec
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError

from cityedge.cloud.store import pg_insert, sqlite_insert
from cityedge.cloud.store.engine import as_utc, make_engine, reading, safe_url
from cityedge.cloud.store.migrate import current_revision, upgrade
from cityedge.cloud.store.rows import (
    IngestRecord,
    InsertResult,
    QuarantinedItem,
    StoredQuarantine,
    StoredRecord,
)
from cityedge.cloud.store.schema import quarantine as t_quarantine
from cityedge.cloud.store.schema import records as t_records
from cityedge.protocol.errors import StoreError

__all__ = ["RecordStore", "StoreRejectedError", "StoreUnavailableError"]


_DATA_ERRORS = (DataError, IntegrityError)


class StoreUnavailableError(StoreError):
    """The database could not be reached or was busy; the same write may succeed later."""


class StoreRejectedError(StoreError):
    """The database refused this data (e.g. a value the backend cannot hold); do not retry."""


class RecordStore:
    """The cloud's record store. Open with `RecordStore.open(url)`; safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        self.url = safe_url(engine.url)

    @classmethod
    def open(cls, url: str) -> RecordStore:
        """Connect and migrate to the newest schema (idempotent, safe from two processes)."""
        engine = make_engine(url)
        store = cls(engine)
        with store._translate("migrate"):
            upgrade(engine)
        return store

    def close(self) -> None:
        self._engine.dispose()

    def revision(self) -> str | None:
        """The schema revision the database is at (Alembic)."""
        with self._translate("read of the schema revision"):
            return current_revision(self._engine)

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def insert(self, records: Sequence[IngestRecord], received_at: datetime) -> InsertResult:
        """Insert in one transaction; records whose id is already stored are counted, not stored."""
        if not records:
            return InsertResult(0, 0)
        received = as_utc(received_at)
        with self._translate(f"insert of {len(records)} records"), self._engine.begin() as conn:
            if self._dialect == "sqlite":
                inserted = sqlite_insert.insert_records(conn, records, received)
            else:
                inserted = pg_insert.insert_records(conn, records, received)
        by_stream = Counter(stream for _id, stream in inserted)
        return InsertResult(len(inserted), len(records) - len(inserted), dict(by_stream))

    def records(
        self,
        node: str | None = None,
        stream: str | None = None,
        limit: int | None = None,
        after: int | None = None,
    ) -> list[StoredRecord]:
        """Stored records in arrival order, optionally for one node and/or stream.

        `after` (an `arrival` already seen) pages forward: only records that arrived later.
        """
        query = select(t_records).order_by(t_records.c.arrival)
        if after is not None:
            query = query.where(t_records.c.arrival > after)
        if node is not None:
            query = query.where(t_records.c.node == node)
        if stream is not None:
            query = query.where(t_records.c.stream == stream)
        if limit is not None:
            query = query.limit(limit)
        with self._translate("read of records"), reading(self._engine) as conn:
            rows = conn.execute(query).mappings().all()
        return [
            StoredRecord(**{**row, "ts": as_utc(row["ts"]), "received_at": as_utc(row["received_at"])})
            for row in rows
        ]

    def counts(self) -> dict[str, int]:
        """Stored records per stream, plus "total"."""
        query = select(t_records.c.stream, func.count()).group_by(t_records.c.stream)
        with self._translate("count of records"), reading(self._engine) as conn:
            per_stream = {stream: int(n) for stream, n in conn.execute(query).all()}
        return {**dict(sorted(per_stream.items())), "total": sum(per_stream.values())}

    def quarantine(self, items: Sequence[QuarantinedItem], received_at: datetime) -> None:
        """Keep what could not be stored (raw, with its reason), in one transaction."""
        if not items:
            return
        at = as_utc(received_at)
        rows = [{**msgspec.structs.asdict(item), "size": len(item.raw), "received_at": at} for item in items]
        with self._translate(f"quarantine of {len(items)} items"), self._engine.begin() as conn:
            conn.execute(t_quarantine.insert(), rows)

    def quarantined(
        self, reason: str | None = None, node: str | None = None, limit: int | None = None
    ) -> list[StoredQuarantine]:
        """What is in the quarantine, oldest first, optionally by reason and node."""
        query = select(t_quarantine).order_by(t_quarantine.c.id)
        if reason is not None:
            query = query.where(t_quarantine.c.reason == reason)
        if node is not None:
            query = query.where(t_quarantine.c.node == node)
        if limit is not None:
            query = query.limit(limit)
        with self._translate("read of the quarantine"), reading(self._engine) as conn:
            rows = conn.execute(query).mappings().all()
        return [
            StoredQuarantine(**{**row, "raw": bytes(row["raw"]), "received_at": as_utc(row["received_at"])})
            for row in rows
        ]

    def quarantine_counts(self) -> dict[str, int]:
        query = select(t_quarantine.c.reason, func.count()).group_by(t_quarantine.c.reason)
        with self._translate("count of the quarantine"), reading(self._engine) as conn:
            return {reason: int(n) for reason, n in conn.execute(query).all()}

    @contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        try:
            yield
        except DBAPIError as exc:
            # Only errors about the data itself are final; anything else (down, locked,
            # disk, a missing table) is retried, because giving up would lose records.
            final = isinstance(exc, _DATA_ERRORS) and not exc.connection_invalidated
            kind = StoreRejectedError if final else StoreUnavailableError
            raise kind(f"{what} failed on {self.url}: {_first_line(exc.orig or exc)}") from exc
        except (StatementError, OverflowError) as exc:  # a value that could not even be sent
            raise StoreRejectedError(f"{what} failed on {self.url}: {_first_line(exc)}") from exc
        except SQLAlchemyError as exc:
            raise StoreUnavailableError(f"{what} failed on {self.url}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
