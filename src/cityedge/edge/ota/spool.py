"""Install reports on their way to the outbox.

The updater runs in the supervisor, the outbox belongs to the agent it supervises (one
writer per SQLite outbox). So the updater's `RecordSink` is a spool directory: one file per
report, written atomically; the agent's `SpoolDrain` commits each to the outbox (`ota`
stream) and deletes the file only after the commit. A crash in between resends; the
report's `report_id` lets the control plane count it once.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from cityedge.edge.records import RecordSink

__all__ = ["SpoolDrain", "SpoolSink", "drain"]

log = logging.getLogger(__name__)


class _Spooled(msgspec.Struct, frozen=True):
    stream: str
    kind: str
    body: dict[str, Any]
    ts: datetime


class SpoolSink:
    """A RecordSink that writes each record to `directory` durably."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def emit(self, stream: str, kind: str, body: dict[str, Any], ts: datetime) -> None:
        name = f"{ts.strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}.json"
        tmp = self.directory / f".{name}.tmp"
        with open(tmp, "wb") as f:
            f.write(msgspec.json.encode(_Spooled(stream, kind, body, ts)))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.directory / name)


def drain(directory: Path, sink: RecordSink) -> int:
    """Move every spooled record into `sink` in the order written; returns how many."""
    moved = 0
    for path in sorted(directory.glob("*.json")):
        try:
            rec = msgspec.json.decode(path.read_bytes(), type=_Spooled)
        except msgspec.DecodeError as exc:
            log.error("%s: unreadable spooled report, kept as .bad: %s", path, exc)
            path.rename(path.with_suffix(".bad"))
            continue
        sink.emit(rec.stream, rec.kind, rec.body, rec.ts)
        path.unlink()
        moved += 1
    return moved


class SpoolDrain:
    """Drains a spool into the agent's sink every `interval_s` (a thread in the agent)."""

    def __init__(self, directory: Path, sink: RecordSink, interval_s: float = 2.0) -> None:
        self.directory = directory
        self.sink = sink
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ota-spool", daemon=True)

    def start(self) -> SpoolDrain:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.directory.is_dir():
                try:
                    drain(self.directory, self.sink)
                except Exception:
                    log.exception("draining OTA reports from %s", self.directory)
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
