"""The device certificate profile as pure checks: names, SANs, lifetime and days left.

The CA signs only a CSR whose CN is an allowed device id and whose SANs name nothing else,
so a certificate can never carry an MQTT wildcard or topic separator into an ACL pattern.
"""

from __future__ import annotations

import re
from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import NameOID

from cityedge.protocol.envelope import NAME_PATTERN
from cityedge.protocol.errors import PkiError

__all__ = [
    "DEVICE_ID_PATTERN",
    "certificate_id",
    "check_device_id",
    "csr_identity",
    "days_left",
    "life_fraction",
    "serial_hex",
]

# The issue's ^[a-z0-9-]+$, narrowed to what the topic tree accepts as a node segment.
DEVICE_ID_PATTERN = re.compile(NAME_PATTERN)


def check_device_id(name: str, *, where: str = "device id") -> str:
    if not DEVICE_ID_PATTERN.match(name):
        raise PkiError(f"{where} {name!r} is outside the allowed charset {DEVICE_ID_PATTERN.pattern}")
    return name


def _single_cn(name: x509.Name, what: str) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(attrs) != 1:
        raise PkiError(f"the {what} subject must carry exactly one CN")
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode()


def _san_names(extensions: x509.Extensions) -> list[str]:
    try:
        san = extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names: list[str] = []
    for general in san:
        if not isinstance(general, x509.DNSName):
            raise PkiError(f"SAN {general!r} is not allowed in a device CSR (only the device id as DNS name)")
        names.append(general.value)
    return names


def csr_identity(csr: x509.CertificateSigningRequest, expected: str | None = None) -> str:
    """The device id a CSR asks for, after checking CN, SANs and (optionally) the expected id."""
    cn = check_device_id(_single_cn(csr.subject, "CSR"), where="CSR CN")
    for name in _san_names(csr.extensions):
        if name != cn:
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
