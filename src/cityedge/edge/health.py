"""The node's heartbeat: what an operator needs to trust a node, gathered into one record.

`build_heartbeat` is pure (plain values in, a `protocol.health.Heartbeat` out); the agent
gathers the values (outbox stats, camera stats, the certificate, disk, CPU and memory) and
the uplink's round trips (`RttWindow`, publish to PUBACK) feed the link section.
"""

from __future__ import annotations

import itertools
import statistics
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from cityedge.edge.outbox import OutboxStats
from cityedge.protocol.health import CameraHealth, Heartbeat, LinkHealth, StreamBacklog

__all__ = ["HostSample", "RttWindow", "build_heartbeat", "camera_health", "heartbeat_dict"]


class RttWindow:
    """Recent round trips (seconds) with the monotonic time each was seen; thread-safe."""

    def __init__(self, keep: int = 512) -> None:
        self._samples: deque[tuple[float, float]] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def observe(self, at: float, rtt_s: float) -> None:
        with self._lock:
            self._samples.append((at, rtt_s))

    def since(self, at: float) -> list[float]:
        with self._lock:
            return [rtt for seen, rtt in self._samples if seen >= at]


def link_health(connected: bool, reconnects: int, rtts_s: list[float]) -> LinkHealth:
    """Median and p95 round trip in ms; jitter is the mean change between consecutive trips."""
    if not rtts_s:
        return LinkHealth(connected=connected, reconnects=reconnects)
    ms = [r * 1000 for r in rtts_s]
    ordered = sorted(ms)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    jitter = statistics.fmean(abs(b - a) for a, b in itertools.pairwise(ms)) if len(ms) > 1 else 0.0
    return LinkHealth(
        connected=connected,
        rtt_ms=round(statistics.median(ms), 2),
        rtt_p95_ms=round(p95, 2),
        jitter_ms=round(jitter, 2),
        reconnects=reconnects,
    )


@dataclass(frozen=True)
class HostSample:
    disk_free_bytes: int
    disk_total_bytes: int
    cpu_percent: float | None
    memory_percent: float | None


def _backlog(stats: OutboxStats) -> dict[str, StreamBacklog]:
    dropped: dict[str, int] = {}
    for (stream, _reason), n in stats.drops.items():
        dropped[stream] = dropped.get(stream, 0) + n
    return {
        name: StreamBacklog(
            pending=s.pending + s.inflight,
            sent=s.sent,
            oldest_age_s=None if s.oldest_age_s is None else round(s.oldest_age_s, 1),
            oldest_sent_age_s=None if s.oldest_sent_age_s is None else round(s.oldest_sent_age_s, 1),
            dropped=dropped.get(name, 0),
        )
        for name, s in stats.streams.items()
    }


def camera_health(stats: Iterable[Any], targets: Mapping[str, float]) -> dict[str, CameraHealth]:
    """Per camera (the pipeline's `CameraStats`): frame rate against its target, latency percentiles."""
    return {
        c.camera: CameraHealth(
            fps=round(c.fps, 2),
            fps_target=targets.get(c.camera),
            p50_ms=_round(c.p50_ms),
            p95_ms=_round(c.p95_ms),
            p99_ms=_round(c.p99_ms),
            dropped=c.dropped,
            source=c.source_state,
        )
        for c in stats
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def build_heartbeat(
    *,
    interval_s: float,
    versions: Mapping[str, str],
    uptime_s: float,
    outbox: OutboxStats,
    cameras: Mapping[str, CameraHealth],
    link: LinkHealth,
    host: HostSample,
    cert_days_left: float | None,
    now: datetime,
) -> Heartbeat:
    return Heartbeat(
        interval_s=interval_s,
        versions=dict(versions),
        uptime_s=round(uptime_s, 1),
        outbox=_backlog(outbox),
        drops={f"{stream}/{reason}": n for (stream, reason), n in sorted(outbox.drops.items())},
        cameras=dict(cameras),
        cert_days_left=None if cert_days_left is None else round(cert_days_left, 2),
        disk_free_bytes=host.disk_free_bytes,
        disk_total_bytes=host.disk_total_bytes,
        cpu_percent=host.cpu_percent,
        memory_percent=host.memory_percent,
        link=link,
        at=now,
    )


def heartbeat_dict(beat: Heartbeat) -> dict[str, Any]:
    """The record body: plain JSON types."""
    body: dict[str, Any] = msgspec.to_builtins(beat)
    return body
