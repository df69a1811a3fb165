"""A real Prometheus (Debian's binary, its own config and data dir, a free port) scrapes a running
agent, ingest and the control plane, with the shipped alert rules: killing the agent fires the
node-offline alerts. Each process's /metrics passes `promtool check metrics`."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from cityedge.cloud.store.fleet import FleetStore
from cityedge.sim.brokers import free_port, wait_port
from tests.support.fleet import Fleet, start_fleet
from tests.support.services import require
from tests.support.stack import wait_until

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "cityedge-alerts.yml"
NODE = "edge-node-001"
pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]


def _prometheus_binary() -> str:
    found = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
    )
    require(
        found is not None and shutil.which("promtool") is not None,
        "prometheus and promtool (apt-get install prometheus)",
    )
    assert found is not None
    return found


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    f = start_fleet(tmp_path, [NODE], heartbeat_s=2.0, ingest_metrics=True, agent_metrics=True)
    try:
        yield f
    finally:
        f.close()


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (a local test URL)
        body: bytes = response.read()
        return body


def _firing(prom: str) -> set[str]:
    alerts = json.loads(_get(f"{prom}/api/v1/alerts"))["data"]["alerts"]
    return {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}


def test_prometheus_fires_node_offline_when_the_agent_is_killed(fleet: Fleet, tmp_path: Path) -> None:
    binary = _prometheus_binary()
    fleet.wait_status(NODE, "online", 30)
    targets = {
        "cityedge-agent": f"127.0.0.1:{fleet.metrics_ports[NODE]}",
        "cityedge-ingest": f"127.0.0.1:{fleet.metrics_ports['ingest']}",
        "cityedge-api": fleet.dashboard.url.removeprefix("http://").rstrip("/"),
    }
    for job, target in targets.items():  # every /metrics is valid exposition
        text = _get(f"http://{target}/metrics")
        checked = subprocess.run(
            ["promtool", "check", "metrics"], input=text, capture_output=True, check=False
        )
        assert checked.returncode == 0, f"{job}: {checked.stdout.decode()}{checked.stderr.decode()}"
    port = free_port()
    conf = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [t]}]} for job, t in targets.items()
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(conf))
    log = (tmp_path / "prometheus.log").open("wb")
    prom_proc = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=log,
    )
    prom = f"http://127.0.0.1:{port}"
    try:
        wait_port(port, timeout=30)
        wait_until(lambda: _all_up(prom, len(targets)), 30, "Prometheus to scrape agent, ingest and the API")
        assert not {"CityedgeNodeOffline", "CityedgeNodeAgentDown"} & _firing(prom)
        killed = time.monotonic()
        fleet.agents[NODE].kill()
        fleet.wait_status(NODE, "offline", 4 * fleet.heartbeat_s + 3)
        # the broker published the node's last will (its ACL allows the node's own up/will) and
        # ingest stored it: the node went offline at once, not after 4 missed heartbeats
        offline = [t for t in FleetStore(fleet.plane.engine).transitions(NODE) if t.after == "offline"]
        assert offline and "last will" in offline[-1].reason, offline
        wait_until(lambda: "CityedgeNodeOffline" in _firing(prom), 20, "CityedgeNodeOffline to fire")
        wait_until(lambda: "CityedgeNodeAgentDown" in _firing(prom), 60, "CityedgeNodeAgentDown to fire")
        assert time.monotonic() - killed < 70
    finally:
        prom_proc.terminate()
        prom_proc.wait(20)
        log.close()


def _all_up(prom: str, n: int) -> bool:
    try:
        targets = json.loads(_get(f"{prom}/api/v1/targets"))["data"]["activeTargets"]
    except OSError:  # 503 while Prometheus starts
        return False
    return len(targets) == n and all(t["health"] == "up" for t in targets)
