"""A running test fleet: the rendered cloud broker (mTLS, ACLs), ingest and edge agents as real
subprocesses, and the control plane (fleet monitor, API and dashboard) in this process."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cityedge.cloud.app import ControlPlane
from cityedge.cloud.config import ControlPlaneConfig
from cityedge.cloud.fleet.config import FleetSection
from cityedge.cloud.web.server import Dashboard, start_dashboard
from cityedge.sim.brokers import free_port

from .stack import Proc, Stack, wait_until

OPERATOR_TOKEN = "operator-test-token"


@dataclass
class Fleet:
    stack: Stack
    plane: ControlPlane
    dashboard: Dashboard
    ingest: Proc
    heartbeat_s: float
    agents: dict[str, Proc] = field(default_factory=dict)
    metrics_ports: dict[str, int] = field(default_factory=dict)

    def start_agent(self, node: str, metrics: bool = False) -> Proc:
        extra = {}
        if metrics:
            self.metrics_ports[node] = free_port()
            extra["metrics_port"] = self.metrics_ports[node]
        proc = self.stack.agent(node, heartbeat={"interval_s": self.heartbeat_s}, **extra)
        self.agents[node] = proc
        return proc

    def status(self, node: str) -> str | None:
        monitor = self.dashboard.monitor
        assert monitor is not None
        found = monitor.status_of(node)
        return None if found is None else found.value

    def wait_status(self, node: str, status: str, timeout: float) -> None:
        wait_until(lambda: self.status(node) == status, timeout, f"{node} to be {status}")

    def token(self, name: str, role: str) -> str:
        from cityedge.cloud.auth.service import AuthService
        from cityedge.cloud.store.auth import AuthStore

        return AuthService(AuthStore(self.plane.engine)).create_user(name, role, by="test")

    def close(self) -> None:
        self.dashboard.stop()
        self.stack.close()
        self.plane.close()


def inventory_csv(nodes: list[str]) -> str:
    """Devices with coordinates in extra columns (a district map)."""
    lines = ["device_id,serial,model,ip,mac,sim,lat,lon"]
    for i, node in enumerate(nodes):
        lines.append(
            f"{node},SN-{i:04d},pole-gw,10.0.0.{i + 10},02:00:00:00:00:{i + 10:02x},sim-{i},"
            f"{48.85 + i * 0.002:.4f},{2.35 + i * 0.003:.4f}"
        )
    return "\n".join(lines) + "\n"


def start_fleet(
    tmp: Path,
    nodes: list[str],
    *,
    heartbeat_s: float = 2.0,
    ingest_metrics: bool = False,
    agent_metrics: bool = False,
) -> Fleet:
    db = f"sqlite:///{tmp}/cloud.db"
    stack = Stack(tmp, db)
    ingest_port = free_port() if ingest_metrics else None
    ingest = stack.ingest(env=None) if ingest_port is None else _ingest_with_metrics(stack, ingest_port)
    config = ControlPlaneConfig(
        database=db,
        ca_dir=stack.district.layout.directory,
        fleet=FleetSection(heartbeat_s=heartbeat_s, poll_s=0.5, alerts_every_s=1.0, grace_s=1.0),
    )
    plane = ControlPlane.build(config)
    plane.registry.import_inventory(inventory_csv(nodes), "test-inventory.csv", datetime.now(UTC))
    dashboard = start_dashboard(plane, tokens=[OPERATOR_TOKEN])
    fleet = Fleet(stack, plane, dashboard, ingest, heartbeat_s)
    if ingest_port is not None:
        fleet.metrics_ports["ingest"] = ingest_port
    for node in nodes:
        fleet.start_agent(node, metrics=agent_metrics)
    return fleet


def _ingest_with_metrics(stack: Stack, port: int) -> Proc:
    import yaml

    from .stack import tls_dict

    conf = {
        "host": "127.0.0.1",
        "port": stack.cloud.port,
        "tls": tls_dict(stack.identity("ingest")),
        "client_id": "ingest",
        "database": stack.db_url,
        "metrics_port": port,
    }
    path = stack.tmp / "ingest.yaml"
    path.write_text(yaml.safe_dump(conf))
    proc = Proc(["cloud", "ingest", "--config", str(path)], stack.tmp / "ingest.log").start()
    stack.procs.append(proc)
    wait_until(lambda: "subscribed" in proc.tail(), 30, "ingest to subscribe")
    return proc
