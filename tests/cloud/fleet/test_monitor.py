"""The fleet monitor over a real store: heartbeats and wills in, status rows and transitions out,
picking up where it left off after a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cityedge.cloud.fleet.config import FleetSection
from cityedge.cloud.fleet.monitor import FleetMonitor
from cityedge.cloud.store import IngestRecord, RecordStore
from cityedge.cloud.store.fleet import FleetStore
from cityedge.protocol import decode_batch, uuid7
from cityedge.protocol.health import will_payload
from tests.support.cloud import DISTRICT, envelope

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def heartbeat(store: RecordStore, node: str, seq: int, when: datetime, **body: object) -> None:
    env = envelope("heartbeat", seq, node, kind="heartbeat", ts=when, body={"interval_s": 10.0, **body})
    store.insert([IngestRecord.from_envelope(env, DISTRICT)], when)


def will(store: RecordStore, node: str, when: datetime) -> None:
    _batch, (env,) = decode_batch(will_payload(node, str(uuid7(int(when.timestamp() * 1000))), at(-100), 1))
    store.insert([IngestRecord.from_envelope(env, DISTRICT)], when)


def test_heartbeats_silence_and_a_will_become_rows_and_transitions(tmp_path: Path) -> None:
    store = RecordStore.open(f"sqlite:///{tmp_path}/cloud.db")
    fleet = FleetStore(store._engine)
    monitor = FleetMonitor(fleet, FleetSection(grace_s=0.5)).load()
    heartbeat(store, "n1", 1, at(0), uptime_s=5)
    heartbeat(store, "n2", 1, at(0))
    monitor.step(at(1))
    assert {r.node: r.status for r in fleet.nodes()} == {"n1": "online", "n2": "online"}
    assert fleet.nodes("n1")[0].heartbeat["uptime_s"] == 5  # type: ignore[index]

    monitor.step(at(21))  # two intervals missed
    assert {r.node: r.status for r in fleet.nodes()} == {"n1": "stale", "n2": "stale"}
    heartbeat(store, "n1", 2, at(22))
    will(store, "n2", at(23))
    result = monitor.step(at(23))
    assert {(t.node, t.after.value) for t in result.transitions} == {("n1", "online"), ("n2", "offline")}
    assert [t.after for t in fleet.transitions("n2")] == ["online", "stale", "offline"]
    assert "last will" in fleet.transitions("n2")[-1].reason


def test_a_restarted_monitor_resumes_from_its_cursor(tmp_path: Path) -> None:
    store = RecordStore.open(f"sqlite:///{tmp_path}/cloud.db")
    fleet = FleetStore(store._engine)
    first = FleetMonitor(fleet, FleetSection()).load()
    heartbeat(store, "n1", 1, at(0))
    assert first.step(at(1)).records == 1
    again = FleetMonitor(fleet, FleetSection()).load()
    assert again.step(at(2)).records == 0
    assert again.status_of("n1") is not None and again.status_of("n1").value == "online"  # type: ignore[union-attr]


def test_the_monitor_fires_and_resolves_alerts_into_the_store(tmp_path: Path) -> None:
    store = RecordStore.open(f"sqlite:///{tmp_path}/cloud.db")
    fleet = FleetStore(store._engine)
    monitor = FleetMonitor(fleet, FleetSection(alerts_every_s=0.0001)).load()
    heartbeat(store, "n1", 1, at(0), cert_days_left=2.0)
    changes = monitor.step(at(1)).alerts
    assert [(c.alert.name, c.state) for c in changes] == [("CertExpiring", "firing")]
    assert [a["alert"] for a in fleet.firing_alerts()] == ["CertExpiring"]
    heartbeat(store, "n1", 2, at(5), cert_days_left=89.0)
    assert [(c.alert.name, c.state) for c in monitor.step(at(6)).alerts] == [("CertExpiring", "resolved")]
    assert fleet.firing_alerts() == []
