"""A real Mosquitto configured by `cityedge broker config` refuses everything identity forbids."""

from __future__ import annotations

import ssl
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from cityedge.cli import app
from cityedge.cloud.registry import Registry
from cityedge.cloud.store import make_engine, upgrade
from cityedge.cloud.store.registry import RegistryStore
from cityedge.pki import CertificateAuthority, IssuedIdentity, generate_key, make_csr
from cityedge.pki.keys import key_pem, write_pem_atomic
from cityedge.protocol.topics import (
    LOCAL_ROOT,
    ack_topic,
    down_topic,
    local_ack_topic,
    local_decision_topic,
    local_sensor_topic,
    up_topic,
)
from tests.support.identity import DISTRICT, District, LockedBroker, Probe, start_locked_broker
from tests.support.stack import wait_until

pytestmark = [pytest.mark.mosquitto]
NOT_AUTHORIZED = 135
CSV_HEADER = "device_id,serial,model,ip,mac,sim"


@pytest.fixture
def probes() -> Iterator[list[Probe]]:
    opened: list[Probe] = []
    yield opened
    for probe in opened:
        probe.close()


def connect(broker: LockedBroker, probes: list[Probe], ident: IssuedIdentity, client_id: str = "") -> Probe:
    probe = Probe.of(broker, ident, client_id)
    probes.append(probe)
    return probe


def connected(broker: LockedBroker, probes: list[Probe], name: str) -> Probe:
    probe = connect(broker, probes, broker.district.identity(name), name)
    assert probe.wait_outcome(), broker.process.log_tail()
    return probe


def raw_identity(ca: CertificateAuthority, cn: str, directory: Path) -> IssuedIdentity:
    """A certificate our CA's key signs for a CN our CA code refuses: only a test can make it."""
    key = generate_key()
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    safe = cn.replace("/", "_").replace("+", "plus").replace("#", "hash")
    ident = IssuedIdentity(directory / f"{safe}.key", directory / f"{safe}.crt", directory / "ca.crt")
    write_pem_atomic(ident.key_path, key_pem(key), private=True)
    write_pem_atomic(ident.cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return ident


def test_a_client_without_a_certificate_is_refused(broker: LockedBroker, probes: list[Probe]) -> None:
    probe = Probe(broker.port, broker.district.layout.chain, None, None, "edge-a")
    probes.append(probe)
    assert not probe.wait_outcome()


def test_a_certificate_from_another_ca_is_refused(
    broker: LockedBroker, probes: list[Probe], tmp_path: Path
) -> None:
    rogue = CertificateAuthority.create("rogue", now=datetime.now(UTC))
    ident = rogue.issue_to_directory("edge-a", tmp_path / "rogue", now=datetime.now(UTC))
    probe = Probe(broker.port, broker.district.layout.chain, ident.cert_path, ident.key_path, "edge-a")
    probes.append(probe)
    assert not probe.wait_outcome()


def test_an_expired_certificate_is_refused(broker: LockedBroker, probes: list[Probe]) -> None:
    old = datetime.now(UTC) - timedelta(days=2)
    ident = broker.district.identity("edge-a", lifetime=timedelta(days=1), now=old)
    assert not connect(broker, probes, ident, "edge-a").wait_outcome()


def test_tls_1_1_is_refused_by_the_broker(broker: LockedBroker, probes: list[Probe]) -> None:
    ident = broker.district.identity("edge-a")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(ident.ca_path))
    ctx.load_cert_chain(str(ident.cert_path), str(ident.key_path))
    # Let the client offer TLS 1.1 at all, so the refusal we see is the broker's.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    probe = Probe(broker.port, ident.ca_path, None, None, "edge-a", context=ctx)
    probes.append(probe)
    assert not probe.wait_outcome()
    # the broker, not our client, said no (its log line may land a moment after the refusal)
    wait_until(
        lambda: "unsupported protocol" in broker.process.log_tail(), 5, "the broker to log the refusal"
    )


