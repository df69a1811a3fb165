"""What an operator reads when a node cannot get through: one clear line naming the cause, on
each change of state, not one per retry. A revoked and an expired certificate against the
locked-down broker, and a node-local broker that is down."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from cityedge.edge.config import LocalBusConfig, UplinkConfig
from cityedge.edge.localbus import LocalBus
from cityedge.edge.outbox import GroupCommitter, Outbox
from cityedge.edge.uplink import Uplink
from cityedge.pki.crl import Revocation, build_crl, write_crl
from cityedge.sim.brokers import free_port
from cityedge.transport import TlsFiles

from ..support.identity import LockedBroker
from ..support.stack import wait_until

pytestmark = pytest.mark.mosquitto


def uplink_of(broker: LockedBroker, tmp_path: Path, tls: TlsFiles, node: str) -> tuple[Uplink, Outbox]:
    outbox = Outbox.open(tmp_path / "outbox.db")
    config = UplinkConfig(port=broker.port, tls=tls, backoff_base_s=0.05, backoff_cap_s=0.2)
    return Uplink(config, node, "d1", outbox), outbox


def lines(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and words in r.getMessage()
    ]


def attempts(uplink: Uplink) -> int:
    return uplink.link.attempts


def refused_again_and_again(uplink: Uplink, caplog: pytest.LogCaptureFixture, words: str) -> None:
    """Wait for the first line naming the cause (it can come after a slow MQTT 5 attempt falls
    back to 3.1.1), then for four more refused attempts after it."""
    wait_until(lambda: lines(caplog, words), 30, f"a line naming the cause ({words})")
    first = attempts(uplink)
    wait_until(lambda: attempts(uplink) >= first + 4, 30, "several refused attempts after it")


def test_a_revoked_certificate_is_named_once_not_on_every_retry(
    broker: LockedBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    district = broker.district
    ident = district.identity("edge-r")
    serial = x509.load_pem_x509_certificate(ident.cert_path.read_bytes()).serial_number
    now = datetime.now(UTC)
    write_crl(build_crl(district.ca, [Revocation(serial, now)], now=now), district.layout.crl)
    broker.process.reload()
    time.sleep(0.5)
    uplink, outbox = uplink_of(broker, tmp_path, TlsFiles(cafile=ident.ca_path, certfile=ident.cert_path,
                                                          keyfile=ident.key_path), "edge-r")  # fmt: skip
    try:
        with caplog.at_level(logging.INFO, logger="cityedge.transport.link"):
            uplink.start()
            refused_again_and_again(uplink, caplog, "revoked")
        said = lines(caplog, "revoked")
        assert len(said) == 1, said
        assert "re-enroll" in said[0] and f"127.0.0.1:{broker.port}" in said[0]
        assert not uplink.connected
    finally:
        uplink.stop()
        outbox.close()


def test_an_expired_certificate_is_named_once_not_on_every_retry(
    broker: LockedBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ident = broker.district.identity(
        "edge-x", lifetime=timedelta(days=1), now=datetime.now(UTC) - timedelta(days=2)
    )
    tls = TlsFiles(cafile=ident.ca_path, certfile=ident.cert_path, keyfile=ident.key_path)
    uplink, outbox = uplink_of(broker, tmp_path, tls, "edge-x")
    try:
        with caplog.at_level(logging.INFO, logger="cityedge.transport.link"):
            uplink.start()
            refused_again_and_again(uplink, caplog, "expired")
        said = lines(caplog, "expired")
        assert len(said) == 1, said
        assert "renew or re-enroll" in said[0]
    finally:
        uplink.stop()
        outbox.close()


def test_a_local_broker_that_is_down_is_said_once_and_again_when_it_is_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = Outbox.open(tmp_path / "outbox.db")
    group = GroupCommitter(outbox)
    bus = LocalBus(LocalBusConfig(port=free_port(), backoff_cap_s=0.5), "edge-l", {}, group)
    try:
        with caplog.at_level(logging.INFO, logger="cityedge.transport.link"):
            bus.start()
            wait_until(lambda: bus.link.attempts >= 8, 30, "several attempts")
        said = lines(caplog, "localbus: cannot connect")
        assert len(said) == 1, said
        assert "retrying with backoff" in said[0]
    finally:
        bus.stop()
        group.stop()
        outbox.close()
