"""The outbox's SQLite adapter: records, per-stream sequence numbers and drop counters on disk.

WAL mode with synchronous=FULL: a commit returns only after the WAL is on stable storage,
so a record an append reported is there after a power loss. The caller serialises access.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cityedge.protocol.errors import OutboxError

__all__ = ["DiskFullError", "NewRecord", "SqliteStore", "StoreState", "StoredRecord"]

SCHEMA_VERSION: Final = 2
_IN_CHUNK: Final = 500  # well under SQLite's bound-parameter limit

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS records (
    rid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    appended_at REAL NOT NULL,
    expires_at REAL,
    size INTEGER NOT NULL,
    payload BLOB NOT NULL,
    UNIQUE (stream, seq)
);
CREATE INDEX IF NOT EXISTS records_expiry ON records (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS streams (
    name TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
);
-- ids acknowledged recently: a redelivery of one (a local broker resending after a crash)
-- is a duplicate, not a new record with a new seq (which would look like a gap upstream)
CREATE TABLE IF NOT EXISTS acked (
    id TEXT PRIMARY KEY,
    at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS acked_at ON acked (at);
CREATE TABLE IF NOT EXISTS drops (
    stream TEXT NOT NULL,
    reason TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (stream, reason)
);
"""


class DiskFullError(OutboxError):
    """SQLite could not write: the disk (or the database's page limit) is full."""


@dataclass(frozen=True, slots=True)
class NewRecord:
    record_id: str
    stream: str
    seq: int
    appended_at: float
    expires_at: float | None
    payload: bytes


@dataclass(frozen=True, slots=True)
class StoredRecord:
    record_id: str
    seq: int
    size: int
    appended_at: float
    expires_at: float | None
    payload: bytes | None  # None when the caller asked for metadata only


@dataclass(frozen=True)
class StoreState:
    """Everything the driver keeps in memory, as read from disk at open."""

    usage: dict[str, tuple[int, int]]  # stream -> (records, bytes)
    last_seq: dict[str, int]
    drops: dict[tuple[str, str], int]


