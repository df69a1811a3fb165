"""`cityedge doctor --node ID` from the cloud: the troubleshooting steps judged from the store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from cityedge.cli import app
from cityedge.cloud.fleet.config import AlertThresholds, FleetSection
from cityedge.cloud.fleet.doctor import cloud_doctor
from cityedge.cloud.fleet.monitor import FleetMonitor
from cityedge.cloud.store import IngestRecord, RecordStore
from cityedge.cloud.store.fleet import FleetStore, NodeRow
from cityedge.pki import init_ca
from tests.support.cloud import DISTRICT, envelope

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DEFAULTS = AlertThresholds()
FRESH_CA = {
    "crl": {"alert": False, "freshness": "fresh", "next_update": "2026-12-07"},
    "certificates": [],
    "revoked": [],
}


def row(status: str = "online", ts_offset_s: float = -0.2, **beat: object) -> NodeRow:
    body = {
        "interval_s": 15.0,
        "cert_days_left": 60.0,
        "disk_free_bytes": 50,
        "disk_total_bytes": 100,
        "link": {"connected": True, "rtt_ms": 12.0, "jitter_ms": 1.0},
        **beat,
    }
    return NodeRow(
        "n1",
        DISTRICT,
        status,
        NOW,
        "heartbeat received",
        NOW,
        15.0,
        "r1",
        NOW + timedelta(seconds=ts_offset_s),
        body,
    )


def verdicts(found: list) -> dict[str, str]:  # type: ignore[type-arg]
    return {f.check: f.verdict for f in found}


def test_a_healthy_node_is_ok_everywhere() -> None:
    assert set(verdicts(cloud_doctor("n1", row(), FRESH_CA, NOW, DEFAULTS)).values()) == {"ok"}


def test_each_fault_is_named_with_its_fix() -> None:
    offline = cloud_doctor("n1", row("offline"), FRESH_CA, NOW, DEFAULTS)
    assert verdicts(offline)["status"] == "fail" and "power" in offline[0].fix
    expired = {f.check: f for f in cloud_doctor("n1", row(cert_days_left=-2.0), FRESH_CA, NOW, DEFAULTS)}
    assert expired["certificate"].verdict == "fail" and "enroll" in expired["certificate"].fix
    stale = {**FRESH_CA, "crl": {"alert": True, "next_update": "2026-11-01"}}
    assert verdicts(cloud_doctor("n1", row(), stale, NOW, DEFAULTS))["crl"] == "fail"
    slow = cloud_doctor("n1", row(link={"rtt_ms": 900.0, "jitter_ms": 200.0}), FRESH_CA, NOW, DEFAULTS)
    assert verdicts(slow)["rtt"] == "warn"
    full = cloud_doctor("n1", row(drops={"telemetry/full": 40}), FRESH_CA, NOW, DEFAULTS)
    assert verdicts(full)["outbox"] == "warn"
    ahead = {f.check: f for f in cloud_doctor("n1", row(ts_offset_s=600), FRESH_CA, NOW, DEFAULTS)}
    assert ahead["clock"].verdict == "fail" and "NTP" in ahead["clock"].fix
    assert verdicts(cloud_doctor("nX", None, FRESH_CA, NOW, DEFAULTS)) == {"status": "fail"}


def test_the_command_reads_the_store_and_fails_for_an_offline_node(tmp_path: Path) -> None:
    init_ca(tmp_path / "offline", tmp_path / "ca", name="t", now=datetime.now(UTC))
    db = f"sqlite:///{tmp_path}/cloud.db"
    store = RecordStore.open(db)
    now = datetime.now(UTC)
    env = envelope(
        "heartbeat", 1, "n1", kind="heartbeat", ts=now, body={"interval_s": 5.0, "cert_days_left": 50}
    )
    store.insert([IngestRecord.from_envelope(env, DISTRICT)], now)
    monitor = FleetMonitor(FleetStore(store._engine), FleetSection()).load()
    monitor.step(now)
    monitor.step(now + timedelta(seconds=60))  # 12 intervals of silence
    args = ["doctor", "--node", "n1", "--database", db, "--ca-dir", str(tmp_path / "ca"), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    found = {f["check"]: f for f in map(json.loads, result.output.splitlines())}
    assert found["status"]["verdict"] == "fail" and "offline" in found["status"]["detail"]
    assert found["certificate"]["verdict"] == "ok"
