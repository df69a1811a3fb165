"""Enrollment and renewal: what the registry signs, and every refusal the issue lists."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cityedge.cloud.registry import EnrollmentRefused, Registry
from cityedge.cloud.registry.tokens import hash_token
from cityedge.pki import certificate_id, generate_key, make_csr
from tests.support.registry import GUIDE_CSV, NOW

SERIAL = "SN12345"
DEVICE = "edge-node-001"
TWO = GUIDE_CSV + "edge-node-002,SN2,NX-500,10.0.10.22,aa:bb:cc:dd:ee:02,SIM-002\n"


def csr_pem(name: str = DEVICE) -> bytes:
    return make_csr(generate_key(), name).public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def fleet(registry: Registry) -> Registry:
    registry.import_inventory(TWO, "devices.csv", NOW)
    return registry


def test_a_device_enrolls_with_its_token_and_gets_its_own_identity(fleet: Registry) -> None:
    token, expires = fleet.issue_token(SERIAL, NOW)
    assert expires == NOW + timedelta(hours=1)
    issued = fleet.enroll(token, SERIAL, csr_pem(), NOW)
    cert = x509.load_pem_x509_certificate(issued.certificate_pem)
    assert certificate_id(cert) == DEVICE
    assert b"BEGIN CERTIFICATE" in issued.chain_pem
    assert fleet.store.token(hash_token(token)) is not None
    assert fleet.store.token(token) is None  # stored hashed, never in clear


def test_a_reused_token_is_refused(fleet: Registry) -> None:
    token, _ = fleet.issue_token(SERIAL, NOW)
    fleet.enroll(token, SERIAL, csr_pem(), NOW)
    with pytest.raises(EnrollmentRefused, match="already used"):
        fleet.enroll(token, SERIAL, csr_pem(), NOW + timedelta(minutes=1))


def test_an_expired_token_is_refused(fleet: Registry) -> None:
    token, expires = fleet.issue_token(SERIAL, NOW)
    with pytest.raises(EnrollmentRefused, match="expired"):
        fleet.enroll(token, SERIAL, csr_pem(), expires)


def test_a_token_for_another_serial_is_refused(fleet: Registry) -> None:
    token, _ = fleet.issue_token("SN2", NOW)
    with pytest.raises(EnrollmentRefused, match="bound to another serial"):
        fleet.enroll(token, SERIAL, csr_pem(), NOW)


def test_an_unknown_token_is_refused(fleet: Registry) -> None:
    with pytest.raises(EnrollmentRefused, match="unknown enrollment token"):
        fleet.enroll("made-up", SERIAL, csr_pem(), NOW)


def test_a_csr_whose_signature_does_not_verify_is_refused(fleet: Registry) -> None:
    token, _ = fleet.issue_token(SERIAL, NOW)
    der = bytearray(make_csr(generate_key(), DEVICE).public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01
    pem = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(EnrollmentRefused, match="signature does not verify"):
        fleet.enroll(token, SERIAL, pem, NOW)
    # The refused attempt did not burn the token: the device can retry with a good CSR.
    assert certificate_id(
        x509.load_pem_x509_certificate(fleet.enroll(token, SERIAL, csr_pem(), NOW).certificate_pem)
    )


def test_a_csr_for_an_id_other_than_the_serials_device_is_refused(fleet: Registry) -> None:
    token, _ = fleet.issue_token(SERIAL, NOW)
    with pytest.raises(EnrollmentRefused, match="not the device id 'edge-node-001'"):
        fleet.enroll(token, SERIAL, csr_pem("edge-node-002"), NOW)
    with pytest.raises(EnrollmentRefused, match="not the device id"):
        fleet.enroll(token, SERIAL, csr_pem("edge-ghost"), NOW)


def test_a_token_for_a_serial_not_in_the_inventory_cannot_be_issued(fleet: Registry) -> None:
    with pytest.raises(EnrollmentRefused, match="not in the inventory"):
        fleet.issue_token("SN-NOPE", NOW)


def _enrolled(fleet: Registry) -> bytes:
    token, _ = fleet.issue_token(SERIAL, NOW)
    return fleet.enroll(token, SERIAL, csr_pem(), NOW).certificate_pem


def test_renewal_with_a_valid_certificate_issues_a_new_one(fleet: Registry) -> None:
    current = _enrolled(fleet)
    renewed = fleet.renew(current, csr_pem(), NOW + timedelta(days=60))
    cert = x509.load_pem_x509_certificate(renewed.certificate_pem)
    assert certificate_id(cert) == DEVICE
    assert cert.not_valid_after_utc > NOW + timedelta(days=149)


def test_renewal_with_a_revoked_certificate_is_refused(fleet: Registry) -> None:
    current = _enrolled(fleet)
    assert len(fleet.revoke(DEVICE, NOW + timedelta(days=1))) == 1
    with pytest.raises(EnrollmentRefused, match="revoked"):
        fleet.renew(current, csr_pem(), NOW + timedelta(days=2))


def test_renewal_cannot_change_the_identity(fleet: Registry) -> None:
    current = _enrolled(fleet)
    with pytest.raises(EnrollmentRefused, match="not the device id"):
        fleet.renew(current, csr_pem("edge-node-002"), NOW + timedelta(days=1))


def test_renewal_with_an_expired_certificate_is_refused(fleet: Registry) -> None:
    current = _enrolled(fleet)
    with pytest.raises(EnrollmentRefused, match="expired; re-enroll"):
        fleet.renew(current, csr_pem(), NOW + timedelta(days=91))


def test_revocation_publishes_a_crl_and_status_shows_it(fleet: Registry) -> None:
    calls: list[str] = []
    fleet.on_revoked = calls.append
    _enrolled(fleet)
    fleet.revoke(DEVICE, NOW + timedelta(hours=1))
    status = fleet.ca_status(NOW + timedelta(hours=2))
    assert calls == [DEVICE]
    assert [c["device_id"] for c in status["revoked"]] == [DEVICE]
    assert status["crl"] == status["crl"] | {"freshness": "fresh", "alert": False, "revoked": 1}


def test_a_crl_past_half_its_validity_is_republished_and_a_stale_one_alerts(fleet: Registry) -> None:
    fleet.publish_crl(NOW)
    assert not fleet.refresh_crl(NOW + timedelta(days=1))
    assert fleet.ca_status(NOW + timedelta(days=8))["crl"]["alert"]
    assert fleet.refresh_crl(NOW + timedelta(days=4))
    assert not fleet.ca_status(NOW + timedelta(days=8))["crl"]["alert"]
