"""Cameras in worker processes: one Python interpreter per group of cameras, so one process's
GIL no longer caps how many cameras a box holds.

The agent keeps the single publisher. Each worker process (`worker_process.py`) runs an
ordinary `CameraPipeline` whose sink and local publisher send back over a pipe; a supervisor
thread here hands records to the agent's `RecordSink` and decisions to `publish_local`, and
mirrors each camera's reported counters and latencies into the agent's metrics and `stats()`.
A worker that dies is logged, counted and restarted after a backoff; `stop()` asks each worker
to stop, takes what it still sends, and joins it. `build_cameras` picks in-process or workers.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import multiprocessing
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Literal, Protocol

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from cityedge.edge.camera.config import CameraConfig
from cityedge.edge.camera.pipeline import (
    CameraMetrics,
    CameraPipeline,
    CameraStats,
    PublishLocal,
    RecorderFactory,
)
from cityedge.edge.camera.worker_process import worker_main
from cityedge.edge.records import RecordSink

__all__ = ["CameraView", "Cameras", "ProcessPipeline", "RemoteCamera", "build_cameras", "process_count"]

log = logging.getLogger(__name__)

_Samples = list[tuple[float, float]]  # (capture time, latency) per judged frame

_BACKOFF_S = (1.0, 30.0)  # first restart after 1 s, doubling to 30 s while a worker keeps dying
_HEALTHY_S = 60.0  # a worker that ran this long starts again from the first backoff


class CameraView(Protocol):
    """One camera as the agent sees it: a `CameraWorker` here, or a `RemoteCamera`."""

    camera: str

    def latencies(self, since: float = 0.0) -> list[float]: ...


class Cameras(Protocol):
    """What the agent and the benchmark need of a node's cameras, wherever they run."""

    @property
    def workers(self) -> Sequence[CameraView]: ...

    def start(self, stagger_s: float = 0.0) -> Any: ...
    def stop(self) -> None: ...
    def stats(self, since: float = 0.0) -> list[CameraStats]: ...
    def latencies(self, since: float = 0.0) -> list[float]: ...


def process_count(cameras: int, processes: int | Literal["auto"], cameras_per_process: int) -> int:
    """Worker processes for `cameras` cameras; 0 means all of them in the agent's own process.

    `auto`: none while the cameras fit in one group, else one process per group of at most
    `cameras_per_process`. A number is taken as it is (never more processes than cameras)."""
    if processes == "auto":
        return 0 if cameras <= cameras_per_process else math.ceil(cameras / cameras_per_process)
    return min(processes, cameras)


def build_cameras(
    cameras: Sequence[CameraConfig],
    processes: int,
    *,
    sink: RecordSink,
    publish_local: PublishLocal,
    registry: CollectorRegistry = REGISTRY,
    recorders: RecorderFactory | None = None,
    retention: dict[str, Any] | None = None,
) -> CameraPipeline | ProcessPipeline:
    """The node's cameras in this process (`processes` 0) or spread over that many workers.

    `recorders` serves the in-process pipeline; a worker opens the retention store itself
    from its configuration (`retention`)."""
    if processes > 0 and multiprocessing.current_process().daemon:
        # Python lets no daemonic process (a pilot's node, say) start children of its own.
        log.warning("cameras: this process is daemonic and cannot start camera workers; all in-process")
        processes = 0
    if processes <= 0:
        return CameraPipeline(
            cameras, sink=sink, publish_local=publish_local, registry=registry, recorders=recorders
        )
    return ProcessPipeline(
        cameras, processes, sink=sink, publish_local=publish_local, registry=registry, retention=retention
    )


