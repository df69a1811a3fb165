"""The fleet, events, telemetry, alerts and SLO routers over a real SQLite store, behind RBAC."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cityedge.cloud.app import ControlPlane
from cityedge.cloud.auth.service import AuthService
from cityedge.cloud.config import ControlPlaneConfig
from cityedge.cloud.fleet.config import FleetSection
from cityedge.cloud.store import IngestRecord, RecordStore
from cityedge.cloud.web.server import start_dashboard
from cityedge.pki import init_ca
from tests.support.cloud import DISTRICT, envelope
from tests.support.fleet import inventory_csv

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


class Plane:
    def __init__(self, tmp: Path) -> None:
        init_ca(tmp / "offline", tmp / "ca", name="t", now=datetime.now(UTC))
        db = f"sqlite:///{tmp}/cloud.db"
        self.store = RecordStore.open(db)
        config = ControlPlaneConfig(database=db, ca_dir=tmp / "ca", fleet=FleetSection(alerts_every_s=0.0001))
        self.plane = ControlPlane.build(config)
        self.plane.registry.import_inventory(inventory_csv(["n1", "n2"]), "inv.csv", datetime.now(UTC))
        self.monitor = self.plane.fleet_monitor().load()
        self.server = start_dashboard(self.plane, tokens=["op-token"], monitor=self.monitor)
        self.client = httpx.Client(base_url=self.server.url)
        auth = AuthService(self.store_auth())
        self.viewer = auth.create_user("vic", "viewer", by="test")

    def store_auth(self) -> Any:
        from cityedge.cloud.store.auth import AuthStore

        return AuthStore(self.plane.engine)

    def put(self, node: str, stream: str, seq: int, when: datetime, kind: str, **body: Any) -> None:
        env = envelope(stream, seq, node, kind=kind, ts=when, body=body)
        self.store.insert([IngestRecord.from_envelope(env, DISTRICT)], when)

    def get(self, path: str, token: str | None = None, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {token or self.viewer}"}
        response = self.client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def p(tmp_path: Path) -> Iterator[Plane]:
    plane = Plane(tmp_path)
    plane.put("n1", "heartbeat", 1, at(0), "heartbeat", interval_s=10.0, cert_days_left=3.0,
              cameras={"cam-1": {"fps": 10.0, "fps_target": 10.0, "p95_ms": 40.0}})  # fmt: skip
    plane.put("n2", "heartbeat", 1, at(0), "heartbeat", interval_s=10.0, cert_days_left=60.0)
    plane.monitor.step(at(1))
    plane.put("n1", "heartbeat", 2, at(100), "heartbeat", interval_s=10.0, cert_days_left=3.0)
    plane.monitor.step(at(101))  # n2 has been silent for 100 s: offline
    for i in range(25):
        node, camera = ("n1", "cam-1") if i % 2 else ("n2", "cam-2")
        kind = "incident.wrong_way" if i % 5 == 0 else "incident.stopped_vehicle"
        plane.put(node, "events", i + 1, at(200 + i), kind, camera=camera, lane="nb-1")
    for i in range(12):
        plane.put("n1", "telemetry", i + 1, at(600 + i * 30), "reading", pm25=float(i))
    try:
        yield plane
    finally:
        plane.client.close()
        plane.server.stop()
        plane.plane.close()
        plane.store.close()


def test_every_route_wants_a_token_and_a_permission(p: Plane) -> None:
    assert p.client.get("/api/v1/fleet/nodes").status_code == 401
    assert p.client.get("/api/v1/events", headers={"Authorization": "Bearer nope"}).status_code == 401
    for path in ("/api/v1/fleet/nodes", "/api/v1/events", "/api/v1/telemetry/aggregates", "/api/v1/alerts",
                 "/api/v1/slo", "/api/v1/fleet/summary", "/api/v1/fleet/nodes/n1/history"):  # fmt: skip
        assert p.client.get(path, headers={"Authorization": f"Bearer {p.viewer}"}).status_code == 200, path
    paths = p.client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/fleet/nodes", "/api/v1/events", "/api/v1/alerts", "/api/v1/slo"} <= set(paths)


def test_the_fleet_table_puts_the_worst_first_with_inventory_coordinates(p: Plane) -> None:
    rows = p.get("/api/v1/fleet/nodes")
    assert [(r["node"], r["status"]) for r in rows] == [("n2", "offline"), ("n1", "online")]
    assert rows[1]["lat"] is not None and rows[1]["cert_days_left"] == 3.0
    assert p.get("/api/v1/fleet/summary")["nodes"] == {"online": 1, "stale": 0, "offline": 1, "unknown": 0}
    detail = p.get("/api/v1/fleet/nodes/n1")
    assert detail["heartbeat"]["cert_days_left"] == 3.0 and detail["inventory"]["serial"] == "SN-0000"
    history = p.get("/api/v1/fleet/nodes/n2/history")["items"]
    assert [h["after"] for h in history] == ["online", "offline"]  # silent past 4 intervals at once
    assert (
        p.client.get("/api/v1/fleet/nodes/ghost", headers={"Authorization": f"Bearer {p.viewer}"}).status_code
        == 404
    )


def test_events_filter_by_node_camera_type_and_time_and_page_by_cursor(p: Plane) -> None:
    seen: list[str] = []
    cursor = 0
    while True:
        page = p.get("/api/v1/events", cursor=cursor, limit=7)
        seen += [e["id"] for e in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 25
    assert {e["node"] for e in p.get("/api/v1/events", node="n1")["items"]} == {"n1"}
    assert {e["body"]["camera"] for e in p.get("/api/v1/events", camera="cam-2")["items"]} == {"cam-2"}
    assert len(p.get("/api/v1/events", type="wrong_way")["items"]) == 5
    window = p.get("/api/v1/events", since=at(210).isoformat(), until=at(215).isoformat())["items"]
    assert len(window) == 5


def test_telemetry_aggregates_per_bucket(p: Plane) -> None:
    agg = p.get("/api/v1/telemetry/aggregates", field="pm25", bucket_s=120, window_s=7200)
    assert sum(b["records"] for b in agg["buckets"]) == 12
    assert all(b["pm25"]["min"] <= b["pm25"]["mean"] <= b["pm25"]["max"] for b in agg["buckets"])


def test_alerts_and_slo_compliance(p: Plane) -> None:
    firing = {(a["alert"], a["node"]) for a in p.get("/api/v1/alerts")}
    assert {("NodeOffline", "n2"), ("CertExpiring", "n1")} <= firing
    slo = p.get("/api/v1/slo", window_s=3600)["nodes"]
    assert slo["n1"]["latency_within_slo"] == 1.0
    assert 0 < slo["n1"]["availability"] <= 1.0
    assert slo["n2"]["availability"] < slo["n1"]["availability"]
