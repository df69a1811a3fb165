"""`cityedge doctor` on a node finds each injected fault and names its fix: an expired
certificate, a stale CRL, the broker down, a slow link (the proxy's delay), a full outbox and
a skewed clock; a healthy node passes. Against the rendered Mosquitto (mTLS) of a test district."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from cityedge.configfile import load_config
from cityedge.edge.config import EdgeConfig
from cityedge.edge.doctor import run_node_doctor
from cityedge.edge.outbox import Outbox, OutboxLimits, StreamPolicy
from cityedge.pki import build_crl
from cityedge.protocol.doctor import Finding
from cityedge.sim.brokers import free_port
from tests.support.cloud import envelope
from tests.support.stack import DISTRICT, Stack, tls_dict

pytestmark = pytest.mark.mosquitto
NODE = "edge-node-001"


@dataclass
class Site:
    stack: Stack
    tmp: Path
    time_url: str

    def config(self, **overrides: Any) -> EdgeConfig:
        ident = overrides.pop("ident", None) or self.stack.district.identity(
            NODE, lifetime=timedelta(days=90)
        )
        conf: dict[str, Any] = {
            "node_id": NODE,
            "district": DISTRICT,
            "data_dir": str(self.tmp / "node"),
            "uplink": {"host": "127.0.0.1", "port": self.stack.proxy.port, "tls": tls_dict(ident)},
            "outbox": {"min_free_disk_bytes": 0},
        }
        for key, value in overrides.items():
            conf[key] = {**conf[key], **value} if isinstance(conf.get(key), dict) else value
        path = self.tmp / "node.yaml"
        path.write_text(yaml.safe_dump(conf))
        return load_config(EdgeConfig, path)

    def doctor(self, config: EdgeConfig, **kw: Any) -> dict[str, Finding]:
        kw.setdefault("crl", str(self.stack.district.layout.crl))
        kw.setdefault("time_url", self.time_url)
        return {f.check: f for f in run_node_doctor(config, **kw)}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    """Any HTTP server's Date header is the reference clock (here: this machine's)."""

    def log_message(self, *_: Any) -> None:
        return None


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("site")
    stack = Stack(tmp, f"sqlite:///{tmp}/cloud.db")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Site(stack, tmp, f"http://127.0.0.1:{server.server_address[1]}/")
    finally:
        server.shutdown()
        server.server_close()
        stack.close()


def test_a_healthy_node_passes_every_step(site: Site) -> None:
    found = site.doctor(site.config())
    verdicts = {name: f.verdict for name, f in found.items()}
    assert verdicts == {
        "certificate": "ok",
        "crl": "ok",
        "broker": "ok",
        "rtt": "ok",
        "outbox": "unknown",
        "disk": "ok",
        "clock": "ok",
    }, found


def test_an_expired_certificate_is_found_and_reissue_is_the_fix(site: Site) -> None:
    old = site.stack.district.identity(
        "edge-node-001", lifetime=timedelta(days=1), now=datetime.now(UTC) - timedelta(days=3)
    )
    found = site.doctor(site.config(ident=old))
    assert found["certificate"].verdict == "fail" and "expired" in found["certificate"].detail
    assert "re-enroll" in found["certificate"].fix
    assert found["broker"].verdict == "fail"  # the broker refuses it too, and says why
    assert "expired" in found["broker"].detail.lower()


def test_a_stale_crl_is_found(site: Site, tmp_path: Path) -> None:
    ca = site.stack.district.ca
    stale = build_crl(ca, [], now=datetime.now(UTC) - timedelta(days=10), validity=timedelta(days=2))
    from cryptography.hazmat.primitives.serialization import Encoding

    path = tmp_path / "crl.pem"
    path.write_bytes(stale.public_bytes(Encoding.PEM))
    found = site.doctor(site.config(), crl=str(path))
    assert found["crl"].verdict == "fail" and "stale" in found["crl"].detail
    assert "api serve" in found["crl"].fix


def test_a_broker_that_is_down_is_found(site: Site) -> None:
    config = site.config(uplink={"port": free_port()})
    found = site.doctor(config)
    assert found["broker"].verdict == "fail" and "unreachable" in found["broker"].detail
    assert "power" in found["broker"].fix and "broker running" in found["broker"].fix
    assert found["rtt"].verdict == "unknown"


def test_a_slow_link_is_found_with_the_guides_fix(site: Site) -> None:
    site.stack.proxy.delay_ms = 400
    try:
        found = site.doctor(site.config())
    finally:
        site.stack.proxy.delay_ms = 0
    assert found["broker"].verdict == "ok"
    assert found["rtt"].verdict in ("warn", "fail"), found["rtt"]
    assert "mtr" in found["rtt"].fix


def test_a_full_outbox_is_found(site: Site, tmp_path: Path) -> None:
    data = tmp_path / "full-node"
    policies = {"telemetry": StreamPolicy("telemetry", 2, "reject_new")}
    with Outbox.open(data / "outbox.db", policies, OutboxLimits(max_records=5, min_free_disk_bytes=0)) as ob:
        ob.append_many([envelope("telemetry", seq=0) for _ in range(8)])
    found = site.doctor(site.config(data_dir=str(data), outbox={"max_records": 5}))
    assert found["outbox"].verdict == "fail" and "100% full" in found["outbox"].detail
    assert "telemetry/" in found["outbox"].detail  # the drops, by stream and reason
    assert "cannot drain" in found["outbox"].fix


def test_a_skewed_clock_is_found(site: Site) -> None:
    skewed = lambda: datetime.now(UTC) + timedelta(minutes=10)  # noqa: E731
    found = site.doctor(site.config(), clock=skewed)
    assert found["clock"].verdict == "fail" and "ahead" in found["clock"].detail
    assert "NTP" in found["clock"].fix