class RemoteCamera:
    """What the agent knows of a camera in a worker process: the sum of its reports."""

    def __init__(self, camera: str, metrics: CameraMetrics) -> None:
        self.camera = camera
        self._m = metrics
        self._lock = threading.Lock()
        self._samples: collections.deque[tuple[float, float]] = collections.deque(maxlen=50_000)
        self._recent: collections.deque[float] = collections.deque(maxlen=30)
        self.totals: collections.Counter[str] = collections.Counter()
        self.state, self.reason = "connecting", "worker process starting"

    @property
    def processed(self) -> int:
        return self.totals["processed"]

    def update(self, report: dict[str, Any]) -> None:
        samples: list[tuple[float, float]] = [(t, lat) for t, lat in report["samples"]]
        deltas: dict[str, int] = report["deltas"]
        with self._lock:
            self.totals.update(deltas)
            self._samples.extend(samples)
            self._recent.extend(t for t, _ in samples)
            self.state, self.reason = report["state"], report["reason"]
            fps = self._fps()
        self._mirror(samples, deltas, fps, report["state"] == "streaming")

    def _mirror(self, samples: _Samples, deltas: dict[str, int], fps: float, on: bool) -> None:
        cam = self.camera
        latency = self._m.latency.labels(camera=cam)
        for _, lat in samples:
            latency.observe(lat)
        self._m.frames.labels(camera=cam).inc(max(0, deltas.get("processed", 0)))
        self._m.dropped.labels(camera=cam, reason="behind").inc(max(0, deltas.get("dropped", 0)))
        self._m.dropped.labels(camera=cam, reason="thinned").inc(max(0, deltas.get("thinned", 0)))
        for key, n in deltas.items():
            if key.startswith("error:") and n > 0:
                self._m.errors.labels(camera=cam, stage=key.removeprefix("error:")).inc(n)
        self._m.fps.labels(camera=cam).set(fps)
        self._m.streaming.labels(camera=cam).set(1 if on else 0)

    def worker_exited(self, reason: str) -> None:
        with self._lock:
            self.state, self.reason = "stopped", reason
        self._m.streaming.labels(camera=self.camera).set(0)

    def _fps(self) -> float:
        r = self._recent
        return (len(r) - 1) / (r[-1] - r[0]) if len(r) > 1 and r[-1] > r[0] else 0.0

    def latencies(self, since: float = 0.0) -> list[float]:
        with self._lock:
            return [lat for t, lat in self._samples if t >= since]

    def stats(self, since: float = 0.0) -> CameraStats:
        lat = self.latencies(since)
        p50, p95, p99 = (float(np.percentile(lat, q) * 1000) for q in (50, 95, 99)) if lat else (None,) * 3
        with self._lock:
            t, fps, state, reason = self.totals, self._fps(), self.state, self.reason
            return CameraStats(
                self.camera, t["processed"], t["dropped"], fps, p50, p95, p99, state, reason,
                t["inferences"], t["thinned"],
            )  # fmt: skip


@dataclass
class _Worker:
    index: int
    cameras: list[CameraConfig]
    process: Any = None
    conn: Connection | None = None
    started: float = 0.0
    backoff_s: float = _BACKOFF_S[0]
    restart_at: float | None = None
    restarts: int = 0
    exit_codes: list[int | None] = field(default_factory=list)


