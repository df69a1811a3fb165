"""The CA signs only the device profile: valid names, matching SANs, proof of possession."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cityedge.pki import (
    CaLayout,
    Revocation,
    build_crl,
    certificate_id,
    days_left,
    generate_key,
    init_ca,
    load_certificate,
    make_csr,
    write_crl,
)
from cityedge.protocol.errors import PkiError

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> CaLayout:
    tmp = tmp_path_factory.mktemp("ca")
    return init_ca(tmp / "offline", tmp / "online", name="test", now=NOW)[1]


def csr_with(cn: str, sans: list[x509.GeneralName] | None = None) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    )
    if sans is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(generate_key(), hashes.SHA256())


def test_a_device_certificate_follows_the_profile(layout: CaLayout) -> None:
    cert = layout.load().sign_device_csr(make_csr(generate_key(), "edge-node-001"), now=NOW)
    assert certificate_id(cert) == "edge-node-001"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["edge-node-001"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert round(days_left(cert, NOW)) == 90
    assert cert.issuer == layout.load().cert.subject


@pytest.mark.parametrize("cn", ["edge/b", "edge+", "edge#", "Edge-A", "-edge", "edge a", "x" * 64])
def test_the_ca_refuses_a_cn_outside_the_charset(layout: CaLayout, cn: str) -> None:
    with pytest.raises(PkiError, match=r"outside the allowed charset|exactly one CN"):
        layout.load().sign_device_csr(csr_with(cn), now=NOW)


def test_the_ca_refuses_a_san_naming_someone_else(layout: CaLayout) -> None:
    with pytest.raises(PkiError, match="differs from its CN"):
        layout.load().sign_device_csr(csr_with("edge-a", [x509.DNSName("edge-b")]), now=NOW)
    with pytest.raises(PkiError, match="not allowed"):
        layout.load().sign_device_csr(csr_with("edge-a", [x509.RFC822Name("a@b.c")]), now=NOW)


def test_the_ca_refuses_a_csr_for_an_id_other_than_the_expected_one(layout: CaLayout) -> None:
    with pytest.raises(PkiError, match="not the device id 'edge-b'"):
        layout.load().sign_device_csr(csr_with("edge-a"), now=NOW, expected_id="edge-b")


def test_the_ca_refuses_a_csr_whose_signature_does_not_verify(layout: CaLayout) -> None:
    der = bytearray(make_csr(generate_key(), "edge-a").public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01  # inside the signature
    with pytest.raises(PkiError, match="signature does not verify"):
        layout.load().sign_device_csr(x509.load_der_x509_csr(bytes(der)), now=NOW)


def test_ca_init_keeps_the_root_key_out_of_the_ca_directory(tmp_path: Path) -> None:
    root, layout = init_ca(tmp_path / "offline", tmp_path / "online", name="t", now=NOW)
    assert root.key.exists() and not any(p.name == "root.key" for p in layout.directory.iterdir())
    assert layout.key.stat().st_mode & 0o077 == 0
    chain = layout.chain.read_bytes()
    assert chain.count(b"BEGIN CERTIFICATE") == 2
    with pytest.raises(PkiError, match="refusing to overwrite"):
        init_ca(tmp_path / "offline2", tmp_path / "online", name="t", now=NOW)
    with pytest.raises(PkiError, match="must lie outside"):
        init_ca(tmp_path / "x", tmp_path / "x" / "ca", name="t", now=NOW)


def _openssl_verify(layout: CaLayout, cert: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "/usr/bin/openssl",
            "verify",
            "-CAfile",
            str(layout.chain),
            "-CRLfile",
            str(layout.crl),
            "-crl_check",
            str(cert),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_openssl_accepts_an_issued_certificate_and_rejects_it_after_revocation(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    _, layout = init_ca(tmp_path / "offline", tmp_path / "online", name="t", now=now)
    ca = layout.load()
    ident = ca.issue_to_directory("edge-a", tmp_path / "dev", now=now, chain=layout.chain.read_bytes())
    accepted = _openssl_verify(layout, ident.cert_path)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    serial = load_certificate(ident.cert_path).serial_number
    write_crl(build_crl(ca, [Revocation(serial, now)], now=now + timedelta(seconds=1)), layout.crl)
    rejected = _openssl_verify(layout, ident.cert_path)
    assert rejected.returncode != 0
    assert "certificate revoked" in rejected.stdout + rejected.stderr
