"""Where the CA lives on disk: an offline root and the control plane's online issuing CA.

`init_ca` makes both once. The root key is written only to the offline directory, which must
lie outside the control plane's directory; the control plane gets the issuing CA, the chain
(issuing + root) that brokers and devices trust, and the CRL it re-publishes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509

from cityedge.pki.ca import CertificateAuthority
from cityedge.pki.crl import build_crl, write_crl
from cityedge.pki.keys import key_pem, load_certificate, load_private_key, write_pem_atomic
from cityedge.protocol.errors import PkiError

__all__ = ["CaLayout", "OfflineRoot", "init_ca"]


@dataclass(frozen=True)
class OfflineRoot:
    """The root's directory: keep it on removable media or an HSM, never on the control plane."""

    directory: Path

    @property
    def key(self) -> Path:
        return self.directory / "root.key"

    @property
    def cert(self) -> Path:
        return self.directory / "root.crt"


@dataclass(frozen=True)
class CaLayout:
    """The control plane's CA directory."""

    directory: Path

    @property
    def key(self) -> Path:
        return self.directory / "issuing.key"

    @property
    def cert(self) -> Path:
        return self.directory / "issuing.crt"

    @property
    def root_cert(self) -> Path:
        return self.directory / "root.crt"

    @property
    def chain(self) -> Path:
        """Issuing CA + root: the CA file brokers, devices and `openssl verify` use."""
        return self.directory / "chain.pem"

    @property
    def crl(self) -> Path:
        return self.directory / "crl.pem"

    def load(self) -> CertificateAuthority:
        if not self.key.exists():
            raise PkiError(f"no issuing CA in {self.directory} (run `cityedge ca init` first)")
        return CertificateAuthority(load_private_key(self.key), load_certificate(self.cert))

    def root(self) -> x509.Certificate:
        return load_certificate(self.root_cert)


def _check_apart(offline: Path, online: Path) -> None:
    off, on = offline.resolve(), online.resolve()
    if off == on or on in off.parents or off in on.parents:
        raise PkiError(f"the offline root directory {offline} must lie outside the CA directory {online}")


def init_ca(
    offline: Path,
    online: Path,
    *,
    name: str,
    now: datetime,
    root_lifetime: timedelta = timedelta(days=3650),
    issuing_lifetime: timedelta = timedelta(days=1825),
) -> tuple[OfflineRoot, CaLayout]:
    """Create the root (offline) and the issuing CA (online) with an empty CRL; never overwrite."""
    _check_apart(offline, online)
    root_dir, layout = OfflineRoot(offline), CaLayout(online)
    for existing in (root_dir.key, layout.key):
        if existing.exists():
            raise PkiError(f"{existing} exists: refusing to overwrite a CA")
    root = CertificateAuthority.create(f"{name} root CA", now=now, lifetime=root_lifetime)
    issuing = root.issue_intermediate(f"{name} issuing CA", now=now, lifetime=issuing_lifetime)
    write_pem_atomic(root_dir.key, key_pem(root.key), private=True)
    write_pem_atomic(root_dir.cert, root.cert_pem)
    write_pem_atomic(layout.key, key_pem(issuing.key), private=True)
    write_pem_atomic(layout.cert, issuing.cert_pem)
    write_pem_atomic(layout.root_cert, root.cert_pem)
    write_pem_atomic(layout.chain, issuing.cert_pem + root.cert_pem)
    write_crl(build_crl(issuing, [], now=now), layout.crl)
    return root_dir, layout