class ProcessPipeline:
    """A node's cameras spread round-robin over `processes` worker processes."""

    def __init__(
        self,
        cameras: Sequence[CameraConfig],
        processes: int,
        *,
        sink: RecordSink,
        publish_local: PublishLocal,
        registry: CollectorRegistry = REGISTRY,
        retention: dict[str, Any] | None = None,
        report_s: float = 0.5,
    ) -> None:
        if processes < 1 or not cameras:
            raise ValueError("a process pipeline needs at least one camera and one worker process")
        self._sink = sink
        self._publish = publish_local
        self._metrics = CameraMetrics(registry)
        self.restarts = Counter(
            "cityedge_camera_worker_restarts",
            "Camera worker processes that exited unasked and were started again",
            ["worker"],
            registry=registry,
        )
        self._options: dict[str, Any] = {"report_s": report_s, "retention": retention}
        self.views = {c.id: RemoteCamera(c.id, self._metrics) for c in cameras}
        n = min(processes, len(cameras))
        self.slots = [_Worker(i, list(cameras[i::n])) for i in range(n)]
        self._ctx = multiprocessing.get_context("spawn")  # the agent has threads: never fork it
        self._lock = threading.Lock()
        self._stopping = False
        self._thread: threading.Thread | None = None

    @property
    def workers(self) -> list[RemoteCamera]:
        return list(self.views.values())

    def pids(self) -> list[int]:
        return [s.process.pid for s in self.slots if s.process is not None and s.process.is_alive()]

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self, stagger_s: float = 0.0) -> ProcessPipeline:
        self._options["stagger_s"] = stagger_s * len(self.slots)  # between one worker's cameras
        for slot in self.slots:
            with self._lock:
                self._spawn(slot)
            if stagger_s > 0:
                time.sleep(stagger_s)
        self._thread = threading.Thread(target=self._supervise, name="camera-processes", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Ask every worker to stop, take what they still send, join them (kill a stuck one)."""
        with self._lock:
            self._stopping = True
            for slot in self.slots:
                if slot.conn is not None:
                    with contextlib.suppress(OSError):  # it is gone already
                        slot.conn.send("stop")
        if self._thread is not None:
            self._thread.join(timeout)
        for slot in self.slots:
            _end(slot)

    def _spawn(self, slot: _Worker) -> None:
        if self._stopping:
            return
        mine, theirs = self._ctx.Pipe(duplex=True)
        configs = [c.model_dump(mode="json") for c in slot.cameras]
        slot.process = self._ctx.Process(
            target=worker_main,
            args=(configs, theirs, self._options),
            name=f"cityedge-cameras-{slot.index}",
            daemon=True,
        )
        slot.process.start()
        theirs.close()
        slot.conn, slot.started, slot.restart_at = mine, time.monotonic(), None
        log.info("camera worker %d (pid %d): %s", slot.index, slot.process.pid, _names(slot))

    # --- supervision -------------------------------------------------------------------------
    def _supervise(self) -> None:
        while True:
            conns = [s.conn for s in self.slots if s.conn is not None]
            if self._stopping and not conns:
                return
            sentinels = [s.process.sentinel for s in self.slots if s.conn is None and _alive(s)]
            ready = wait([*conns, *sentinels], timeout=0.2)
            for slot in self.slots:
                if slot.conn is not None and slot.conn in ready:
                    self._receive(slot)
                self._check(slot)

    def _receive(self, slot: _Worker) -> None:
        assert slot.conn is not None
        try:
            while slot.conn.poll():
                self._dispatch(slot.conn.recv())
        except (EOFError, OSError):
            slot.conn.close()  # the worker ended (asked to, or not): everything it sent is in
            slot.conn = None

    def _dispatch(self, batch: list[tuple[Any, ...]]) -> None:
        for message in batch:
            kind = message[0]
            if kind == "emit":
                self._emit(*message[1:])
            elif kind == "publish":
                self._publish_local(message[1], message[2])
            elif kind == "stats":
                for report in message[1]:
                    self.views[report["camera"]].update(report)

    def _emit(self, stream: str, kind: str, body: dict[str, Any], ts: Any) -> None:
        try:
            self._sink.emit(stream, kind, body, ts)
        except Exception:
            camera = str(body.get("camera", "?"))
            log.exception("camera %s: recording %s/%s failed", camera, stream, kind)
            self._metrics.errors.labels(camera=camera, stage="record").inc()

    def _publish_local(self, suffix: str, payload: bytes) -> None:
        try:
            self._publish(suffix, payload)
        except Exception:
            camera = suffix.rsplit("/", 1)[-1]
            log.exception("camera %s: local publish failed", camera)
            self._metrics.errors.labels(camera=camera, stage="publish").inc()

    def _check(self, slot: _Worker) -> None:
        """A worker that exited unasked (its pipe drained) is restarted after a backoff."""
        if slot.conn is not None or slot.process is None or _alive(slot):
            return
        with self._lock:
            if self._stopping:
                return
            now = time.monotonic()
            if slot.restart_at is None:
                self._died(slot, now)
            elif now >= slot.restart_at:
                self._spawn(slot)

    def _died(self, slot: _Worker, now: float) -> None:
        code = slot.process.exitcode
        slot.exit_codes.append(code)
        slot.backoff_s = _BACKOFF_S[0] if now - slot.started >= _HEALTHY_S else slot.backoff_s
        slot.restart_at = now + slot.backoff_s
        slot.restarts += 1
        self.restarts.labels(worker=str(slot.index)).inc()
        reason = f"camera worker {slot.index} exited with code {code}; restarting in {slot.backoff_s:.0f} s"
        log.error("%s (cameras %s)", reason, _names(slot))
        for cam in slot.cameras:
            self.views[cam.id].worker_exited(reason)
        slot.backoff_s = min(slot.backoff_s * 2, _BACKOFF_S[1])

    # --- what the agent reads ----------------------------------------------------------------
    def stats(self, since: float = 0.0) -> list[CameraStats]:
        return [v.stats(since) for v in self.views.values()]

    def latencies(self, since: float = 0.0) -> list[float]:
        return [x for v in self.views.values() for x in v.latencies(since)]


def _alive(slot: _Worker) -> bool:
    return slot.process is not None and slot.process.exitcode is None


def _names(slot: _Worker) -> str:
    return ", ".join(c.id for c in slot.cameras)


def _end(slot: _Worker) -> None:
    if slot.process is None:
        return
    slot.process.join(10.0)
    if slot.process.exitcode is None:
        log.warning("camera worker %d did not stop; killing it", slot.index)
        slot.process.kill()
        slot.process.join(5.0)
