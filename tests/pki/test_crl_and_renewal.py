"""CRL freshness and the renewal policy are pure decisions over time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityedge.pki import CertificateAuthority, CrlFreshness, Revocation, build_crl, crl_state
from cityedge.pki.renewal import RenewalPolicy
from cityedge.protocol.errors import ConfigError

NOW = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("t", now=NOW)


def test_a_crl_is_fresh_then_due_for_republishing_then_stale(ca: CertificateAuthority) -> None:
    crl = build_crl(ca, [Revocation(7, NOW)], now=NOW, validity=timedelta(days=7))
    assert crl_state(crl, NOW + DAY).freshness is CrlFreshness.FRESH
    assert crl_state(crl, NOW + 4 * DAY).freshness is CrlFreshness.REPUBLISH
    stale = crl_state(crl, NOW + 7 * DAY)
    assert stale.freshness is CrlFreshness.STALE and stale.alert
    assert crl_state(crl, NOW).revoked == 1
    assert crl_state(None, NOW).alert


def test_renewal_waits_until_two_thirds_of_the_life() -> None:
    policy = RenewalPolicy(jitter_fraction=0.0)
    start, end = NOW, NOW + 90 * DAY
    early = policy.decide(start, end, NOW + 59 * DAY, draw=0.5)
    assert not early.renew_now and early.next_check == NOW + 60 * DAY and not early.alarm
    due = policy.decide(start, end, NOW + 60 * DAY, draw=0.5)
    assert due.renew_now


def test_a_failed_renewal_is_retried_later_not_in_a_tight_loop() -> None:
    policy = RenewalPolicy(jitter_fraction=0.0)
    start, end = NOW, NOW + 90 * DAY
    at = NOW + 61 * DAY
    held = policy.decide(start, end, at + timedelta(minutes=10), draw=0.5, last_failure=at)
    assert not held.renew_now and held.next_check == at + timedelta(hours=1)
    assert policy.decide(start, end, at + timedelta(hours=1), draw=0.5, last_failure=at).renew_now


def test_fewer_than_14_days_left_raises_the_alarm_and_expiry_is_reported() -> None:
    policy = RenewalPolicy()
    start, end = NOW, NOW + 90 * DAY
    assert policy.decide(start, end, end - 13 * DAY, draw=0.1).alarm
    assert not policy.decide(start, end, end - 15 * DAY, draw=0.1).alarm
    assert policy.decide(start, end, end + DAY, draw=0.1).expired


@given(st.floats(min_value=0.0, max_value=0.999999), st.integers(min_value=60, max_value=400 * 86400))
def test_jitter_keeps_renewal_inside_its_band(draw: float, life_s: int) -> None:
    policy = RenewalPolicy()
    life = timedelta(seconds=life_s)
    at = policy.renew_at(NOW, NOW + life, draw)
    assert NOW + life * 0.6166 <= at <= NOW + life * 0.7167


def test_a_policy_whose_band_leaves_the_life_is_refused() -> None:
    with pytest.raises(ConfigError):
        RenewalPolicy(at_fraction=0.98, jitter_fraction=0.05)
