"""Per-device PKI: keys made on the device, CSRs, a CA that signs them (cryptography)."""

from cityedge.pki.ca import CertificateAuthority, IssuedIdentity
from cityedge.pki.keys import (
    generate_key,
    load_certificate,
    load_csr,
    load_private_key,
    make_csr,
    write_pem_atomic,
)

__all__ = [
    "CertificateAuthority",
    "IssuedIdentity",
    "generate_key",
    "load_certificate",
    "load_csr",
    "load_private_key",
    "make_csr",
    "write_pem_atomic",
]
