"""`render_broker`: a broker config that starts as it is, from `/`, as its own user."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cityedge.deploy.broker import BrokerInputs, render_broker
from cityedge.pki import CertificateAuthority, init_ca
from cityedge.protocol.errors import ConfigError
from cityedge.sim.brokers import free_port
from tests.support.services import require_mosquitto
from tests.support.stack import wait_until

NOW = datetime.now(UTC)


@pytest.fixture
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="cityedge-broker-"))  # 0700, as `mktemp -d` makes it
    yield path
    shutil.rmtree(path, ignore_errors=True)


def district(root: Path, server_auth: bool = True) -> BrokerInputs:
    _, layout = init_ca(root / "offline", root / "ca", name="t", now=NOW)
    ident = layout.load().issue_to_directory(
        "broker", root / "tls", now=NOW, server_auth=server_auth, extra_sans=("127.0.0.1",)
    )
    return BrokerInputs(layout.chain, ident.cert_path, ident.key_path, layout.crl)


def user() -> str:
    return "mosquitto" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


@pytest.mark.mosquitto
@pytest.mark.parametrize("role", ["cloud", "local"])
def test_the_rendered_broker_starts_from_slash_as_its_own_user_and_logs_no_error(
    root: Path, role: str
) -> None:
    binary = require_mosquitto()
    port = free_port()
    rendered = render_broker(
        "cloud" if role == "cloud" else "local", root / "broker", district(root), district="d1", port=port,
        bind="127.0.0.1", node="edge-node-001", user=user(),
    )  # fmt: skip
    assert rendered.pending == [] or os.geteuid() != 0
    log = root / "broker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, "-c", str(rendered.conf)], cwd="/", stdout=out, stderr=out)
    try:
        # (not a bare TCP probe: the broker would log the dropped TLS handshake as an error)
        wait_until(lambda: "running" in log.read_text(), 10, "the broker to run")
        time.sleep(1.5)  # past one autosave of the persistence file
        uid = int(Path(f"/proc/{proc.pid}/status").read_text().split("Uid:")[1].split()[0])
        assert uid == pwd.getpwnam(user()).pw_uid
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)
    text = log.read_text()
    assert "error" not in text.lower(), text
    assert (rendered.data_dir / "mosquitto.db").exists(), "sessions are kept on disk"
    assert (rendered.data_dir / "dynsec.json").stat().st_uid == pwd.getpwnam(user()).pw_uid


def test_a_certificate_that_cannot_serve_tls_is_refused_before_anything_is_written(root: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot serve TLS \(no serverAuth usage\); issue one with"):
        render_broker("cloud", root / "broker", district(root, server_auth=False), district="d1", port=8883)
    assert not (root / "broker").exists()


def test_a_key_that_is_not_the_certificates_is_refused(root: Path) -> None:
    files = district(root)
    other = CertificateAuthority.create("x", now=NOW).issue_to_directory(
        "broker", root / "other", now=NOW, lifetime=timedelta(days=1), server_auth=True
    )
    wrong = BrokerInputs(files.chain, files.cert, other.key_path, files.crl)
    with pytest.raises(ConfigError, match=r"--key .*other/broker.key is not the key of --cert"):
        render_broker("cloud", root / "broker", wrong, district="d1", port=8883)


def test_the_acls_name_every_ingest_identity_and_the_sensors_own_confirmations(root: Path) -> None:
    files = district(root)
    cloud = render_broker(
        "cloud", root / "c", files, district="d1", port=1, user=None, ingest=("ingest", "ingest-2")
    )
    acl = cloud.acl.read_text()
    for name in ("ingest", "ingest-2"):
        assert f"user {name}\ntopic read ce/v1/d1/+/up/+\ntopic write ce/v1/d1/+/down/ack\n" in acl
    local = render_broker("local", root / "l", files, district="d1", port=1, user=None, node="edge-node-001")
    lines = local.acl.read_text().splitlines()
    assert "pattern read ce/local/v1/acks/%u" in lines
    assert "pattern write ce/local/v1/sensors/%u/+" in lines
    assert lines[lines.index("user edge-node-001") + 1] == "topic readwrite ce/local/v1/#"
    conf = local.conf.read_text()
    assert "persistence true" in conf and f"persistence_location {local.data_dir}/" in conf
