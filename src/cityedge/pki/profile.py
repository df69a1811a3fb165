"""Certificate profiles as pure checks: names, SANs, key usages, lifetime and days left.

The CA signs only a CSR whose CN is an allowed id and whose SANs name nothing else (a device)
or only the host names the operator listed (a server), so a certificate can never carry an
MQTT wildcard or topic separator into an ACL pattern.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from cryptography import x509
from cryptography.x509.oid import NameOID

from cityedge.protocol.envelope import NAME_PATTERN
from cityedge.protocol.errors import PkiError

__all__ = [
    "DEVICE_ID_PATTERN",
    "PROFILES",
    "SERVICE_PROFILES",
    "CertProfile",
    "certificate_id",
    "check_device_id",
    "check_sans",
    "csr_identity",
    "days_left",
    "life_fraction",
    "profile_of",
    "serial_hex",
]

# The issue's ^[a-z0-9-]+$, narrowed to what the topic tree accepts as a node segment.
DEVICE_ID_PATTERN = re.compile(NAME_PATTERN)


def check_device_id(name: str, *, where: str = "device id") -> str:
    if not DEVICE_ID_PATTERN.match(name):
        raise PkiError(f"{where} {name!r} is outside the allowed charset {DEVICE_ID_PATTERN.pattern}")
    return name


@dataclass(frozen=True)
class CertProfile:
    """What a certificate is for: TLS client, TLS server, or both; servers list host names."""

    name: str
    client_auth: bool
    server_auth: bool
    what: str

    @property
    def needs_sans(self) -> bool:
        return self.server_auth


PROFILES: Final[Mapping[str, CertProfile]] = {
    p.name: p
    for p in (
        CertProfile("device", True, False, "an edge node or sensor, enrolled with a token"),
        CertProfile("broker", False, True, "an MQTT broker's TLS listener (cloud or node-local)"),
        CertProfile("api", False, True, "the control plane's HTTPS API"),
        CertProfile("dashboard", False, True, "the dashboard's HTTPS server"),
        CertProfile("ingest", True, False, "an ingest replica's client certificate at the cloud broker"),
        CertProfile("revoker", True, False, "the client that cuts revoked sessions at each broker"),
    )
}
SERVICE_PROFILES: Final = tuple(name for name in PROFILES if name != "device")
_DNS = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


def profile_of(name: str) -> CertProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise PkiError(f"unknown certificate profile {name!r}; one of {', '.join(PROFILES)}") from None


def check_sans(profile: CertProfile, name: str, sans: Sequence[str]) -> tuple[str, ...]:
    """The extra SANs for a `profile` certificate named `name`: host names or IPs, servers only."""
    if sans and not profile.needs_sans:
        raise PkiError(
            f"{profile.name} certificates are identified by their CN ({name!r}); --san is for the "
            f"server profiles ({', '.join(p for p in SERVICE_PROFILES if PROFILES[p].needs_sans)})"
        )
    if profile.needs_sans and not sans:
        raise PkiError(
            f"{profile.name} certificates need --san for each host name or IP address clients "
            f"connect to (e.g. --san {name}.example.org --san 127.0.0.1)"
        )
    for san in sans:
        try:
            ipaddress.ip_address(san)
        except ValueError:
            if not _DNS.match(san):
                raise PkiError(f"SAN {san!r} is neither an IP address nor a lower-case DNS name") from None
    return tuple(dict.fromkeys(sans))


def _single_cn(name: x509.Name, what: str) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(attrs) != 1:
        raise PkiError(f"the {what} subject must carry exactly one CN")
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode()


def _san_names(extensions: x509.Extensions, servers: bool) -> list[str]:
    try:
        san = extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names: list[str] = []
    for general in san:
        if isinstance(general, x509.DNSName) or (servers and isinstance(general, x509.IPAddress)):
            names.append(str(general.value))
        else:
            raise PkiError(f"SAN {general!r} is not allowed in a device CSR (only the device id as DNS name)")
    return names


def csr_identity(
    csr: x509.CertificateSigningRequest, expected: str | None = None, allowed_sans: Sequence[str] = ()
) -> str:
    """The id a CSR asks for, after checking CN, SANs and (optionally) the expected id.

    A SAN the CSR asks for must be its CN or one of `allowed_sans` (what the operator listed).
    """
    cn = check_device_id(_single_cn(csr.subject, "CSR"), where="CSR CN")
    for name in _san_names(csr.extensions, servers=bool(allowed_sans)):
        if name != cn and name not in allowed_sans:
            if allowed_sans:
                raise PkiError(f"CSR SAN {name!r} is neither its CN {cn!r} nor one of the --san names")
            raise PkiError(f"CSR SAN {name!r} differs from its CN {cn!r}")
    if expected is not None and cn != expected:
        raise PkiError(f"CSR CN {cn!r} is not the device id {expected!r} this request is for")
    return cn


def certificate_id(cert: x509.Certificate) -> str:
    """The device id (CN) of a certificate we issued."""
    return _single_cn(cert.subject, "certificate")


def serial_hex(cert: x509.Certificate) -> str:
    return format(cert.serial_number, "x")


def days_left(cert: x509.Certificate, now: datetime) -> float:
    return (cert.not_valid_after_utc - now).total_seconds() / 86400


def life_fraction(cert: x509.Certificate, now: datetime) -> float:
    """How much of the certificate's life has passed: 0 at notBefore, 1 at notAfter."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    total = (end - start).total_seconds()
    return (now - start).total_seconds() / total if total > 0 else 1.0
