"""A certificate authority that signs CSRs with the cityedge certificate profile.

Device certificates: EC P-256, CN = device id, a DNS SAN with the device id, client-auth
EKU. The CA checks the CSR's own signature (proof of possession) and the name charset
before it signs anything.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cityedge.pki.keys import (
    generate_key,
    key_pem,
    load_certificate,
    load_private_key,
    make_csr,
    write_pem_atomic,
)
from cityedge.pki.profile import DEVICE_ID_PATTERN, CertProfile, check_sans, csr_identity
from cityedge.protocol.errors import PkiError

__all__ = ["DEVICE_ID_PATTERN", "CertificateAuthority", "IssuedIdentity"]

DEFAULT_DEVICE_LIFETIME = timedelta(days=90)


@dataclass(frozen=True)
class IssuedIdentity:
    """A key and certificate written to disk, with the CA chain that validates it."""

    key_path: Path
    cert_path: Path
    ca_path: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class CertificateAuthority:
    """One CA key and certificate. `create` makes a self-signed root."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self.key = key
        self.cert = cert

    @classmethod
    def create(
        cls, name: str, *, now: datetime, lifetime: timedelta = timedelta(days=3650)
    ) -> CertificateAuthority:
        key = generate_key()
        cert = (
            cls._builder(_name(name), _name(name), key.public_key(), now, lifetime)
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(cls._ca_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @classmethod
    def load(cls, directory: Path) -> CertificateAuthority:
        return cls(load_private_key(directory / "ca.key"), load_certificate(directory / "ca.crt"))

    def save(self, directory: Path) -> None:
        write_pem_atomic(directory / "ca.key", key_pem(self.key), private=True)
        write_pem_atomic(directory / "ca.crt", self.cert_pem)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue_intermediate(
        self, name: str, *, now: datetime, lifetime: timedelta = timedelta(days=1825)
    ) -> CertificateAuthority:
        key = generate_key()
        cert = (
            self._builder(_name(name), self.cert.subject, key.public_key(), now, lifetime)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(self._ca_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(self._aki(), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return CertificateAuthority(key, cert)

    def sign_device_csr(
        self,
        csr: x509.CertificateSigningRequest,
        *,
        now: datetime,
        lifetime: timedelta = DEFAULT_DEVICE_LIFETIME,
        client_auth: bool = True,
        server_auth: bool = False,
        extra_sans: tuple[str, ...] = (),
        expected_id: str | None = None,
    ) -> x509.Certificate:
        """Sign a CSR whose CN is a device or service id; refuse anything else.

        `expected_id` (the id the inventory or token vouches for) must equal the CSR's CN.
        """
        cn = self._checked_cn(csr, expected_id, ())
        return self._sign(csr, cn, now, lifetime, client_auth, server_auth, extra_sans)

    def sign_csr(
        self,
        csr: x509.CertificateSigningRequest,
        profile: CertProfile,
        *,
        now: datetime,
        lifetime: timedelta,
        sans: tuple[str, ...] = (),
        expected_id: str | None = None,
    ) -> x509.Certificate:
        """Sign a CSR with a named profile's key usages; a server lists the host names in `sans`."""
        cn = self._checked_cn(csr, expected_id, sans)
        sans = check_sans(profile, cn, sans)
        return self._sign(csr, cn, now, lifetime, profile.client_auth, profile.server_auth, sans)

    @staticmethod
    def _checked_cn(
        csr: x509.CertificateSigningRequest, expected_id: str | None, sans: tuple[str, ...]
    ) -> str:
        if not csr.is_signature_valid:
            raise PkiError("the CSR's signature does not verify (no proof of key possession)")
        public_key = csr.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or public_key.curve.name != "secp256r1":
            raise PkiError("the CSR's key must be EC P-256")
        return csr_identity(csr, expected_id, sans)

    def _sign(
        self,
        csr: x509.CertificateSigningRequest,
        cn: str,
        now: datetime,
        lifetime: timedelta,
        client_auth: bool,
        server_auth: bool,
        extra_sans: tuple[str, ...],
    ) -> x509.Certificate:
        public_key = csr.public_key()
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        usages = ([ExtendedKeyUsageOID.CLIENT_AUTH] if client_auth else []) + (
            [ExtendedKeyUsageOID.SERVER_AUTH] if server_auth else []
        )
        return (
            self._builder(_name(cn), self.cert.subject, public_key, now, lifetime)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(_sans(cn, extra_sans)), critical=False)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.KeyUsage(True, False, False, False, True, False, False, False, False),
                critical=True,
            )
            .add_extension(self._aki(), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    def issue_to_directory(
        self,
        name: str,
        directory: Path,
        *,
        now: datetime,
        lifetime: timedelta = DEFAULT_DEVICE_LIFETIME,
        server_auth: bool = False,
        extra_sans: tuple[str, ...] = (),
        chain: bytes | None = None,
    ) -> IssuedIdentity:
        """Make a key for `name` locally and issue its certificate (tests, services, pilot)."""
        key = generate_key()
        cert = self.sign_device_csr(
            make_csr(key, name),
            now=now,
            lifetime=lifetime,
            server_auth=server_auth,
            extra_sans=extra_sans,
        )
        ident = IssuedIdentity(directory / f"{name}.key", directory / f"{name}.crt", directory / "ca.crt")
        write_pem_atomic(ident.key_path, key_pem(key), private=True)
        write_pem_atomic(ident.cert_path, cert.public_bytes(serialization.Encoding.PEM))
        write_pem_atomic(ident.ca_path, chain if chain is not None else self.cert_pem)
        return ident

    def _aki(self) -> x509.AuthorityKeyIdentifier:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key())

    @staticmethod
    def _ca_usage() -> x509.KeyUsage:
        return x509.KeyUsage(True, False, False, False, False, True, True, False, False)

    @staticmethod
    def _builder(
        subject: x509.Name,
        issuer: x509.Name,
        public_key: ec.EllipticCurvePublicKey,
        now: datetime,
        lifetime: timedelta,
    ) -> x509.CertificateBuilder:
        if now.tzinfo is None:
            raise PkiError("now must be timezone-aware")
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            # Backdated for clock skew, but never by more than a tenth of a short life.
            .not_valid_before(now - min(timedelta(minutes=5), lifetime / 10))
            .not_valid_after(now + lifetime)
        )


def _sans(cn: str, extra: tuple[str, ...]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(cn)]
    for item in dict.fromkeys(x for x in extra if x != cn):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(item)))
        except ValueError:
            names.append(x509.DNSName(item))
    return names


def utcnow() -> datetime:
    return datetime.now(UTC)