class SqliteStore:
    """One connection to the outbox file; every method is called under the driver's lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except (sqlite3.Error, OSError) as exc:
            raise OutboxError(f"cannot open the outbox at {path}: {exc}") from exc
        try:
            self._configure()
        except (sqlite3.Error, OutboxError) as exc:
            self._db.close()
            if isinstance(exc, OutboxError):
                raise
            raise OutboxError(f"cannot open the outbox at {path}: {exc}") from exc

    def _configure(self) -> None:
        self._db.execute("PRAGMA busy_timeout = 5000")
        mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise OutboxError(f"the outbox at {self.path} cannot use WAL mode (got {mode!r})")
        # FULL: in WAL mode NORMAL may lose the last commits on power loss; an append we
        # reported as committed must survive that.
        self._db.execute("PRAGMA synchronous = FULL")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise OutboxError(f"the outbox at {self.path} has schema {version}, newer than {SCHEMA_VERSION}")
        if version < SCHEMA_VERSION:
            self._db.executescript(f"BEGIN; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One durable transaction; SQLite errors become OutboxError and nothing half-done stays."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise OutboxError(f"outbox at {self.path}: cannot begin a transaction: {exc}") from exc
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise _translate(exc, self.path) from exc
            raise

    def load(self) -> StoreState:
        rows = self._db.execute(
            "SELECT stream, COUNT(*), COALESCE(SUM(size), 0) FROM records GROUP BY stream"
        )
        usage = {stream: (count, int(size)) for stream, count, size in rows}
        last_seq = dict(self._db.execute("SELECT name, last_seq FROM streams"))
        drops = {(s, r): n for s, r, n in self._db.execute("SELECT stream, reason, n FROM drops")}
        return StoreState(usage, last_seq, drops)

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Ids among `ids` that are in the outbox or were acknowledged recently."""
        found: set[str] = set()
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT id FROM records WHERE id IN ({marks})"  # noqa: S608
                f" UNION ALL SELECT id FROM acked WHERE id IN ({marks})",
                (*chunk, *chunk),
            )
            found.update(row[0] for row in rows)
        return found

    def remember_acked(self, ids: Iterable[str], at: float) -> None:
        self._db.executemany("INSERT OR REPLACE INTO acked (id, at) VALUES (?, ?)", ((i, at) for i in ids))

    def forget_acked(self, before: float, keep_at_most: int) -> None:
        """Forget acknowledgements older than `before`, and all but the newest `keep_at_most`."""
        self._db.execute("DELETE FROM acked WHERE at < ?", (before,))
        self._db.execute(
            "DELETE FROM acked WHERE at < (SELECT at FROM acked ORDER BY at DESC LIMIT 1 OFFSET ?)",
            (keep_at_most,),
        )

    @contextmanager
    def relaxed_sync(self) -> Iterator[None]:
        """Commits without waiting for the disk. Only for writes whose loss is harmless: an ack
        lost in a power cut sends the record again, and the cloud drops the copy by id. The
        next FULL commit syncs the WAL, these frames included."""
        self._db.execute("PRAGMA synchronous = NORMAL")
        try:
            yield
        finally:
            self._db.execute("PRAGMA synchronous = FULL")

    def insert(self, records: Iterable[NewRecord]) -> None:
        self._db.executemany(
            "INSERT INTO records (id, stream, seq, appended_at, expires_at, size, payload)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (r.record_id, r.stream, r.seq, r.appended_at, r.expires_at, len(r.payload), r.payload)
                for r in records
            ),
        )

    def save_last_seq(self, last_seq: Mapping[str, int]) -> None:
        self._db.executemany(
            "INSERT INTO streams (name, last_seq) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET last_seq = excluded.last_seq",
            last_seq.items(),
        )

    def add_drops(self, counts: Mapping[tuple[str, str], int]) -> None:
        self._db.executemany(
            "INSERT INTO drops (stream, reason, n) VALUES (?, ?, ?)"
            " ON CONFLICT (stream, reason) DO UPDATE SET n = n + excluded.n",
            ((stream, reason, n) for (stream, reason), n in counts.items() if n),
        )

    def scan(self, stream: str, from_seq: int, limit: int, *, payload: bool) -> list[StoredRecord]:
        """Up to `limit` records of `stream` with seq >= from_seq, in seq order."""
        column = "payload" if payload else "NULL"
        rows = self._db.execute(
            f"SELECT id, seq, size, appended_at, expires_at, {column} FROM records"  # noqa: S608
            " WHERE stream = ? AND seq >= ? ORDER BY seq LIMIT ?",
            (stream, from_seq, limit),
        )
        return [StoredRecord(*row) for row in rows]

    def expired(self, now: float) -> list[tuple[str, str, int]]:
        """(id, stream, size) of every record whose time-to-live has passed at `now`."""
        rows = self._db.execute(
            "SELECT id, stream, size FROM records WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,)
        )
        return rows.fetchall()

    def delete(self, ids: Sequence[str]) -> list[tuple[str, str, int]]:
        """Delete records by id; returns (id, stream, size) of those that were there."""
        gone: list[tuple[str, str, int]] = []
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            cur = self._db.execute(
                f"DELETE FROM records WHERE id IN ({marks}) RETURNING id, stream, size",  # noqa: S608
                chunk,
            )
            gone.extend(cur.fetchall())
        return gone

    def oldest_appended_at(self, stream: str) -> float | None:
        row = self._db.execute(
            "SELECT appended_at FROM records WHERE stream = ? ORDER BY seq LIMIT 1", (stream,)
        ).fetchone()
        return None if row is None else float(row[0])

    def close(self) -> None:
        self._db.close()


def _translate(exc: sqlite3.Error, path: Path) -> OutboxError:
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return DiskFullError(f"outbox at {path}: the disk is full ({exc})")
    return OutboxError(f"outbox at {path}: {exc}")


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]
