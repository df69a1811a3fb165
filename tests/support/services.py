"""Service discovery for tests: Mosquitto and PostgreSQL.

Outside CI a missing service skips its tests with a loud reason; under CI (CI=true) it
fails them, because a skipped broker test proves nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cityedge.deploy.mosquitto import MosquittoConfig
from cityedge.pki import CertificateAuthority, IssuedIdentity
from cityedge.sim.brokers import MosquittoProcess, free_port, mosquitto_binary

PG_URL = os.environ.get("CITYEDGE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, what: str) -> None:
    """Fail under CI, skip loudly elsewhere, when a service the test needs is missing."""
    if condition:
        return
    message = f"REQUIRED SERVICE MISSING: {what}"
    if in_ci():
        pytest.fail(message + " (CI must provide it)", pytrace=False)
    pytest.skip(message)


def require_mosquitto() -> str:
    binary = mosquitto_binary()
    require(binary is not None, "mosquitto binary (apt-get install mosquitto)")
    assert binary is not None
    return binary


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=3):
            return True
    except Exception:
        return False


@dataclass
class TlsBroker:
    """A running Mosquitto with an mTLS listener and the CA that trusts its clients."""

    process: MosquittoProcess
    ca: CertificateAuthority
    certs_dir: Path

    @property
    def port(self) -> int:
        return self.process.port

    def identity(self, name: str, lifetime: timedelta = timedelta(days=1)) -> IssuedIdentity:
        return self.ca.issue_to_directory(name, self.certs_dir, now=datetime.now(UTC), lifetime=lifetime)


def start_tls_broker(tmp: Path, ca: CertificateAuthority | None = None, **overrides: object) -> TlsBroker:
    require_mosquitto()
    certs = tmp / "certs"
    ca = ca or CertificateAuthority.create("cityedge test root", now=datetime.now(UTC))
    server = ca.issue_to_directory(
        "broker", certs, now=datetime.now(UTC), server_auth=True, extra_sans=("localhost", "127.0.0.1")
    )
    cfg = MosquittoConfig(
        data_dir=tmp / "data",
        tls_port=free_port(),
        cafile=server.ca_path,
        certfile=server.cert_path,
        keyfile=server.key_path,
        **overrides,  # type: ignore[arg-type]
    )
    return TlsBroker(MosquittoProcess(cfg, tmp).start(), ca, certs)


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[TlsBroker]:
    broker = start_tls_broker(tmp_path / "broker")
    try:
        yield broker
    finally:
        broker.process.kill()


@pytest.fixture
def plain_broker(tmp_path: Path) -> Iterator[MosquittoProcess]:
    require_mosquitto()
    cfg = MosquittoConfig(data_dir=tmp_path / "plain" / "data", plain_port=free_port())
    proc = MosquittoProcess(cfg, tmp_path / "plain").start()
    try:
        yield proc
    finally:
        proc.kill()


@pytest.fixture
def pg_url() -> str:
    require(postgres_available(), "PostgreSQL at 127.0.0.1:5432 (database test)")
    return PG_URL
