"""Per-device PKI: keys made on the device, CSRs, the certificate profile, a CA, CRLs."""

from cityedge.pki.ca import CertificateAuthority, IssuedIdentity
from cityedge.pki.crl import CrlFreshness, CrlState, Revocation, build_crl, crl_state, load_crl, write_crl
from cityedge.pki.keys import (
    generate_key,
    load_certificate,
    load_csr,
    load_private_key,
    make_csr,
    write_pem_atomic,
)
from cityedge.pki.layout import CaLayout, OfflineRoot, init_ca
from cityedge.pki.profile import (
    DEVICE_ID_PATTERN,
    certificate_id,
    check_device_id,
    csr_identity,
    days_left,
    life_fraction,
    serial_hex,
)

__all__ = [
    "DEVICE_ID_PATTERN",
    "CaLayout",
    "CertificateAuthority",
    "CrlFreshness",
    "CrlState",
    "IssuedIdentity",
    "OfflineRoot",
    "Revocation",
    "build_crl",
    "certificate_id",
    "check_device_id",
    "crl_state",
    "csr_identity",
    "days_left",
    "generate_key",
    "init_ca",
    "life_fraction",
    "load_certificate",
    "load_crl",
    "load_csr",
    "load_private_key",
    "make_csr",
    "serial_hex",
    "write_crl",
    "write_pem_atomic",
]
