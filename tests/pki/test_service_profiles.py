"""Service certificates get their profile's key usages and only the host names listed."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cityedge.pki import CaLayout, generate_key, init_ca, make_csr
from cityedge.pki.profile import PROFILES, SERVICE_PROFILES, profile_of
from cityedge.protocol.errors import PkiError

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SERVER, CLIENT = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> CaLayout:
    tmp = tmp_path_factory.mktemp("ca")
    return init_ca(tmp / "offline", tmp / "online", name="test", now=NOW)[1]


def sign(layout: CaLayout, profile: str, name: str, sans: tuple[str, ...] = ()) -> x509.Certificate:
    return layout.load().sign_csr(
        make_csr(generate_key(), name), profile_of(profile), now=NOW, lifetime=timedelta(days=365), sans=sans
    )


@pytest.mark.parametrize(
    ("profile", "usages", "sans"),
    [
        ("broker", [SERVER], ("broker.d1.example", "10.0.0.5")),
        ("api", [SERVER], ("cloud.d1.example",)),
        ("dashboard", [SERVER], ("dash.d1.example",)),
        ("ingest", [CLIENT], ()),
        ("revoker", [CLIENT], ()),
    ],
)
def test_each_service_profile_has_its_key_usage_and_names(
    layout: CaLayout, profile: str, usages: list[x509.ObjectIdentifier], sans: tuple[str, ...]
) -> None:
    cert = sign(layout, profile, profile, sans)
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == usages
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = san.get_values_for_type(x509.DNSName) + [
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    ]
    assert names == [profile, *sans]
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    assert cert.not_valid_after_utc - NOW == timedelta(days=365)


def test_the_profiles_are_the_ones_the_cli_offers() -> None:
    assert SERVICE_PROFILES == ("broker", "api", "dashboard", "ingest", "revoker")
    assert PROFILES["device"].client_auth and not PROFILES["device"].server_auth


def test_a_server_certificate_needs_the_names_clients_connect_to(layout: CaLayout) -> None:
    with pytest.raises(PkiError, match="broker certificates need --san for each host name or IP"):
        sign(layout, "broker", "broker")


def test_a_client_certificate_takes_no_host_names(layout: CaLayout) -> None:
    with pytest.raises(PkiError, match=r"ingest certificates are identified by their CN \('ingest'\)"):
        sign(layout, "ingest", "ingest", ("ingest.example",))


@pytest.mark.parametrize("san", ["*.d1.example", "Broker.Example", "bro ker", "a/b", "-x.example"])
def test_a_san_that_is_no_host_name_is_refused(layout: CaLayout, san: str) -> None:
    with pytest.raises(PkiError, match="neither an IP address nor a lower-case DNS name"):
        sign(layout, "broker", "broker", (san,))


def test_a_csr_asking_for_a_name_the_operator_did_not_list_is_refused(layout: CaLayout) -> None:
    key = generate_key()
    sans = [x509.DNSName("broker"), x509.IPAddress(ipaddress.ip_address("10.9.9.9"))]
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "broker")]))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )
    refused = r"CSR SAN '10\.9\.9\.9' is neither its CN 'broker' nor one of the --san"
    with pytest.raises(PkiError, match=refused):
        layout.load().sign_csr(
            csr, profile_of("broker"), now=NOW, lifetime=timedelta(days=1), sans=("10.0.0.5",)
        )
    cert = layout.load().sign_csr(
        csr, profile_of("broker"), now=NOW, lifetime=timedelta(days=1), sans=("10.9.9.9",)
    )
    assert cert.subject.rfc4514_string() == "CN=broker"


def test_an_unknown_profile_is_named(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="unknown certificate profile 'web'; one of device, broker"):
        profile_of("web")
