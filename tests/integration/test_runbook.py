"""The operator documents, followed literally: docs/identity.md, the README's deployment
section and what `cityedge district init` prints run command by command in one bash session
against a real Mosquitto (dropping to its own user when started as root, as in production),
the real `api serve`, ingest and an agent. Only the documents' settings blocks (paths,
ports) are replaced, with a temporary directory and free ports.

When a document changes, these tests run the new commands.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import ssl
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from cityedge.cloud.store import RecordStore
from cityedge.pki import load_certificate
from cityedge.sim.brokers import free_port
from tests.support.identity import Probe
from tests.support.runbook import Background, Shell, printed_steps, sh_blocks, venv_env, with_settings
from tests.support.services import require_mosquitto
from tests.support.stack import wait_until

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
NODE = "edge-node-001"


@pytest.fixture
def root() -> Iterator[Path]:
    """A directory the broker's user can pass through (pytest's own tmp dirs are 0700)."""
    require_mosquitto()
    path = Path(tempfile.mkdtemp(prefix="cityedge-runbook-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def shell(root: Path) -> Iterator[Shell]:
    session = Shell(root / "shell", venv_env())
    try:
        yield session
    finally:
        session.close()


def broker_user_uid() -> int:
    return pwd.getpwnam("mosquitto").pw_uid if os.geteuid() == 0 else os.geteuid()


def records_of(db: str, node: str) -> int:
    with RecordStore.open(db) as store:
        return len(store.records(node=node))


def broker(shell: Shell) -> Background:
    return next(p for p in shell.background if "mosquitto" in p.command)


def served_serial(port: int, ce: Path) -> int:
    """The serial of the certificate the broker serves now (we connect as ingest)."""
    ctx = ssl.create_default_context(cafile=str(ce / "ca" / "chain.pem"))
    ctx.load_cert_chain(ce / "certs" / "ingest.crt", ce / "certs" / "ingest.key")
    with (
        socket.create_connection(("127.0.0.1", port), 5) as sock,
        ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_the_identity_runbook_runs_as_written_and_revocation_cuts_the_node(root: Path, shell: Shell) -> None:
    ce, node_home = root / "cloud", root / "node"
    db = f"sqlite:///{ce / 'cloud.db'}"
    settings = {
        "DISTRICT": "d1", "CE": str(ce), "OFFLINE": str(root / "usb"), "DB": db, "HOST": "127.0.0.1",
        "BROKER_PORT": str(free_port()), "API_PORT": str(free_port()), "NODE": NODE, "SERIAL": "SN12345",
        "NODE_HOME": str(node_home),
    }  # fmt: skip
    steps = with_settings(sh_blocks((REPO / "docs" / "identity.md").read_text()), settings)
    port = int(settings["BROKER_PORT"])
    probe_log: list[int] = []

    def before(step: str) -> None:
        if "device revoke" in step:
            # The node must be live, and its records stored, before the cut means anything.
            wait_until(lambda: records_of(db, NODE) > 0, 30, "the node's first records in the store")
            wait_until(lambda: f"as {NODE}" in broker(shell).tail(200), 10, "the node's session")
            probe_log.append(len(broker(shell).log.read_text()))
        if step.startswith("cityedge ca renew"):
            probe_log.append(served_serial(port, ce))

    shell.follow(steps, before=before)

    assert broker(shell).uid() == broker_user_uid(), "the broker did not drop to its own user"
    after_revoke = broker(shell).log.read_text()[probe_log[0] :]
    # The live session is cut by the plugin, and the broker reloaded the CRL for the next handshake.
    assert f"Client {NODE} been disconnected by administrative action" in after_revoke, after_revoke
    assert "Reloading config" in after_revoke, after_revoke
    creds = node_home / "creds"
    cut = Probe(
        port, creds / "chain.pem", creds / "current" / "device.crt", creds / "current" / "device.key", NODE
    )
    try:
        assert not cut.wait_outcome(), "a revoked node's certificate still connects"
    finally:
        cut.close()
    renewed = load_certificate(ce / "broker" / "tls" / "broker.crt").serial_number
    assert renewed != probe_log[1]
    wait_until(lambda: served_serial(port, ce) == renewed, 10, "the renewed broker cert")


def test_district_init_and_the_commands_it_prints_bring_the_nodes_records_to_the_store(
    root: Path, shell: Shell
) -> None:
    readme = (REPO / "README.md").read_text()
    district_dir = root / "d1"
    settings = {
        "DISTRICT": "d1", "DISTRICT_DIR": str(district_dir), "BROKER_PORT": str(free_port()),
        "LOCAL_PORT": str(free_port()), "API_PORT": str(free_port()),
    }  # fmt: skip
    steps = with_settings(sh_blocks(readme, "Using cityedge for a real deployment"), settings)
    assert any("district init" in s for s in steps), "the README's deployment section does not start from it"
    for step in steps:
        output = shell.run(step)
        if "district init" in step:
            printed = printed_steps(output)
            assert printed == printed_steps((district_dir / "NEXT-STEPS.txt").read_text())
            shell.follow(printed)
    db = f"sqlite:///{district_dir / 'cloud.db'}"
    wait_until(lambda: records_of(db, NODE) > 0, 30, f"the node's records in the store\n{shell.logs()}")
    assert all(p.uid() == broker_user_uid() for p in shell.background if "mosquitto" in p.command)
    started = [p.command.split()[0:3] for p in shell.background]
    assert len(started) == 5, started  # cloud broker, api, ingest, node broker, agent
    assert all(p.alive() for p in shell.background), shell.logs()
    time.sleep(0.5)
    assert "Error" not in broker(shell).tail(200), broker(shell).tail(200)
