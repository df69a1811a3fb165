"""Certificate revocation lists: build and sign one, read one, and judge its freshness.

Brokers check client certificates against the CRL at each TLS handshake; an expired CRL
makes OpenSSL refuse every client, so freshness is a pure decision the control plane acts on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from cityedge.pki.ca import CertificateAuthority
from cityedge.pki.keys import write_pem_atomic
from cityedge.protocol.errors import PkiError

__all__ = [
    "DEFAULT_CRL_VALIDITY",
    "CrlFreshness",
    "CrlState",
    "Revocation",
    "build_crl",
    "crl_state",
    "load_crl",
    "write_crl",
]

DEFAULT_CRL_VALIDITY = timedelta(days=7)


@dataclass(frozen=True)
class Revocation:
    serial: int
    revoked_at: datetime


class CrlFreshness(Enum):
    FRESH = "fresh"
    REPUBLISH = "republish"  # past half of its validity: publish a new one now
    STALE = "stale"  # past nextUpdate (or missing): brokers may refuse everyone; alert


@dataclass(frozen=True)
class CrlState:
    freshness: CrlFreshness
    this_update: datetime | None
    next_update: datetime | None
    revoked: int

    @property
    def alert(self) -> bool:
        return self.freshness is CrlFreshness.STALE


def build_crl(
    ca: CertificateAuthority,
    revoked: Iterable[Revocation],
    *,
    now: datetime,
    validity: timedelta = DEFAULT_CRL_VALIDITY,
    number: int | None = None,
) -> x509.CertificateRevocationList:
    """A CRL signed by `ca` listing `revoked`, valid from now for `validity`."""
    if now.tzinfo is None:
        raise PkiError("now must be timezone-aware")
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - timedelta(minutes=1))
        .next_update(now + validity)
        .add_extension(x509.CRLNumber(number if number is not None else int(now.timestamp())), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    for item in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(item.serial).revocation_date(item.revoked_at)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(ca.key, hashes.SHA256())


def write_crl(crl: x509.CertificateRevocationList, path: Path) -> None:
    write_pem_atomic(path, crl.public_bytes(serialization.Encoding.PEM))


def load_crl(path: Path) -> x509.CertificateRevocationList:
    try:
        return x509.load_pem_x509_crl(path.read_bytes())
    except OSError as exc:
        raise PkiError(f"cannot read CRL {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise PkiError(f"{path}: not a PEM CRL ({exc})") from exc


def crl_state(crl: x509.CertificateRevocationList | None, now: datetime) -> CrlState:
    """Fresh, due for re-publication (past half its validity), or stale (past nextUpdate)."""
    if crl is None:
        return CrlState(CrlFreshness.STALE, None, None, 0)
    this, nxt = crl.last_update_utc, crl.next_update_utc
    if nxt is None or now >= nxt:
        freshness = CrlFreshness.STALE
    elif now >= this + (nxt - this) / 2:
        freshness = CrlFreshness.REPUBLISH
    else:
        freshness = CrlFreshness.FRESH
    return CrlState(freshness, this, nxt, len(crl))
