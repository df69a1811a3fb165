"""Service certificates on disk: issue one (a key made here, or a CSR from the service's host)
and renew one in place, keeping its profile, its host names and its file owner.

A renewal writes the new key and certificate beside the old ones and swaps them key first;
a crash between the two swaps is finished by the next `ca renew` (roll forward), so a broker
never keeps a key that does not match its certificate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cityedge.cloud.registry.service import Issued, Registry
from cityedge.pki import certificate_id, generate_key, load_certificate, make_csr, write_pem_atomic
from cityedge.pki.keys import key_pem
from cityedge.pki.profile import SERVICE_PROFILES, profile_of
from cityedge.protocol.errors import PkiError

__all__ = ["ServiceFiles", "issue_service", "renew_service", "service_paths"]


@dataclass(frozen=True)
class ServiceFiles:
    name: str
    profile: str
    key: Path | None  # None when the key stayed on the service's own host (issued from a CSR)
    cert: Path
    chain: Path
    not_after: datetime
    sans: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name, "profile": self.profile, "key": self.key, "cert": self.cert,
            "chain": self.chain, "not_after": self.not_after.isoformat(), "sans": list(self.sans),
        }  # fmt: skip


def service_paths(out_dir: Path, name: str) -> tuple[Path, Path, Path]:
    """(key, certificate, chain) of service `name` in `out_dir`."""
    out = out_dir.absolute()
    return out / f"{name}.key", out / f"{name}.crt", out / "chain.pem"


def issue_service(
    registry: Registry,
    profile: str,
    name: str,
    sans: tuple[str, ...],
    out_dir: Path,
    *,
    now: datetime,
    lifetime: timedelta,
    csr_pem: bytes | None = None,
) -> ServiceFiles:
    """Issue `name`'s first certificate into `out_dir`; never overwrite (that is `renew_service`)."""
    if profile not in SERVICE_PROFILES:
        raise PkiError(f"profile {profile!r} is not a service profile; one of {', '.join(SERVICE_PROFILES)}")
    key_path, cert_path, chain_path = service_paths(out_dir, name)
    for existing in (key_path, cert_path):
        if existing.exists():
            raise PkiError(f"{existing} exists; `cityedge ca renew {cert_path}` replaces it")
    key = generate_key() if csr_pem is None else None
    if key is not None:
        csr_pem = make_csr(key, name).public_bytes(serialization.Encoding.PEM)
    assert csr_pem is not None
    issued = registry.sign_service(csr_pem, profile_of(profile), name, sans, now, lifetime)
    _write_pair(key_path if key else None, key_pem(key) if key else None, cert_path, issued, None)
    write_pem_atomic(chain_path, issued.chain_pem)
    return ServiceFiles(
        name, profile, key_path if key else None, cert_path, chain_path, issued.not_after, sans
    )


def renew_service(registry: Registry, cert_path: Path, *, now: datetime, lifetime: timedelta) -> ServiceFiles:
    """A new key and certificate for the service whose certificate is `cert_path`, same names."""
    cert_path = cert_path.absolute()
    key_path = cert_path.with_suffix(".key")
    _finish_interrupted_swap(key_path, cert_path)
    old = load_certificate(cert_path)
    name, profile = certificate_id(old), registry.certificate_profile(old)
    if profile is None or profile not in SERVICE_PROFILES:
        raise PkiError(f"{cert_path}: not a service certificate this registry issued (`ca issue` makes one)")
    if not key_path.exists():
        raise PkiError(
            f"{cert_path}: its key {key_path.name} is not beside it (renew on the host holding it)"
        )
    sans = _extra_sans(old, name)
    key = generate_key()
    csr = make_csr(key, name).public_bytes(serialization.Encoding.PEM)
    issued = registry.sign_service(csr, profile_of(profile), name, sans, now, lifetime)
    _write_pair(key_path, key_pem(key), cert_path, issued, os.stat(key_path))
    return ServiceFiles(
        name, profile, key_path, cert_path, cert_path.parent / "chain.pem", issued.not_after, sans
    )


def _extra_sans(cert: x509.Certificate, cn: str) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    names = [str(n.value) for n in san if isinstance(n, x509.DNSName | x509.IPAddress)]
    return tuple(n for n in names if n != cn)


def _pending(path: Path) -> Path:
    return path.with_name(path.name + ".new")


def _write_pair(
    key_path: Path | None, key: bytes | None, cert_path: Path, issued: Issued, owner: os.stat_result | None
) -> None:
    """Write both files as `.new`, then swap the key and then the certificate in."""
    cert_pem = issued.certificate_pem
    if key_path is not None and key is not None:
        write_pem_atomic(_pending(key_path), key, private=True)
        if owner is not None:  # the broker's key stays its user's, with the same mode
            os.chmod(_pending(key_path), owner.st_mode & 0o777)
            if os.geteuid() == 0:
                os.chown(_pending(key_path), owner.st_uid, owner.st_gid)
    write_pem_atomic(_pending(cert_path), cert_pem)
    if key_path is not None and key is not None:
        os.replace(_pending(key_path), key_path)
    os.replace(_pending(cert_path), cert_path)


def _finish_interrupted_swap(key_path: Path, cert_path: Path) -> None:
    # The key was swapped but not yet its certificate: finish, so the pair matches again.
    if _pending(cert_path).exists() and not _pending(key_path).exists():
        os.replace(_pending(cert_path), cert_path)
    else:
        for leftover in (_pending(key_path), _pending(cert_path)):
            leftover.unlink(missing_ok=True)