def enrolled_through_the_registry(
    district: District, tmp_path: Path, device: str
) -> tuple[str, IssuedIdentity]:
    """The device enrolls with a token, so the registry knows its certificate."""
    db = f"sqlite:///{tmp_path / 'cloud.db'}"
    engine = make_engine(db)
    upgrade(engine)
    registry = Registry(RegistryStore(engine), district.layout)
    now = datetime.now(UTC)
    registry.import_inventory(
        f"{CSV_HEADER}\n{device},SN-B,M,10.0.0.2,aa:bb:cc:dd:ee:02,SIM\n", "devices.csv", now
    )
    token, _ = registry.issue_token("SN-B", now)
    key = generate_key()
    issued = registry.enroll(
        token, "SN-B", make_csr(key, device).public_bytes(serialization.Encoding.PEM), now
    )
    engine.dispose()
    ident = IssuedIdentity(tmp_path / "dev.key", tmp_path / "dev.crt", district.layout.chain)
    write_pem_atomic(ident.key_path, key_pem(key), private=True)
    write_pem_atomic(ident.cert_path, issued.certificate_pem)
    return db, ident


def test_a_revoked_device_is_cut_within_60s_and_cannot_reconnect(
    broker: LockedBroker, probes: list[Probe], tmp_path: Path
) -> None:
    district = broker.district
    db, ident = enrolled_through_the_registry(district, tmp_path, "edge-b")
    device = connect(broker, probes, ident, "edge-b")
    assert device.wait_outcome()
    revoker = district.identity("revoker")
    assert broker.process.proc is not None
    started = time.monotonic()
    result = CliRunner().invoke(app, [
        "device", "revoke", "edge-b", "-d", db, "--ca-dir", str(district.layout.directory),
        "--broker", f"127.0.0.1:{broker.port}", "--revoker-cert", str(revoker.cert_path),
        "--revoker-key", str(revoker.key_path), "--broker-pid-file", str(broker.process.cfg.pid_file),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert device.disconnected.wait(60), "the revoked device's live session was not cut"
    print(f"cut after {time.monotonic() - started:.2f}s")
    device.close()
    assert not connect(broker, probes, ident, "edge-b").wait_outcome()
    assert connected(broker, probes, "edge-c").connected.is_set()


def test_a_device_cannot_publish_to_another_devices_topics(broker: LockedBroker, probes: list[Probe]) -> None:
    ingest = connected(broker, probes, "ingest")
    ingest.subscribe(f"ce/v1/{DISTRICT}/+/up/+")
    device_a = connected(broker, probes, "edge-a")
    assert device_a.publish(up_topic(DISTRICT, "edge-b", "events"), b"forged") == NOT_AUTHORIZED
    assert device_a.publish(up_topic("other", "edge-a", "events"), b"other district") == NOT_AUTHORIZED
    assert device_a.publish(up_topic(DISTRICT, "edge-a", "events"), b"own") == 0
    seen = [payload for _, payload in ingest.wait_for(b"own")]
    assert seen == [b"own"]


def test_a_device_does_not_receive_another_devices_down_messages(
    broker: LockedBroker, probes: list[Probe]
) -> None:
    control = connected(broker, probes, "control-plane")
    device_a, device_b = connected(broker, probes, "edge-a"), connected(broker, probes, "edge-b")
    device_a.subscribe(f"ce/v1/{DISTRICT}/+/down/+")  # the broker grants the SUBACK, not the messages
    device_a.subscribe(f"ce/v1/{DISTRICT}/edge-b/down/#")
    device_b.subscribe(f"ce/v1/{DISTRICT}/edge-b/down/+")
    assert control.publish(down_topic(DISTRICT, "edge-b", "cmd"), b"for-b") == 0
    assert control.publish(down_topic(DISTRICT, "edge-a", "cmd"), b"for-a") == 0
    assert [p for _, p in device_b.wait_for(b"for-b")] == [b"for-b"]
    assert [p for _, p in device_a.wait_for(b"for-a")] == [b"for-a"]


def test_a_device_cannot_take_over_another_devices_client_id(
    broker: LockedBroker, probes: list[Probe]
) -> None:
    ingest = connected(broker, probes, "ingest")
    ingest.subscribe(f"ce/v1/{DISTRICT}/+/up/+")
    device_b = connected(broker, probes, "edge-b")
    intruder = connect(broker, probes, broker.district.identity("edge-a"), "edge-b")
    assert intruder.wait_outcome()
    # The intruder's session is edge-a's: it still may not write edge-b's topics.
    assert intruder.publish(up_topic(DISTRICT, "edge-b", "events"), b"as-b") == NOT_AUTHORIZED
    assert device_b.publish(up_topic(DISTRICT, "edge-b", "events"), b"b-alive") == 0
    assert [p for _, p in ingest.wait_for(b"b-alive")] == [b"b-alive"]
    assert not device_b.disconnected.is_set()


@pytest.mark.parametrize("cn", ["edge-b/up", "+", "#", "edge-b/up/+"])
def test_a_cn_with_topic_syntax_gains_nothing_at_the_broker(
    broker: LockedBroker, probes: list[Probe], cn: str, tmp_path: Path
) -> None:
    ingest = connected(broker, probes, "ingest")
    ingest.subscribe(f"ce/v1/{DISTRICT}/+/up/+")
    ident = raw_identity(broker.district.ca, cn, tmp_path / "raw")
    ident = IssuedIdentity(ident.key_path, ident.cert_path, broker.district.layout.chain)
    odd = connect(broker, probes, ident, "odd")
    accepted = odd.wait_outcome()
    print(f"CN {cn!r} connection accepted: {accepted}")
    if accepted:
        for stream in ("events", "up"):
            assert odd.publish(up_topic(DISTRICT, "edge-b", stream), b"injected") == NOT_AUTHORIZED
    honest = connected(broker, probes, "edge-c")
    assert honest.publish(up_topic(DISTRICT, "edge-c", "events"), b"marker") == 0
    assert [p for _, p in ingest.wait_for(b"marker")] == [b"marker"]


def test_on_a_node_broker_a_sensor_publishes_only_its_own_readings(
    tmp_path: Path, probes: list[Probe]
) -> None:
    node = start_locked_broker(District(tmp_path), tmp_path / "local", role="local", node="edge-node-001")
    try:
        agent = connected(node, probes, "edge-node-001")
        agent.subscribe(f"{LOCAL_ROOT}/#")
        sensor = connected(node, probes, "loop-7")
        assert sensor.publish(local_sensor_topic("loop-8", "count"), b"forged") == NOT_AUTHORIZED
        assert sensor.publish(local_decision_topic("cam-1"), b"fake decision") == NOT_AUTHORIZED
        assert sensor.publish(local_sensor_topic("loop-7", "count"), b"own") == 0
        assert [p for _, p in agent.wait_for(b"own")] == [b"own"]
    finally:
        node.process.kill()


def test_ingest_acknowledges_to_a_node_on_down_ack_and_may_send_nothing_else(
    broker: LockedBroker, probes: list[Probe]
) -> None:
    ingest = connected(broker, probes, "ingest")
    node = connected(broker, probes, "edge-a")
    node.subscribe(f"ce/v1/{DISTRICT}/edge-a/down/+")
    assert ingest.publish(down_topic(DISTRICT, "edge-a", "cmd"), b"a command") == NOT_AUTHORIZED
    assert ingest.publish(ack_topic(DISTRICT, "edge-a"), b"stored up to 7") == 0
    assert [p for _, p in node.wait_for(b"stored up to 7")] == [b"stored up to 7"]


def test_on_a_node_broker_a_sensor_reads_only_its_own_confirmations(
    tmp_path: Path, probes: list[Probe]
) -> None:
    node = start_locked_broker(District(tmp_path), tmp_path / "local", role="local", node="edge-node-001")
    try:
        agent = connected(node, probes, "edge-node-001")
        sensor = connected(node, probes, "loop-7")
        sensor.subscribe(local_ack_topic("loop-8"))  # granted, but never delivered
        sensor.subscribe(local_ack_topic("loop-7"))
        assert agent.publish(local_ack_topic("loop-8"), b"for loop-8") == 0
        assert agent.publish(local_ack_topic("loop-7"), b"for loop-7") == 0
        assert [p for _, p in sensor.wait_for(b"for loop-7")] == [b"for loop-7"]
        assert sensor.publish(local_ack_topic("loop-7"), b"self-confirmed") == NOT_AUTHORIZED
    finally:
        node.process.kill()
