"""The control plane's alert rules: each alert firing and not firing, and firing/resolved events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cityedge.cloud.fleet.alerts import ALERTS, diff, evaluate
from cityedge.cloud.fleet.config import AlertThresholds
from cityedge.cloud.fleet.status import Heard, NodeHealth, Status
from cityedge.protocol.health import CameraHealth, Heartbeat, StreamBacklog

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CALM = Heartbeat(
    interval_s=15,
    outbox={"events": StreamBacklog(pending=3, oldest_age_s=2.0)},
    cert_days_left=60,
    cameras={"cam-1": CameraHealth(fps=10.0, fps_target=10.0, p95_ms=40.0)},
    disk_free_bytes=50,
    disk_total_bytes=100,
)


def node(
    beat: Heartbeat = CALM, status: Status = Status.ONLINE, drops: list[int] | None = None
) -> NodeHealth:
    h = NodeHealth("n1", "d1", status, NOW, "test", Heard(NOW, 15.0, beat, NOW, "r1"))
    h.drops_seen = [(NOW - timedelta(seconds=60 - i), n) for i, n in enumerate(drops or [0])]
    return h


SCENARIOS = [
    ("NodeOffline", node(status=Status.OFFLINE)),
    ("BacklogOld", node(Heartbeat(outbox={"telemetry": StreamBacklog(pending=9, oldest_age_s=3600.0)}))),
    ("Drops", node(drops=[5, 9])),
    ("CertExpiring", node(Heartbeat(cert_days_left=3.0))),
    ("CameraBelowFps", node(Heartbeat(cameras={"cam-1": CameraHealth(fps=4.0, fps_target=10.0)}))),
    ("LatencySlo", node(Heartbeat(cameras={"cam-1": CameraHealth(fps=10, fps_target=10, p95_ms=250.0)}))),
    ("DiskNearlyFull", node(Heartbeat(disk_free_bytes=5, disk_total_bytes=100))),
]


@pytest.mark.parametrize(("name", "health"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_each_alert_fires_on_its_condition(name: str, health: NodeHealth) -> None:
    assert [a.name for a in evaluate([health], NOW, AlertThresholds())] == [name]


def test_a_healthy_node_fires_nothing() -> None:
    assert evaluate([node(drops=[4, 4])], NOW, AlertThresholds(), crl_stale=False) == []


def test_a_stale_crl_fires_district_wide() -> None:
    assert [a.name for a in evaluate([], NOW, AlertThresholds(), crl_stale=True)] == ["CrlStale"]


def test_every_alert_name_has_a_scenario() -> None:
    assert {s[0] for s in SCENARIOS} | {"CrlStale"} == set(ALERTS)


def test_diff_reports_what_started_and_what_stopped() -> None:
    first = evaluate([node(status=Status.OFFLINE)], NOW, AlertThresholds())
    started = diff({}, first, NOW)
    assert [(c.alert.name, c.state) for c in started] == [("NodeOffline", "firing")]
    stopped = diff({a.key: a for a in first}, [], NOW)
    assert [(c.alert.name, c.state) for c in stopped] == [("NodeOffline", "resolved")]
