"""The agent's health endpoint: live while its threads run, ready while the outbox is open and
the uplink is connected or within its grace; a real agent against a real broker, and the pure
verdict as a table."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter

from cityedge.edge.config import HealthConfig
from cityedge.edge.healthz import Checks, HealthServer, judge
from cityedge.sim.brokers import free_port
from tests.support.databases import fresh_database
from tests.support.stack import NODE, Stack, wait_until


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()


@pytest.mark.parametrize(
    ("threads", "outbox_open", "connected", "since", "live", "ready"),
    [
        ({"uplink-sender": True}, True, True, 0.0, True, True),
        ({"uplink-sender": True}, True, False, 59.0, True, True),  # reconnecting, within grace
        ({"uplink-sender": True}, True, False, 61.0, True, False),  # away longer than the grace
        ({"uplink-sender": True}, False, True, 0.0, True, False),  # outbox closed
        ({"uplink-sender": False, "heartbeat": True}, True, True, 0.0, False, False),  # a thread died
    ],
)
def test_the_verdict(
    threads: dict[str, bool], outbox_open: bool, connected: bool, since: float, live: bool, ready: bool
) -> None:
    verdict = judge(Checks(threads, outbox_open, connected, since), uplink_grace_s=60.0)
    assert (verdict.live, verdict.ready) == (live, ready)
    assert bool(verdict.reasons) == (not ready)


class FakeAgent:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        Counter("cityedge_test_total", "a metric", registry=self.registry).inc()
        self.open = True
        self.connected = True

    def outbox_open(self) -> bool:
        return self.open

    def uplink_connected(self) -> bool:
        return self.connected


def test_a_thread_that_dies_fails_liveness_and_says_which() -> None:
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, name="group-commit", daemon=True)
    worker.start()
    agent = FakeAgent()
    server = HealthServer(HealthConfig(port=0), agent, [worker]).start()
    try:
        assert get(server.port, "/healthz")[0] == 200
        status, body = get(server.port, "/metrics")
        assert status == 200 and "cityedge_test_total 1.0" in body
        stop.set()
        worker.join(5)
        status, body = get(server.port, "/healthz")
        assert status == 503 and json.loads(body)["reasons"] == ["thread group-commit is not running"]
        assert get(server.port, "/nothing")[0] == 404
    finally:
        server.stop()


def test_a_port_in_use_is_a_config_error_naming_it() -> None:
    from cityedge.protocol.errors import ConfigError

    first = HealthServer(HealthConfig(port=0), FakeAgent(), [])
    try:
        with pytest.raises(ConfigError, match=rf"health.port {first.port}: cannot listen"):
            HealthServer(HealthConfig(port=first.port), FakeAgent(), [])
    finally:
        first.stop()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with fresh_database("sqlite", tmp_path) as url:
        s = Stack(tmp_path, url)
        try:
            yield s
        finally:
            s.close()


@pytest.mark.mosquitto
@pytest.mark.slow
def test_a_real_agent_is_ready_while_connected_and_not_after_its_grace(stack: Stack) -> None:
    stack.ingest()
    port = free_port()
    agent = stack.agent(NODE, health={"host": "127.0.0.1", "port": port, "uplink_grace_s": 2.0})
    wait_until(lambda: _status(port, "/readyz") == 200, 30, "the agent to be ready")
    assert _status(port, "/healthz") == 200
    assert "cityedge_outbox" in get(port, "/metrics")[1]
    stack.cloud.kill()
    wait_until(lambda: _status(port, "/readyz") == 503, 30, "readiness to fail after the grace")
    assert "uplink has not been connected" in get(port, "/readyz")[1]
    assert _status(port, "/healthz") == 200  # a broker away is no reason to restart the agent
    stack.cloud.start()
    wait_until(lambda: _status(port, "/readyz") == 200, 30, "the agent to be ready again")
    assert agent.alive()


def _status(port: int, path: str) -> int:
    try:
        return get(port, path)[0]
    except OSError:
        return 0
