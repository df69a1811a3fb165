"""The fleet as Prometheus metrics (`cityedge_fleet_*`), read from the monitor at scrape time.

These are what `deploy/prometheus/cityedge-alerts.yml` alerts on: Prometheus seldom reaches
the nodes themselves (cellular, NAT), but it always reaches the control plane, which knows
every node's last heartbeat.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cityedge.cloud.fleet.monitor import FleetMonitor
from cityedge.cloud.fleet.status import NodeHealth, Status

__all__ = ["FleetCollector"]

_NODE: Final = (
    ("cityedge_fleet_heartbeat_age_seconds", "Seconds since the node's last heartbeat arrived."),
    ("cityedge_fleet_cert_expiry_seconds", "Seconds left on the node's certificate, as its heartbeat says."),
    ("cityedge_fleet_disk_free_ratio", "Share of the node's data disk that is free."),
    ("cityedge_fleet_cpu_percent", "The node's CPU use over its last heartbeat interval."),
    ("cityedge_fleet_memory_percent", "The node's memory use."),
    ("cityedge_fleet_link_rtt_seconds", "Median publish-to-PUBACK round trip of the node's uplink."),
    ("cityedge_fleet_outbox_dropped", "Records the node's outbox dropped or refused, all streams (a total)."),
)


class FleetCollector(Collector):
    def __init__(self, monitor: FleetMonitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[Metric]:
        nodes = sorted(self.monitor.snapshot(), key=lambda h: h.node)
        now = self.monitor.clock()
        status = GaugeMetricFamily(
            "cityedge_fleet_node_status", "1 for the node's current status (online, stale, offline).",
            labels=["node", "district", "status"],
        )  # fmt: skip
        counts = GaugeMetricFamily("cityedge_fleet_nodes", "Nodes by status.", labels=["status"])
        for s in Status:
            counts.add_metric([s.value], sum(1 for h in nodes if h.status is s))
        gauges = [GaugeMetricFamily(name, doc, labels=["node"]) for name, doc in _NODE]
        backlog = GaugeMetricFamily(
            "cityedge_fleet_outbox_oldest_age_seconds", "Age of the oldest record in a node's outbox stream.",
            labels=["node", "stream"],
        )  # fmt: skip
        cams = _camera_families()
        for h in nodes:
            for s in Status:
                status.add_metric([h.node, h.district, s.value], 1.0 if h.status is s else 0.0)
            for gauge, value in zip(gauges, _node_values(h, now), strict=True):
                if value is not None:
                    gauge.add_metric([h.node], value)
            if h.heartbeat is not None:
                for stream, b in sorted(h.heartbeat.outbox.items()):
                    backlog.add_metric([h.node, stream], b.oldest_age_s or 0.0)
                _add_cameras(cams, h)
        yield status
        yield counts
        yield from gauges
        yield backlog
        yield from cams
        yield _alerts(self.monitor)


def _node_values(h: NodeHealth, now: object) -> list[float | None]:
    age = (now - h.last_seen).total_seconds() if h.last_seen is not None else None  # type: ignore[operator]
    b = h.heartbeat
    if b is None:
        return [age, None, None, None, None, None, None]
    rtt = b.link.rtt_ms / 1000 if b.link.rtt_ms is not None else None
    cert = b.cert_days_left * 86400 if b.cert_days_left is not None else None
    return [age, cert, b.disk_free_ratio, b.cpu_percent, b.memory_percent, rtt, float(b.dropped)]


def _camera_families() -> list[GaugeMetricFamily]:
    return [
        GaugeMetricFamily(
            "cityedge_fleet_camera_fps", "Frames judged per second.", labels=["node", "camera"]
        ),
        GaugeMetricFamily(
            "cityedge_fleet_camera_fps_target",
            "The camera's configured frame rate.",
            labels=["node", "camera"],
        ),
        GaugeMetricFamily(
            "cityedge_fleet_camera_latency_p95_seconds",
            "p95 latency, capture to the rules' verdict.",
            labels=["node", "camera"],
        ),
    ]


def _add_cameras(families: list[GaugeMetricFamily], h: NodeHealth) -> None:
    assert h.heartbeat is not None
    fps, target, p95 = families
    for camera, c in sorted(h.heartbeat.cameras.items()):
        fps.add_metric([h.node, camera], c.fps)
        if c.fps_target is not None:
            target.add_metric([h.node, camera], c.fps_target)
        if c.p95_ms is not None:
            p95.add_metric([h.node, camera], c.p95_ms / 1000)


def _alerts(monitor: FleetMonitor) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "cityedge_fleet_alert_firing", "1 for each alert the control plane's own rules have firing.",
        labels=["alert", "node", "subject"],
    )  # fmt: skip
    for a in sorted(monitor.firing_alerts(), key=lambda a: a.key):
        family.add_metric([a.name, a.node, a.subject], 1.0)
    return family
