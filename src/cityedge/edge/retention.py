"""Raw video retention on the node: camera streams copied into segments, kept for a time under a byte cap.

Segments are remuxed from the camera's compressed stream (PyAV stream copy, no re-encode)
and indexed in SQLite (WAL). `plan_deletions` is the pure policy: expired segments go, then
the oldest until the byte cap holds; a pinned clip (an incident's) stays until its pin ends.
A full or failing disk stops recording (counted), never the camera pipeline.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge
from pydantic import BaseModel, ConfigDict, Field

from cityedge.protocol.errors import CityEdgeError

__all__ = [
    "Deletion",
    "RetentionConfig",
    "RetentionError",
    "RetentionStore",
    "Segment",
    "SegmentIndex",
    "SegmentRecorder",
    "plan_deletions",
]

log = logging.getLogger(__name__)


class RetentionError(CityEdgeError):
    """The segment index failed an operation (names the index file)."""


class RetentionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    root: Path
    ttl_s: float = Field(default=24 * 3600.0, gt=0)
    max_bytes: int = Field(default=50 * 2**30, gt=0)
    segment_s: float = Field(default=10.0, ge=0)  # a new segment starts at the first keyframe after this
    min_free_bytes: int = Field(default=512 * 2**20, ge=0)  # recording pauses below this much free disk
    sweep_s: float = Field(default=60.0, gt=0)


@dataclass(frozen=True)
class Segment:
    id: int
    camera: str
    path: str
    start: float
    end: float
    bytes: int
    pinned_until: float  # 0.0: not pinned


@dataclass(frozen=True)
class Deletion:
    segment: Segment
    reason: str  # "expired" | "over_cap"


def plan_deletions(segments: Sequence[Segment], now: float, ttl_s: float, max_bytes: int) -> list[Deletion]:
    """Pure policy: which segments to delete now, and why. Pinned segments are kept until their pin ends."""
    out: list[Deletion] = []
    kept: list[Segment] = []
    for seg in sorted(segments, key=lambda s: (s.start, s.id)):
        if seg.end + ttl_s <= now and seg.pinned_until <= now:
            out.append(Deletion(seg, "expired"))
        else:
            kept.append(seg)
    total = sum(s.bytes for s in kept)
    for seg in kept:  # oldest first
        if total <= max_bytes:
            break
        if seg.pinned_until > now:
            continue
        out.append(Deletion(seg, "over_cap"))
        total -= seg.bytes
    return out


_SCHEMA = """
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY, camera TEXT NOT NULL, path TEXT NOT NULL UNIQUE,
    start REAL NOT NULL, "end" REAL NOT NULL, bytes INTEGER NOT NULL, pinned_until REAL NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS segments_start ON segments (start);
CREATE TABLE IF NOT EXISTS pins (
    id INTEGER PRIMARY KEY, camera TEXT NOT NULL, start REAL NOT NULL, "end" REAL NOT NULL,
    until REAL NOT NULL, reason TEXT NOT NULL);
