"""The control plane API over real HTTPS: operator gate, import, enroll, renew over mTLS, revoke."""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cityedge.cloud.registry import Registry
from cityedge.cloud.store import make_engine, upgrade
from cityedge.cloud.store.registry import RegistryStore
from cityedge.edge.identity import CredentialStore, enroll, renew_once
from cityedge.pki import CaLayout, certificate_id, generate_key, init_ca, make_csr
from cityedge.pki.profile import PROFILES
from cityedge.protocol.errors import PkiError
from tests.support.api import OPERATOR_TOKEN, serve_api

CSV = (
    "device_id,serial,model,ip,mac,sim\n"
    "edge-node-001,SN12345,NX-500,10.0.10.21,aa:bb:cc:dd:ee:ff,SIM-001\n"
    "edge-node-002,SN2,NX-500,10.0.10.22,aa:bb:cc:dd:ee:02,SIM-002\n"
)
AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Registry, Path]]:
    tmp = tmp_path_factory.mktemp("api")
    init_ca(tmp / "offline", tmp / "ca", name="test", now=datetime.now(UTC))
    engine = make_engine(f"sqlite:///{tmp / 'cloud.db'}")
    upgrade(engine)
    registry = Registry(RegistryStore(engine), CaLayout(tmp / "ca"))
    with serve_api(registry, tmp) as url:
        yield url, registry, tmp
    engine.dispose()


def http(registry: Registry) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=str(registry.layout.chain)), timeout=10)


def test_operator_endpoints_need_the_bearer_token(api: tuple[str, Registry, Path]) -> None:
    url, registry, _ = api
    with http(registry) as client:
        assert client.get(f"{url}/api/v1/devices").status_code == 401
        bad = client.get(f"{url}/api/v1/devices", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        assert client.get(f"{url}/api/v1/ca/status").status_code == 401


def test_an_import_with_errors_returns_every_problem_and_imports_nothing(
    api: tuple[str, Registry, Path],
) -> None:
    url, registry, _ = api
    broken = CSV + "edge-node-003,SN2,NX-500,10.0.10.999,zz,SIM-3\n"
    with http(registry) as client:
        response = client.post(f"{url}/api/v1/devices/import", content=broken, headers=AUTH)
        assert response.status_code == 422
        problems = response.json()["detail"]["problems"]
        assert any("upload:4: duplicate serial 'SN2'" in p for p in problems)
        assert any("upload:4: ip '10.0.10.999'" in p for p in problems)
        assert client.get(f"{url}/api/v1/devices", headers=AUTH).json() == []


def test_a_device_enrolls_renews_over_mtls_and_is_refused_once_revoked(
    api: tuple[str, Registry, Path], tmp_path: Path
) -> None:
    url, registry, _ = api
    with http(registry) as client:
        imported = client.post(f"{url}/api/v1/devices/import", content=CSV, headers=AUTH).json()
        assert sorted(imported["added"]) == ["edge-node-001", "edge-node-002"]
        devices = client.get(f"{url}/api/v1/devices", headers=AUTH).json()
        assert [d["device_id"] for d in devices] == ["edge-node-001", "edge-node-002"]
        token = client.post(f"{url}/api/v1/devices/by-serial/SN12345/token", headers=AUTH).json()["token"]
    store = CredentialStore(tmp_path / "creds")
    first = enroll(url, token, "SN12345", "edge-node-001", store, registry.layout.chain)
    assert certificate_id(x509.load_pem_x509_certificate(first.cert_path.read_bytes())) == "edge-node-001"
    with pytest.raises(PkiError, match=r"403.*already used"):
        enroll(
            url, token, "SN12345", "edge-node-001", CredentialStore(tmp_path / "again"), registry.layout.chain
        )

    second = renew_once(url, "edge-node-001", store)
    assert second.cert_path != first.cert_path and store.current() == second
    assert second.key_path.read_bytes() != first.key_path.read_bytes()  # a fresh key per renewal

    with http(registry) as client:
        revoked = client.post(f"{url}/api/v1/devices/edge-node-001/revoke", headers=AUTH).json()
        assert len(revoked["revoked_serials"]) == 2
        status = client.get(f"{url}/api/v1/ca/status", headers=AUTH).json()
        assert {c["device_id"] for c in status["revoked"]} == {"edge-node-001"}
        assert status["crl"]["revoked"] == 2
        crl = x509.load_pem_x509_crl(client.get(f"{url}/api/v1/ca/crl").content)
        assert len(crl) == 2
    with pytest.raises(PkiError, match=r"403.*revoked"):
        renew_once(url, "edge-node-001", store)


def test_metrics_answer_at_slash_metrics_with_crl_freshness_and_days_left(
    api: tuple[str, Registry, Path],
) -> None:
    url, registry, _ = api
    registry.sign_service(
        make_csr(generate_key(), "ingest").public_bytes(serialization.Encoding.PEM),
        PROFILES["ingest"], "ingest", (), datetime.now(UTC), timedelta(days=30),
    )  # fmt: skip
    with http(registry) as client:
        response = client.get(f"{url}/metrics")  # what Prometheus scrapes: 200, not a redirect
    assert response.status_code == 200, response.status_code
    text = response.text
    assert "cityedge_crl_stale 0.0" in text
    assert "cityedge_crl_next_update_seconds" in text
    assert re.search(
        r'cityedge_service_cert_expiry_seconds\{profile="ingest",service="ingest"\} 2\.59\d*e\+06', text
    ), text


def test_an_upload_that_is_not_utf8_is_refused_with_its_line(api: tuple[str, Registry, Path]) -> None:
    url, registry, _ = api
    latin1 = (CSV + "edge-node-003,SN3,NX-500,10.0.10.23,aa:bb:cc:dd:ee:03,Stra\xdfe\n").encode("latin-1")
    with http(registry) as client:
        response = client.post(f"{url}/api/v1/devices/import?dry_run=true", content=latin1, headers=AUTH)
    assert response.status_code == 422
    (problem,) = response.json()["detail"]["problems"]
    assert problem.startswith("upload:4: byte 0xdf at column 59 is not UTF-8"), problem


def test_renewal_without_a_client_certificate_is_refused(api: tuple[str, Registry, Path]) -> None:
    url, registry, _ = api
    with http(registry) as client:
        response = client.post(f"{url}/api/v1/renew", json={"csr": "x"})
    assert response.status_code == 401
