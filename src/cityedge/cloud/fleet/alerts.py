"""The control plane's alert rules over the fleet's state: pure, time passed in.

The same alerts ship as Prometheus rules (`deploy/prometheus/cityedge-alerts.yml`, over the
`cityedge_fleet_*` metrics the API exports), so a district with Prometheus and one without
see the same names: NodeOffline, BacklogOld, Drops, CertExpiring, CrlStale, CameraBelowFps,
LatencySlo, DiskNearlyFull. They judge by the config's `fleet.alerts` thresholds as they are.
`diff` turns two evaluations into firing/resolved events.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from cityedge.cloud.fleet.config import AlertThresholds
from cityedge.cloud.fleet.status import NodeHealth, Status
from cityedge.protocol.health import Heartbeat

__all__ = ["ALERTS", "Alert", "AlertChange", "diff", "evaluate"]

ALERTS: Final = (
    "NodeOffline",
    "BacklogOld",
    "Drops",
    "CertExpiring",
    "CrlStale",
    "CameraBelowFps",
    "LatencySlo",
    "DiskNearlyFull",
)


@dataclass(frozen=True)
class Alert:
    name: str
    node: str  # "" for district-wide alerts (CRL)
    subject: str  # the stream, camera or certificate concerned ("" when the node is the subject)
    severity: str
    summary: str
    value: float | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.name, self.node, self.subject)


@dataclass(frozen=True)
class AlertChange:
    alert: Alert
    state: str  # "firing" or "resolved"
    at: datetime


def evaluate(
    nodes: Iterable[NodeHealth], now: datetime, t: AlertThresholds, *, crl_stale: bool | None = None
) -> list[Alert]:
    out: list[Alert] = []
    if crl_stale:
        out.append(
            Alert(
                "CrlStale",
                "",
                "crl",
                "critical",
                "the CRL is past its nextUpdate: brokers refuse every client",
            )
        )
    for health in nodes:
        out.extend(_node_alerts(health, now, t))
    return out


def _node_alerts(h: NodeHealth, now: datetime, t: AlertThresholds) -> Iterator[Alert]:
    if h.status is Status.OFFLINE:
        yield Alert("NodeOffline", h.node, "", "critical", f"{h.node} is offline: {h.reason}")
    beat = h.heartbeat
    if beat is None:
        return
    for stream, backlog in beat.outbox.items():
        if backlog.oldest_age_s is not None and backlog.oldest_age_s > t.backlog_s:
            waited = f"{backlog.oldest_age_s / 60:.0f} min"
            summary = f"{h.node}: the oldest {stream} record has waited {waited}"
            yield Alert("BacklogOld", h.node, stream, "warning", summary, backlog.oldest_age_s)
    dropped = _recent_drops(h, now, t.drops_window_s)
    if dropped > 0:
        yield Alert("Drops", h.node, "", "warning", f"{h.node} dropped {dropped} records recently", dropped)
    days = beat.cert_days_left
    if days is not None and days < t.cert_days:
        summary = f"{h.node}: certificate expires in {days:.1f} days"
        yield Alert("CertExpiring", h.node, "device", "warning", summary, days)
    yield from _camera_alerts(h, beat, t)
    ratio = beat.disk_free_ratio
    if ratio is not None and ratio < t.disk_free_ratio:
        summary = f"{h.node}: {ratio:.0%} of its disk free"
        yield Alert("DiskNearlyFull", h.node, "disk", "warning", summary, ratio)


def _camera_alerts(h: NodeHealth, beat: Heartbeat, t: AlertThresholds) -> Iterator[Alert]:
    for camera, cam in beat.cameras.items():
        if cam.fps_target and cam.fps < t.fps_ratio * cam.fps_target:
            summary = f"{h.node}/{camera}: {cam.fps:.1f} fps, target {cam.fps_target:g}"
            yield Alert("CameraBelowFps", h.node, camera, "warning", summary, cam.fps)
        if cam.p95_ms is not None and cam.p95_ms > t.latency_slo_ms:
            summary = (
                f"{h.node}/{camera}: p95 latency {cam.p95_ms:.0f} ms over the {t.latency_slo_ms:g} ms SLO"
            )
            yield Alert("LatencySlo", h.node, camera, "warning", summary, cam.p95_ms)


def _recent_drops(h: NodeHealth, now: datetime, window_s: float) -> int:
    """Records dropped within the window: the newest drop total less the oldest seen in it."""
    seen = [n for at, n in h.drops_seen if (now - at).total_seconds() <= window_s]
    if len(seen) < 2:
        return 0
    return max(0, seen[-1] - min(seen))


def diff(
    before: dict[tuple[str, str, str], Alert], now_firing: list[Alert], at: datetime
) -> list[AlertChange]:
    """What started and what stopped between two evaluations."""
    current = {a.key: a for a in now_firing}
    started = [AlertChange(a, "firing", at) for k, a in current.items() if k not in before]
    stopped = [AlertChange(a, "resolved", at) for k, a in before.items() if k not in current]
    return started + stopped
