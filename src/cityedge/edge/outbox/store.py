"""The outbox's SQLite adapter: records, per-stream sequence numbers, drop counters, quarantine.

WAL mode with synchronous=FULL: a commit returns only after the WAL is on stable storage,
so a record an append reported is there after a power loss. It does what the core decided
and nothing else; the driver serialises access.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from cityedge.edge.outbox.machine import StoredRow
from cityedge.edge.outbox.storage import Changes, Loaded, QuarantineEntry
from cityedge.protocol.acks import seq_ranges
from cityedge.protocol.errors import OutboxError

__all__ = ["DiskFullError", "SqliteStore"]

SCHEMA_VERSION: Final = 3
_IN_CHUNK: Final = 500  # well under SQLite's bound-parameter limit
_PRUNE_EVERY_S: Final = 60.0

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
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- messages refused at the door for what they are, kept (bounded) with their reason
CREATE TABLE IF NOT EXISTS quarantine (
    qid INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    source TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    size INTEGER NOT NULL,
    raw BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine_counts (
    reason TEXT PRIMARY KEY,
    n INTEGER NOT NULL
);
"""


class DiskFullError(OutboxError):
    """SQLite could not write: the disk (or the database's page limit) is full."""


class SqliteStore:
    """One connection to the outbox file; every method is called under the driver's lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)
        self._pruned_at = float("-inf")
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
            epoch = str(uuid.uuid4())
            self._db.executescript(
                f"BEGIN; {_SCHEMA} INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', '{epoch}');"  # noqa: S608 (a UUID made here)
                f" PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            )

    @contextmanager
    def _transaction(self, *, relaxed: bool = False) -> Iterator[None]:
        """One transaction; SQLite errors become OutboxError and nothing half-done stays.
        `relaxed` commits without waiting for the disk: only for writes whose loss is harmless
        (a lost store acknowledgement sends the record again; the cloud drops the copy)."""
        if relaxed:
            self._db.execute("PRAGMA synchronous = NORMAL")
        try:
            self._db.execute("BEGIN IMMEDIATE")
            yield
            self._db.execute("COMMIT")
        except BaseException as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise _translate(exc, self.path) from exc
            raise
        finally:
            if relaxed:
                self._db.execute("PRAGMA synchronous = FULL")

    def load(self) -> Loaded:
        rows = self._db.execute(
            "SELECT stream, seq, size, appended_at, expires_at FROM records ORDER BY stream, seq"
        )
        return Loaded(
            rows=[StoredRow(*row) for row in rows],
            last_seq=dict(self._db.execute("SELECT name, last_seq FROM streams")),
            drops={(s, r): n for s, r, n in self._db.execute("SELECT stream, reason, n FROM drops")},
            epoch=self._db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()[0],
        )

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

    def write(self, changes: Changes) -> None:
        """One durable transaction: evictions and expiries out, new records in, counters."""
        with self._transaction():
            self._db.executemany("DELETE FROM records WHERE stream = ? AND seq = ?", changes.deletes)
            self._db.executemany(
                "INSERT INTO records (id, stream, seq, appended_at, expires_at, size, payload)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                ((r.record_id, r.stream, r.seq, r.appended_at, r.expires_at, len(r.payload), r.payload)
                 for r in changes.inserts),
            )  # fmt: skip
            self._db.executemany(
                "INSERT INTO streams (name, last_seq) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET last_seq = excluded.last_seq",
                changes.last_seq.items(),
            )
            self._db.executemany(
                "INSERT INTO drops (stream, reason, n) VALUES (?, ?, ?)"
                " ON CONFLICT (stream, reason) DO UPDATE SET n = n + excluded.n",
                ((stream, reason, n) for (stream, reason), n in changes.drops.items() if n),
            )

    def read(self, stream: str, seqs: Sequence[int]) -> dict[int, tuple[str, bytes]]:
        """seq -> (record id, payload) for the records of `stream` among `seqs`."""
        if not seqs:
            return {}
        rows = self._db.execute(
            "SELECT seq, id, payload FROM records WHERE stream = ? AND seq BETWEEN ? AND ?",
            (stream, min(seqs), max(seqs)),
        )
        wanted = set(seqs)
        return {seq: (rid, payload) for seq, rid, payload in rows if seq in wanted}

    def delete_stored(self, stream: str, seqs: Sequence[int], now: float, keep: tuple[float, int]) -> None:
        """The store has them: delete, and remember their ids for `keep` = (seconds, at most)."""
        with self._transaction(relaxed=True):
            for low, high in seq_ranges(seqs):  # acknowledgements come as ranges: so do deletes
                gone = self._db.execute(
                    "DELETE FROM records WHERE stream = ? AND seq BETWEEN ? AND ? RETURNING id",
                    (stream, low, high),
                ).fetchall()
                self._db.executemany(
                    "INSERT OR REPLACE INTO acked (id, at) VALUES (?, ?)", ((g[0], now) for g in gone)
                )
            if now - self._pruned_at >= _PRUNE_EVERY_S:  # the count query walks the index: not per ack
                self._pruned_at = now
                self._db.execute("DELETE FROM acked WHERE at < ?", (now - keep[0],))
                self._db.execute(
                    "DELETE FROM acked WHERE at < (SELECT at FROM acked ORDER BY at DESC LIMIT 1 OFFSET ?)",
                    (keep[1],),
                )

    def quarantine(self, entry: QuarantineEntry, keep: int) -> None:
        with self._transaction():
            self._db.execute(
                "INSERT INTO quarantine (at, source, reason, detail, size, raw) VALUES (?, ?, ?, ?, ?, ?)",
                (entry.at, entry.source, entry.reason, entry.detail, entry.size, entry.raw),
            )
            self._db.execute(
                "INSERT INTO quarantine_counts (reason, n) VALUES (?, 1)"
                " ON CONFLICT (reason) DO UPDATE SET n = n + 1",
                (entry.reason,),
            )
            self._db.execute(
                "DELETE FROM quarantine WHERE qid <= (SELECT max(qid) FROM quarantine) - ?", (keep,)
            )

    def quarantined(self, limit: int) -> list[QuarantineEntry]:
        rows = self._db.execute(
            "SELECT at, source, reason, detail, size, raw FROM quarantine ORDER BY qid DESC LIMIT ?", (limit,)
        )
        return [QuarantineEntry(*row) for row in rows]

    def quarantine_counts(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT reason, n FROM quarantine_counts"))

    def close(self) -> None:
        self._db.close()


def _translate(exc: sqlite3.Error, path: Path) -> OutboxError:
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return DiskFullError(f"outbox at {path}: the disk is full ({exc})")
    return OutboxError(f"outbox at {path}: {exc}")


def _chunks(items: Sequence[str] | Sequence[int]) -> Iterator[Sequence[str] | Sequence[int]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]
