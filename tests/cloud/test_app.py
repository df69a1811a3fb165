"""The control plane's composition root: one config in, its parts built once and wired."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cityedge.cloud.app import ControlPlane, read_operator_tokens
from cityedge.cloud.config import ControlPlaneConfig
from cityedge.cloud.registry.broker import pid_file_reload
from cityedge.configfile import parse_config
from cityedge.pki import crl_state, init_ca, load_crl
from cityedge.protocol.errors import CityEdgeError, ConfigError

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def config(tmp_path: Path, **extra: object) -> ControlPlaneConfig:
    init_ca(tmp_path / "off", tmp_path / "ca", name="t", now=NOW)
    data = {"database": f"sqlite:///{tmp_path / 'c.db'}", "ca_dir": str(tmp_path / "ca"), **extra}
    return parse_config(ControlPlaneConfig, data, "test")


def test_the_operator_sets_the_device_certificate_lifetime(tmp_path: Path) -> None:
    plane = ControlPlane.build(config(tmp_path, device_cert_days=30))
    try:
        assert plane.registry.lifetime == timedelta(days=30)
        assert plane.revoker is None  # no broker to reach: revocation writes the CRL only
        assert plane.store_url.startswith("sqlite:///")
    finally:
        plane.close()


def test_the_crl_refresher_republishes_when_due_and_reloads_the_broker(tmp_path: Path) -> None:
    pid_file = tmp_path / "broker.pid"
    hups: list[int] = []
    previous = signal.signal(signal.SIGHUP, lambda signum, _frame: hups.append(signum))
    pid_file.write_text(f"{os.getpid()}\n")
    now = [NOW]
    plane = ControlPlane.build(
        config(tmp_path, revocation={"broker_pid_file": str(pid_file)}), clock=lambda: now[0]
    )
    try:
        refresher = plane.crl_refresher()
        assert not refresher.check()  # just published by ca init: fresh
        now[0] = NOW + timedelta(days=4)  # past half of the 7-day validity
        assert refresher.check()
        assert hups == [signal.SIGHUP]
        state = crl_state(load_crl(plane.registry.layout.crl), now[0])
        assert state.this_update is not None and state.this_update > NOW + timedelta(days=3)
    finally:
        plane.close()
        signal.signal(signal.SIGHUP, previous)


def test_a_broker_pid_file_that_is_gone_is_a_sentence(tmp_path: Path) -> None:
    with pytest.raises(
        CityEdgeError, match=r"cannot reload the broker through .*none.pid: .*is Mosquitto running"
    ):
        pid_file_reload(tmp_path / "none.pid")()


def test_revocation_brokers_need_the_revokers_certificate(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="brokers need certfile and keyfile: the revoker's certificate"):
        config(tmp_path, revocation={"brokers": ["broker.d1:8883"]})
    with pytest.raises(ConfigError, match=r"'broker\.d1' is not host:port"):
        parse_config(ControlPlaneConfig, {"revocation": {"brokers": ["broker.d1"]}}, "test")


def test_operator_tokens_come_from_the_environment_or_the_file(tmp_path: Path) -> None:
    (tmp_path / "tokens").write_text("one\n\ntwo\n")
    cfg = parse_config(ControlPlaneConfig, {"api": {"operator_tokens_file": str(tmp_path / "tokens")}}, "t")
    assert read_operator_tokens(cfg, None) == ["one", "two"]
    assert read_operator_tokens(cfg, "a,b") == ["a", "b"]
    with pytest.raises(ConfigError, match=r"no operator token: set api\.operator_tokens_file"):
        read_operator_tokens(ControlPlaneConfig(), None)


def test_serving_without_the_apis_certificate_says_how_to_make_one(tmp_path: Path) -> None:
    plane = ControlPlane.build(config(tmp_path))
    try:
        with pytest.raises(ConfigError, match=r"certfile and keyfile are required .*ca issue --profile api"):
            plane.api_server_config()
    finally:
        plane.close()
