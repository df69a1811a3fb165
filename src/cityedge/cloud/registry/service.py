"""The registry service: inventory import, bootstrap tokens, enrollment, renewal, revocation.

It joins the store (what exists), the issuing CA (what to sign) and the broker hook (cut a
revoked session). Every refusal is an `EnrollmentRefused` whose message says why. Service
certificates (brokers, the API, ingest, the revoker) are signed and recorded here too, so
`ca status` lists them by expiry beside the devices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from cityedge.cloud.registry.inventory import ImportPlan, parse_inventory, plan_import
from cityedge.cloud.registry.tokens import DEFAULT_TOKEN_TTL, hash_token, new_token, token_refusal
from cityedge.cloud.store.registry import CertificateRow, RegistryStore
from cityedge.pki import CaLayout, CertificateAuthority, Revocation, certificate_id, load_csr, serial_hex
from cityedge.pki.ca import DEFAULT_DEVICE_LIFETIME
from cityedge.pki.crl import DEFAULT_CRL_VALIDITY, CrlFreshness, build_crl, crl_state, load_crl, write_crl
from cityedge.pki.profile import CertProfile
from cityedge.protocol.errors import EnrollmentRefused, PkiError

__all__ = ["EnrollmentRefused", "Issued", "Registry"]


@dataclass(frozen=True)
class Issued:
    """A signed certificate as `enroll`, `renew` and `sign_service` hand it back: `device_id`
    is the id it certifies (a service's name for a service certificate), `chain_pem` the
    issuing chain a client verifies it by."""

    device_id: str
    certificate_pem: bytes
    chain_pem: bytes
    not_after: datetime


class Registry:
    """Identity lifecycle over a `RegistryStore` and the control plane's issuing CA."""

    def __init__(
        self,
        store: RegistryStore,
        layout: CaLayout,
        *,
        lifetime: timedelta = DEFAULT_DEVICE_LIFETIME,
        crl_validity: timedelta = DEFAULT_CRL_VALIDITY,
        on_revoked: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.layout = layout
        self._ca: CertificateAuthority | None = None
        self.lifetime = lifetime
        self.crl_validity = crl_validity
        self.on_revoked = on_revoked

    @property
    def ca(self) -> CertificateAuthority:
        """The issuing CA, loaded on first use (imports and tokens do not need its key)."""
        if self._ca is None:
            self._ca = self.layout.load()
        return self._ca

    # -- inventory ---------------------------------------------------------------------------
    def import_inventory(
        self, text: str | bytes, source: str, now: datetime, *, dry_run: bool = False
    ) -> ImportPlan:
        plan = plan_import(self.store.devices(), parse_inventory(text, source), source)
        if not dry_run and (plan.added or plan.changed):
            self.store.apply_import(plan.added, plan.changed, now)
        return plan

    # -- tokens --------------------------------------------------------------------------------
    def issue_token(
        self, serial: str, now: datetime, ttl: timedelta = DEFAULT_TOKEN_TTL
    ) -> tuple[str, datetime]:
        """A one-time token for the device with `serial`; only its hash is stored."""
        if self.store.device_by_serial(serial) is None:
            raise EnrollmentRefused(f"serial {serial!r} is not in the inventory")
        token, expires = new_token(), now + ttl
        self.store.add_token(hash_token(token), serial, now, expires)
        return token, expires

    # -- enrollment and renewal ------------------------------------------------------------------
    def enroll(self, token: str, serial: str, csr_pem: bytes, now: datetime) -> Issued:
        token_hash = hash_token(token)
        if reason := token_refusal(self.store.token(token_hash), serial, now):
            raise EnrollmentRefused(reason)
        device = self.store.device_by_serial(serial)
        if device is None:
            raise EnrollmentRefused(f"serial {serial!r} is not in the inventory")
        cert = self._sign(csr_pem, device.device_id, now)
        if not self.store.record_certificate(_row(cert, now, "enroll"), consume_token=token_hash):
            raise EnrollmentRefused("enrollment token already used")
        return self._issued(cert)

    def renew(self, client_cert_pem: bytes, csr_pem: bytes, now: datetime) -> Issued:
        """Renew for the device the (mTLS-verified) client certificate names; never for a revoked one."""
        current = self._known_certificate(client_cert_pem, now)
        cert = self._sign(csr_pem, current.device_id, now)
        self.store.record_certificate(_row(cert, now, "renew"))
        return self._issued(cert)

    def _known_certificate(self, pem: bytes, now: datetime) -> CertificateRow:
        try:
            presented = x509.load_pem_x509_certificate(pem)
            presented.verify_directly_issued_by(self.ca.cert)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise EnrollmentRefused(f"the client certificate was not issued by this CA ({exc})") from exc
        row = self.store.certificate(serial_hex(presented))
        if row is None or row.device_id != certificate_id(presented):
            raise EnrollmentRefused("the client certificate is unknown to the registry")
        if row.revoked_at is not None:
            raise EnrollmentRefused(f"the client certificate of {row.device_id} is revoked")
        if now >= row.not_after:
            raise EnrollmentRefused(f"the client certificate of {row.device_id} has expired; re-enroll")
        return row

    def _sign(self, csr_pem: bytes, device_id: str, now: datetime) -> x509.Certificate:
        if self.store.device(device_id) is None:
            raise EnrollmentRefused(f"device {device_id!r} is not in the inventory")
        try:
            csr = load_csr(csr_pem)
            return self.ca.sign_device_csr(csr, now=now, lifetime=self.lifetime, expected_id=device_id)
        except EnrollmentRefused:
            raise
        except PkiError as exc:
            raise EnrollmentRefused(str(exc)) from exc

    def sign_service(
        self,
        csr_pem: bytes,
        profile: CertProfile,
        name: str,
        sans: tuple[str, ...],
        now: datetime,
        lifetime: timedelta,
    ) -> Issued:
        """Sign a service's CSR with its profile's key usages and record it for `ca status`."""
        cert = self.ca.sign_csr(
            load_csr(csr_pem), profile, now=now, lifetime=lifetime, sans=sans, expected_id=name
        )
        self.store.record_certificate(_row(cert, now, "service", profile.name))
        return self._issued(cert)

    def certificate_profile(self, cert: x509.Certificate) -> str | None:
        """The profile this registry recorded for `cert`, or None when it never issued it."""
        row = self.store.certificate(serial_hex(cert))
        return row.profile if row is not None else None

    def _issued(self, cert: x509.Certificate) -> Issued:
        pem = cert.public_bytes(serialization.Encoding.PEM)
        return Issued(certificate_id(cert), pem, self.layout.chain.read_bytes(), cert.not_valid_after_utc)

    # -- revocation and the CRL ------------------------------------------------------------------
    def revoke(self, device_id: str, now: datetime) -> list[str]:
        """Revoke a device's certificates, publish the CRL, and cut its live sessions."""
        if self.store.device(device_id) is None:
            raise EnrollmentRefused(f"device {device_id!r} is not in the inventory")
        serials = self.store.revoke_device(device_id, now)
        self.publish_crl(now)
        if self.on_revoked is not None:
            self.on_revoked(device_id)
        return serials

    def publish_crl(self, now: datetime) -> None:
        revoked = [Revocation(int(r.serial, 16), r.revoked_at or now) for r in self.store.revoked()]
        write_crl(build_crl(self.ca, revoked, now=now, validity=self.crl_validity), self.layout.crl)

    def refresh_crl(self, now: datetime) -> bool:
        """Re-publish the CRL when it is past half its validity (or stale); True when it did."""
        state = crl_state(self._crl(), now)
        if state.freshness is CrlFreshness.FRESH:
            return False
        self.publish_crl(now)
        return True

    def _crl(self) -> x509.CertificateRevocationList | None:
        try:
            return load_crl(self.layout.crl)
        except PkiError:
            return None

    def ca_status(self, now: datetime) -> dict[str, Any]:
        """Live device and service certificates by expiry, expired and revoked ones, the CRL."""
        certs = self.store.certificates()
        live = [c for c in certs if c.revoked_at is None and c.not_after > now]
        state = crl_state(self._crl(), now)
        return {
            "issuing_ca": self.ca.cert.subject.rfc4514_string(),
            "issuing_ca_not_after": self.ca.cert.not_valid_after_utc.isoformat(),
            "certificates": [_cert_view(c, now) for c in live if c.profile == "device"],
            "services": [_cert_view(c, now) for c in live if c.profile != "device"],
            "expired": [_cert_view(c, now) for c in certs if c.revoked_at is None and c.not_after <= now],
            "revoked": [_cert_view(c, now) for c in certs if c.revoked_at is not None],
            "crl": {
                "freshness": state.freshness.value,
                "alert": state.alert,
                "this_update": state.this_update.isoformat() if state.this_update else None,
                "next_update": state.next_update.isoformat() if state.next_update else None,
                "revoked": state.revoked,
            },
        }


def _row(cert: x509.Certificate, now: datetime, via: str, profile: str = "device") -> CertificateRow:
    return CertificateRow(
        serial_hex(cert),
        certificate_id(cert),
        cert.not_valid_before_utc,
        cert.not_valid_after_utc,
        now,
        via,
        None,
        profile,
    )


def _cert_view(row: CertificateRow, now: datetime) -> dict[str, Any]:
    left = (row.not_after - now).total_seconds() / 86400
    return {
        "serial": row.serial,
        "device_id": row.device_id,
        "profile": row.profile,
        "not_after": row.not_after.isoformat(),
        "days_left": round(left, 2),
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }
