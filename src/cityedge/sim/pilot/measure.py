"""What a pilot run measured, taken from the running parts once the cameras stopped and the links drained.

Everything the judge and the report use comes from here, and all of it from the run itself:
per-frame latencies kept by each camera worker, every stored record (source timestamp and
the time the store committed it), the nodes' outbox counters, the outage windows as they
happened, what the pixel monitor saw on the cloud broker, and each node's retention store.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CameraData",
    "Measurements",
    "NodeData",
    "Record",
    "collect_camera",
    "collect_node",
    "retention_check",
]


@dataclass
class CameraData:
    node: str
    camera: str
    latencies_ms: list[float]
    frames: int  # judged in the steady window
    window_s: float
    worst_window_fps: float
    truth: list[dict[str, Any]]  # ground truth in wall time, decoys removed
    thinned: int = 0  # frames the node skipped because they came faster than the camera's fps
    behind: int = 0  # frames replaced in the mailbox before the pipeline took them
    frames_sent: int = 0
    max_late_s: float = 0.0
    error: str | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.window_s if self.window_s > 0 else 0.0


@dataclass(frozen=True)
class Record:
    node: str
    stream: str
    kind: str
    seq: int
    ts: float  # source timestamp (Unix s)
    stored: float  # committed in the cloud store (Unix s)


@dataclass
class NodeData:
    node: str
    committed: dict[str, int]  # stream -> last sequence number committed to the outbox
    dropped: int  # records the outbox dropped by policy (full, time-to-live)
    pending: int  # still in the outbox when the run ended
    retention: dict[str, Any] = field(default_factory=dict)
    link: dict[str, float | None] = field(default_factory=dict)


@dataclass
class Measurements:
    broker: str
    started_at: float
    ended_at: float
    cameras: list[CameraData]
    nodes: list[NodeData]
    records: list[Record]
    incidents: list[dict[str, Any]]  # stored incident records: node, camera, type, lane, detected_at
    outages: list[tuple[str, float, float]]  # node, start, end (wall time)
    monitor_messages: int = 0
    monitor_bytes: int = 0
    monitor_violations: list[str] = field(default_factory=list)
    redeliveries: int = 0  # copies ingest received again and the store ignored
    stray_video: list[str] = field(default_factory=list)  # raw video files outside the nodes
    rollout: dict[str, Any] | None = None  # the spec's rollout, as `PilotRollout.finish` collected it


def collect_camera(worker: Any, node: str, start: float, end: float, window_s: float = 10.0) -> CameraData:
    """Latencies of every frame captured in [start, end] and the frame rate over that window."""
    since_start = worker.latencies(start)
    frames = len(since_start) - len(worker.latencies(end))
    latencies = [1000.0 * x for x in since_start[:frames]]
    counts = []
    t = start
    while t + window_s <= end:
        counts.append((len(worker.latencies(t)) - len(worker.latencies(t + window_s))) / window_s)
        t += window_s
    data = CameraData(node, worker.camera, latencies, frames, end - start, min(counts, default=0.0), [])
    data.thinned, data.behind = worker.thinned, worker.source.dropped
    return data


def collect_node(agent: Any, node: str) -> NodeData:
    stats = agent.outbox.stats()
    committed = {name: s.last_seq for name, s in stats.streams.items() if s.last_seq}
    dropped = sum(stats.drops.values())
    return NodeData(node, committed, dropped, stats.total_records)


def retention_check(agent: Any, node_dir: Path) -> dict[str, Any]:
    """The node's own retention sweep, now and as if the retention time had passed.

    Now it must keep every segment (none is older than the retention time); run at
    now + retention + 1 s it must delete every segment and its file.
    """
    store = agent.retention
    if store is None:
        return {"segments": 0, "error": "the node has no retention store"}
    segments = store.index.segments()
    files = [Path(s.path) for s in segments]
    on_node = all(node_dir in p.parents for p in files)
    early = store.enforce(time.time())
    later = store.enforce(time.time() + store.config.ttl_s + 1.0)
    left = store.index.segments()
    return {
        "segments": len(segments),
        "bytes": sum(s.bytes for s in segments),
        "on_node": on_node,
        "deleted_early": len(early),
        "deleted_after_ttl": len(later),
        "left_after_ttl": len(left),
        "files_left_after_ttl": sum(p.exists() for p in files),
        "ttl_s": store.config.ttl_s,
    }
