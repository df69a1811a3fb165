"""The inside of one camera worker process (`processes.py` is the agent's side).

It runs an ordinary `CameraPipeline` for its group of cameras. What the pipeline records or
publishes is queued and sent to the agent over the pipe by one thread, in batches; twice a
second it also sends each camera's counters and latency samples since the previous report.
It stops when the agent says so or its end of the pipe closes (the agent is gone).
"""

from __future__ import annotations

import logging
import queue
import threading
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

from prometheus_client import CollectorRegistry

from cityedge.edge.camera.config import CameraConfig
from cityedge.edge.camera.pipeline import CameraPipeline, CameraWorker

__all__ = ["worker_main"]

log = logging.getLogger(__name__)

_BATCH = 512  # messages per send at most


def worker_main(cameras: list[dict[str, Any]], conn: Connection, options: dict[str, Any]) -> None:
    """Entry point of a worker process (started with `spawn`: it shares nothing with the agent)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.WARNING,
            format="%(asctime)s camera-worker[%(process)d] %(levelname)s %(name)s: %(message)s",
        )
    configs = [CameraConfig.model_validate(c) for c in cameras]
    registry = CollectorRegistry()
    out = _Outgoing(conn)
    retention = _retention(options.get("retention"), registry)
    pipeline = CameraPipeline(
        configs,
        sink=out,
        publish_local=out.publish,
        registry=registry,
        recorders=retention.recorder if retention is not None else None,
    )
    reporter = _Reporter(pipeline.workers, registry)
    pipeline.start(float(options.get("stagger_s", 0.0)))
    try:
        while not _stop_requested(conn, float(options.get("report_s", 0.5))):
            out.put(("stats", reporter.report()))
    finally:
        pipeline.stop()
        out.put(("stats", reporter.report()))
        out.close()
        if retention is not None:
            retention.stop()
        conn.close()


def _retention(section: dict[str, Any] | None, registry: CollectorRegistry) -> Any:
    """The node's retention store, opened again in this process (one SQLite WAL index shared by
    all processes); the agent's own store runs the deletion sweep."""
    if section is None:
        return None
    from cityedge.edge.retention import RetentionConfig, RetentionStore

    return RetentionStore(RetentionConfig.model_validate(section), registry=registry)


def _stop_requested(conn: Connection, timeout: float) -> bool:
    try:
        if conn.poll(timeout):
            return bool(conn.recv() == "stop")
    except (EOFError, OSError):
        return True  # the agent is gone: nobody would take what we make
    return False


class _Outgoing:
    """The worker's `RecordSink` and local publisher: a queue, drained to the pipe by one thread."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="camera-outgoing", daemon=True)
        self._thread.start()

    def emit(self, stream: str, kind: str, body: dict[str, Any], ts: datetime) -> None:
        self._queue.put(("emit", stream, kind, body, ts))

    def publish(self, suffix: str, payload: bytes) -> bool:
        self._queue.put(("publish", suffix, payload))
        return True

    def put(self, message: tuple[Any, ...]) -> None:
        self._queue.put(message)

    def close(self) -> None:
        """Send what is queued, then stop the sending thread."""
        self._queue.put(None)
        self._thread.join(30.0)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < _BATCH and batch[-1] is not None:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            done = batch[-1] is None
            messages = [m for m in batch if m is not None]
            try:
                if messages:
                    self._conn.send(messages)
            except OSError:
                log.warning("camera worker: the agent's pipe is closed; %d messages not sent", len(messages))
                return
            if done:
                return


class _Reporter:
    """Each camera's counters as deltas since the previous report, and its new latency samples."""

    def __init__(self, workers: list[CameraWorker], registry: CollectorRegistry) -> None:
        self._workers = workers
        self._registry = registry
        self._last: dict[str, dict[str, int]] = {w.camera: {} for w in workers}
        for worker in workers:
            worker.collect_samples()

    def report(self) -> list[dict[str, Any]]:
        errors = self._errors()
        return [self._camera(w, errors) for w in self._workers]

    def _camera(self, worker: CameraWorker, errors: dict[tuple[str, str], int]) -> dict[str, Any]:
        status = worker.source.status()
        totals = {
            "processed": worker.processed,
            "thinned": worker.thinned,
            "dropped": status.dropped,
            "inferences": int(getattr(worker.perception.detector, "inferences", 0)),
        }
        totals |= {f"error:{stage}": n for (cam, stage), n in errors.items() if cam == worker.camera}
        last = self._last[worker.camera]
        deltas = {key: value - last.get(key, 0) for key, value in totals.items()}
        self._last[worker.camera] = totals
        return {
            "camera": worker.camera,
            "deltas": deltas,
            "samples": worker.take_samples(),
            "state": status.state.value,
            "reason": status.reason,
        }

    def _errors(self) -> dict[tuple[str, str], int]:
        found: dict[tuple[str, str], int] = {}
        for metric in self._registry.collect():
            if metric.name != "cityedge_camera_errors":
                continue
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    found[(sample.labels["camera"], sample.labels["stage"])] = int(sample.value)
        return found
