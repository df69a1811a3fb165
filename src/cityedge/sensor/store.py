"""The sensor client's own disk: every reading stays here until the agent confirms it.

SQLite in WAL mode with synchronous=FULL: `add` returns only once the reading survives a
power cut, so a sensor never loses a reading that its caller handed over.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from cityedge.protocol.errors import ConfigError

__all__ = ["Pending", "ReadingStore"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS readings (
    id TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created REAL NOT NULL,
    sent_at REAL NOT NULL,
    attempts INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS readings_sent ON readings (sent_at);
"""

Pending = tuple[str, str, bytes]  # id, topic, payload


class ReadingStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(f"sensor store at {path}: cannot open: {exc}") from None
        self._lock = threading.Lock()

    @contextmanager
    def _tx(self, *, relaxed: bool = False) -> Iterator[None]:
        with self._lock:
            if relaxed:
                self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            finally:
                if relaxed:
                    self._db.execute("PRAGMA synchronous = FULL")

    def add(self, readings: Sequence[Pending], now: float) -> None:
        with self._tx():
            self._db.executemany(
                "INSERT OR IGNORE INTO readings (id, topic, payload, created, sent_at, attempts)"
                " VALUES (?, ?, ?, ?, 0, 0)",
                [(rid, topic, payload, now) for rid, topic, payload in readings],
            )

    def due(self, older_than: float, limit: int) -> list[Pending]:
        """Readings not sent since `older_than` (never-sent ones first), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload FROM readings WHERE sent_at <= ?"
                " ORDER BY sent_at, created LIMIT ?",
                (older_than, limit),
            ).fetchall()
        return [(r[0], r[1], bytes(r[2])) for r in rows]

    def mark_sent(self, ids: Sequence[str], now: float) -> None:
        with self._tx(relaxed=True):
            self._db.executemany(
                "UPDATE readings SET sent_at = ?, attempts = attempts + 1 WHERE id = ?",
                [(now, i) for i in ids],
            )

    def forget(self, ids: Sequence[str]) -> int:
        """The agent has them (or refused them for good): they may go. Needs no disk sync: a
        confirmation lost in a power cut only costs a resend the agent recognises."""
        with self._tx(relaxed=True):
            cur = self._db.executemany("DELETE FROM readings WHERE id = ?", [(i,) for i in ids])
            return cur.rowcount

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM readings").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