"""


class SegmentIndex:
    """The SQLite (WAL) index of segments and pins; safe to share between camera threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise RetentionError(f"retention index {path}: {exc}") from exc

    def _run(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise RetentionError(f"retention index {self.path}: {exc}") from exc

    def add(self, camera: str, path: str, start: float, end: float, size: int) -> Segment:
        """Register a closed segment; pins made while it was recording apply to it."""
        [(until,)] = self._run(
            'SELECT COALESCE(MAX(until), 0) FROM pins WHERE camera = ? AND start < ? AND "end" > ?',
            (camera, end, start),
        )
        [(seg_id,)] = self._run(
            'INSERT INTO segments (camera, path, start, "end", bytes, pinned_until) '
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (camera, path, start, end, size, until),
        )
        return Segment(seg_id, camera, path, start, end, size, until)

    def pin(self, camera: str, start: float, end: float, until: float, reason: str) -> int:
        """Keep the segments of [start, end] until `until`; returns how many existing segments it covers."""
        self._run(
            'INSERT INTO pins (camera, start, "end", until, reason) VALUES (?, ?, ?, ?, ?)',
            (camera, start, end, until, reason),
        )
        rows = self._run(
            "UPDATE segments SET pinned_until = MAX(pinned_until, ?) "
            'WHERE camera = ? AND start < ? AND "end" > ? RETURNING id',
            (until, camera, end, start),
        )
        return len(rows)

    def segments(self, camera: str | None = None) -> list[Segment]:
        sql = 'SELECT id, camera, path, start, "end", bytes, pinned_until FROM segments'
        rows = self._run(sql + " WHERE camera = ? ORDER BY start", (camera,)) if camera else self._run(sql)
        return [Segment(*row) for row in rows]

    def remove(self, seg_ids: Sequence[int], now: float) -> None:
        for seg_id in seg_ids:
            self._run("DELETE FROM segments WHERE id = ?", (seg_id,))
        self._run("DELETE FROM pins WHERE until <= ?", (now,))

    def close(self) -> None:
        with self._lock:
            self._db.close()


class RetentionStore:
    """Segments of all cameras under one root: recorders, pins, and the deletion sweep."""

    def __init__(
        self,
        config: RetentionConfig,
        *,
        free_disk: Callable[[Path], int] | None = None,
        clock: Callable[[], float] = time.time,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.config = config
        config.root.mkdir(parents=True, exist_ok=True)
        self.index = SegmentIndex(config.root / "index.sqlite3")
        self.free_disk = free_disk or (lambda p: shutil.disk_usage(p).free)
        self.clock = clock
        self._sweep_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.deletions = Counter(
            "cityedge_retention_deletions", "Segments deleted, by reason", ["reason"], registry=registry
        )
        self.stopped = Counter(
            "cityedge_retention_recording_stopped",
            "Times recording stopped (disk full, write failure), by camera and reason",
            ["camera", "reason"],
            registry=registry,
        )
        self.bytes = Gauge("cityedge_retention_bytes", "Bytes of retained segments", registry=registry)

    def recorder(self, camera: str) -> SegmentRecorder:
        return SegmentRecorder(self, camera)

    def pin(self, camera: str, start: float, end: float, reason: str) -> int:
        """Pin the clip of [start, end] for the retention time from now."""
        return self.index.pin(camera, start, end, self.clock() + self.config.ttl_s, reason)

    def has_room(self) -> bool:
        return self.free_disk(self.config.root) >= self.config.min_free_bytes

    def enforce(self, now: float | None = None) -> list[Deletion]:
        """Delete what the policy says (files first, then index rows); returns the deletions."""
        now = self.clock() if now is None else now
        with self._sweep_lock:
            segments = self.index.segments()
            plan = plan_deletions(segments, now, self.config.ttl_s, self.config.max_bytes)
            for d in plan:
                Path(d.segment.path).unlink(missing_ok=True)
                self.deletions.labels(reason=d.reason).inc()
            self.index.remove([d.segment.id for d in plan], now)
            gone = {d.segment.id for d in plan}
            self.bytes.set(sum(s.bytes for s in segments if s.id not in gone))
        return plan

    def start(self) -> RetentionStore:
        self._thread = threading.Thread(target=self._sweep_loop, name="retention", daemon=True)
        self._thread.start()
        return self

    def request_sweep(self) -> None:
        """A segment closed: sweep soon, on the sweeper's thread (inline when it is not running)."""
        if self._thread is not None and self._thread.is_alive():
            self._wake.set()
        else:
            self.enforce()

    def _sweep_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.config.sweep_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.enforce()
            except Exception:
                log.exception("retention sweep failed")

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5.0)
        self.index.close()


class SegmentRecorder:
    """Copies one camera's compressed packets into segment files (a `PacketSink`); never raises."""

    def __init__(self, store: RetentionStore, camera: str) -> None:
        self.store = store
        self.camera = camera
        self._template: Any = None
        self._out: Any = None
        self._out_stream: Any = None
        self._path: Path | None = None
        self._start = 0.0
        self._last = 0.0
        self._paused: str | None = None
        self.segments_written = 0

    # --- PacketSink ----------------------------------------------------------------------------
    def open_stream(self, stream: Any) -> None:
        self._template = stream
        self._guarded(self._finish)  # timestamps restart with a new connection: never mix them in one file

    def packet(self, packet: Any, wall_time: float) -> None:
        try:
            self._packet(packet, wall_time)
        except Exception as exc:  # a write failure stops recording, never the camera
            self._stop_recording("write_failed", exc)

    def close_stream(self) -> None:
        self._guarded(self._finish)
        self._template = None

    def _guarded(self, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception as exc:
            self._stop_recording("write_failed", exc)

    def pin(self, start: float, end: float, reason: str) -> None:
        self.store.pin(self.camera, start, end, reason)

    # --- internals -----------------------------------------------------------------------------
    def _packet(self, packet: Any, wall_time: float) -> None:
        if self._template is None or packet.dts is None:
            return
        if packet.is_keyframe and (
            self._out is None or wall_time - self._start >= self.store.config.segment_s
        ):
            self._finish()
            if not self.store.has_room():
                self._stop_recording("disk_full")
                return
            self._open(wall_time)
        if self._out is None:
            return  # waiting for a keyframe: a segment must start decodable
        packet.stream = self._out_stream
        self._out.mux(packet)
        self._last = wall_time

    def _open(self, wall_time: float) -> None:
        stamp = datetime.fromtimestamp(wall_time, UTC).strftime("%Y%m%dT%H%M%S.%f")[:-3]
        folder = self.store.config.root / self.camera / stamp[:8]
        folder.mkdir(parents=True, exist_ok=True)
        # Matroska: playable even if cut short. The sequence number keeps names unique.
        self._path = folder / f"{self.camera}-{stamp}Z-{self.segments_written}.mkv"
        self._out = av.open(str(self._path), "w", format="matroska")
        self._out_stream = self._out.add_stream_from_template(self._template)
        self._start = self._last = wall_time
        if self._paused is not None:
            log.info("camera %s: recording resumed", self.camera)
            self._paused = None

    def _finish(self) -> None:
        if self._out is None:
            return
        out, path, self._out = self._out, self._path, None
        try:
            out.close()
        finally:
            if path is not None and path.exists():
                period = self._frame_period()
                self.store.index.add(
                    self.camera, str(path), self._start, self._last + period, path.stat().st_size
                )
                self.segments_written += 1
        self.store.request_sweep()

    def _frame_period(self) -> float:
        rate = getattr(self._template, "average_rate", None)
        return float(1 / rate) if rate else 0.0

    def _stop_recording(self, reason: str, exc: BaseException | None = None) -> None:
        if self._paused != reason:
            self.store.stopped.labels(camera=self.camera, reason=reason).inc()
            log.warning("camera %s: recording stopped (%s): %s", self.camera, reason, exc or "no free disk")
        self._paused = reason
        out, self._out = self._out, None
        if out is None:
            return
        try:
            out.close()
        except Exception:
            log.debug("closing a failed segment", exc_info=True)
        if self._path is not None:
            self._path.unlink(missing_ok=True)  # half-written and unindexed: do not leave it behind
