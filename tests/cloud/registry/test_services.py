"""Service certificates from the registry: issued with their profile, listed by `ca status`,
renewed in place with the same names and file owner, never half-swapped."""

from __future__ import annotations

import json
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from cityedge.cli import app
from cityedge.cloud.registry import Registry
from cityedge.cloud.registry.services import issue_service, renew_service
from cityedge.pki import generate_key, load_certificate, load_private_key, make_csr
from cityedge.protocol.errors import PkiError
from tests.support.registry import GUIDE_CSV, NOW

YEAR = timedelta(days=365)


def sans_of(path: Path) -> list[str]:
    san = load_certificate(path).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(n.value) for n in san]


def test_a_service_certificate_is_issued_with_its_key_and_listed_by_ca_status(
    registry: Registry, tmp_path: Path
) -> None:
    files = issue_service(registry, "broker", "broker", ("broker.d1.example", "127.0.0.1"), tmp_path, now=NOW,
                          lifetime=YEAR)  # fmt: skip
    assert files.key is not None and stat.S_IMODE(files.key.stat().st_mode) == 0o600
    cert = load_certificate(files.cert)
    assert cert.public_key() == load_private_key(files.key).public_key()
    assert files.chain.read_bytes() == registry.layout.chain.read_bytes()
    status = registry.ca_status(NOW)
    (service,) = status["services"]
    assert (service["device_id"], service["profile"], service["days_left"]) == ("broker", "broker", 365.0)
    assert status["certificates"] == []  # services are not devices


def test_issuing_never_overwrites_a_service_certificate(registry: Registry, tmp_path: Path) -> None:
    issue_service(registry, "ingest", "ingest", (), tmp_path, now=NOW, lifetime=YEAR)
    with pytest.raises(PkiError, match=r"ingest.key exists; `cityedge ca renew .*ingest.crt` replaces it"):
        issue_service(registry, "ingest", "ingest", (), tmp_path, now=NOW, lifetime=YEAR)


def test_a_csr_from_the_services_host_keeps_the_key_there(registry: Registry, tmp_path: Path) -> None:
    csr = make_csr(generate_key(), "api").public_bytes(serialization.Encoding.PEM)
    files = issue_service(registry, "api", "api", ("cloud.d1.example",), tmp_path, now=NOW, lifetime=YEAR,
                          csr_pem=csr)  # fmt: skip
    assert files.key is None and not (tmp_path / "api.key").exists()
    with pytest.raises(PkiError, match="CSR CN 'api' is not the device id 'dashboard'"):
        issue_service(
            registry,
            "dashboard",
            "dashboard",
            ("d.example",),
            tmp_path / "d",
            now=NOW,
            lifetime=YEAR,
            csr_pem=csr,
        )


def test_device_is_not_a_service_profile(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="'device' is not a service profile"):
        issue_service(registry, "device", "edge-node-001", (), tmp_path, now=NOW, lifetime=YEAR)


def test_renewal_keeps_name_profile_sans_owner_and_mode(registry: Registry, tmp_path: Path) -> None:
    first = issue_service(registry, "broker", "broker", ("10.0.0.5",), tmp_path, now=NOW, lifetime=YEAR)
    assert first.key is not None
    old_serial = load_certificate(first.cert).serial_number
    os.chmod(first.key, 0o640)
    later = NOW + timedelta(days=300)
    second = renew_service(registry, first.cert, now=later, lifetime=YEAR)
    new = load_certificate(second.cert)
    assert new.serial_number != old_serial
    assert sans_of(second.cert) == ["broker", "10.0.0.5"]
    assert new.not_valid_after_utc == later + YEAR
    assert second.key is not None and stat.S_IMODE(second.key.stat().st_mode) == 0o640
    assert new.public_key() == load_private_key(second.key).public_key()
    assert [s["profile"] for s in registry.ca_status(later)["services"]] == ["broker", "broker"]
    assert not list(tmp_path.glob("*.new"))


def test_a_renewal_interrupted_between_the_two_swaps_is_finished_next_time(
    registry: Registry, tmp_path: Path
) -> None:
    first = issue_service(registry, "revoker", "revoker", (), tmp_path, now=NOW, lifetime=YEAR)
    assert first.key is not None
    # as if a renewal had swapped the key in and died before the certificate: a mismatched pair
    key = generate_key()
    csr = make_csr(key, "revoker").public_bytes(serialization.Encoding.PEM)
    from cityedge.pki.profile import profile_of

    issued = registry.sign_service(csr, profile_of("revoker"), "revoker", (), NOW, YEAR)
    first.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))  # fmt: skip
    (tmp_path / "revoker.crt.new").write_bytes(issued.certificate_pem)
    renewed = renew_service(registry, first.cert, now=NOW, lifetime=YEAR)
    assert renewed.key is not None
    assert load_certificate(renewed.cert).public_key() == load_private_key(renewed.key).public_key()


def test_a_device_certificate_is_not_renewed_as_a_service(registry: Registry, tmp_path: Path) -> None:
    registry.import_inventory(GUIDE_CSV, "devices.csv", NOW)
    token, _ = registry.issue_token("SN12345", NOW)
    key = generate_key()
    issued = registry.enroll(token, "SN12345", make_csr(key, "edge-node-001").public_bytes(
        serialization.Encoding.PEM), NOW)  # fmt: skip
    (tmp_path / "edge-node-001.crt").write_bytes(issued.certificate_pem)
    with pytest.raises(PkiError, match="not a service certificate this registry issued"):
        renew_service(registry, tmp_path / "edge-node-001.crt", now=NOW, lifetime=YEAR)


def test_the_ca_commands_issue_list_and_renew_services(tmp_path: Path) -> None:
    runner = CliRunner()

    def run(*args: str) -> dict[str, object]:
        result = runner.invoke(
            app, [*args, "-d", f"sqlite:///{tmp_path / 'c.db'}", "--ca-dir", str(tmp_path / "ca")]
        )
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.stdout))

    init = runner.invoke(
        app, ["ca", "init", "--offline", str(tmp_path / "off"), "--ca-dir", str(tmp_path / "ca")]
    )
    assert init.exit_code == 0, init.output
    tls = str(tmp_path / "tls")
    issued = run("ca", "issue", "--profile", "api", "api", "--san", "127.0.0.1", "--out", tls, "--days", "30")
    assert issued["profile"] == "api" and issued["sans"] == ["127.0.0.1"]
    status = run("ca", "status")
    assert [(s["device_id"], s["profile"]) for s in status["services"]] == [("api", "api")]  # type: ignore[index,union-attr]
    renewed = run("ca", "renew", str(tmp_path / "tls" / "api.crt"))
    assert renewed["sans"] == ["127.0.0.1"] and renewed["not_after"] != issued["not_after"]
