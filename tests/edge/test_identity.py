"""The node's renewer: renews at two thirds of the life, hands over new files, alarms near expiry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from cityedge.cloud.registry import Registry
from cityedge.cloud.store import make_engine, upgrade
from cityedge.cloud.store.registry import RegistryStore
from cityedge.edge.identity import CredentialStore, Renewer, enroll
from cityedge.pki import CaLayout, init_ca, load_certificate
from cityedge.pki.renewal import RenewalPolicy
from tests.support.api import serve_api

CSV = "device_id,serial,model,ip,mac,sim\nedge-node-001,SN12345,NX-500,10.0.10.21,aa:bb:cc:dd:ee:ff,SIM-001\n"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Registry]]:
    tmp = tmp_path_factory.mktemp("renewer")
    init_ca(tmp / "offline", tmp / "ca", name="t", now=datetime.now(UTC))
    engine = make_engine(f"sqlite:///{tmp / 'cloud.db'}")
    upgrade(engine)
    registry = Registry(RegistryStore(engine), CaLayout(tmp / "ca"))
    registry.import_inventory(CSV, "devices.csv", datetime.now(UTC))
    with serve_api(registry, tmp) as url:
        yield url, registry
    engine.dispose()


@pytest.fixture
def store(cloud: tuple[str, Registry], tmp_path: Path) -> CredentialStore:
    url, registry = cloud
    registry.store.revoke_device("edge-node-001", datetime.now(UTC))  # a clean slate per test
    token, _ = registry.issue_token("SN12345", datetime.now(UTC))
    creds = CredentialStore(tmp_path / "creds")
    enroll(url, token, "SN12345", "edge-node-001", creds, registry.layout.chain)
    return creds


def make_renewer(
    url: str, store: CredentialStore, at: datetime, swaps: list[tuple[Path, Path]], metrics: CollectorRegistry
) -> Renewer:
    return Renewer(
        url, "edge-node-001", store, lambda c, k: swaps.append((c, k)),
        policy=RenewalPolicy(), registry=metrics, rand=lambda: 0.5, clock=lambda: at,
    )  # fmt: skip


def test_nothing_happens_before_two_thirds_of_the_life(
    cloud: tuple[str, Registry], store: CredentialStore
) -> None:
    swaps: list[tuple[Path, Path]] = []
    metrics = CollectorRegistry()
    renewer = make_renewer(cloud[0], store, datetime.now(UTC) + timedelta(days=50), swaps, metrics)
    decision = renewer.check()
    assert not decision.renew_now and swaps == []
    assert 39 < (renewer.days_left or 0) < 41
    assert metrics.get_sample_value("cityedge_cert_expiry_seconds") == pytest.approx(
        renewer.days_left * 86400, abs=900
    )


def test_at_two_thirds_it_renews_and_hands_the_new_files_to_the_uplink(
    cloud: tuple[str, Registry], store: CredentialStore
) -> None:
    before = store.current()
    swaps: list[tuple[Path, Path]] = []
    metrics = CollectorRegistry()
    renewer = make_renewer(cloud[0], store, datetime.now(UTC) + timedelta(days=61), swaps, metrics)
    renewer.check()
    assert swaps == [(store.current().cert_path, store.current().key_path)]
    assert store.current() != before
    assert (
        load_certificate(store.current().cert_path).serial_number
        != load_certificate(before.cert_path).serial_number
    )
    assert renewer.renewals == 1


def test_a_refused_renewal_is_retried_later_and_the_alarm_rises_near_expiry(
    cloud: tuple[str, Registry], store: CredentialStore
) -> None:
    cloud[1].revoke("edge-node-001", datetime.now(UTC))
    swaps: list[tuple[Path, Path]] = []
    metrics = CollectorRegistry()
    at = datetime.now(UTC) + timedelta(days=80)
    renewer = make_renewer(cloud[0], store, at, swaps, metrics)
    decision = renewer.check()
    assert swaps == [] and renewer.last_failure == at
    assert decision.alarm and not decision.renew_now
    assert renewer.heartbeat_fields() == {
        "cert_days_left": renewer.days_left,
        "cert_alarm": True,
        "cert_renewals": 0,
    }
    assert metrics.get_sample_value("cityedge_cert_expiry_alarm") == 1


def test_only_the_current_and_previous_generations_are_kept(tmp_path: Path) -> None:
    creds = CredentialStore(tmp_path)
    for n in range(4):
        creds.write(b"key%d" % n, b"cert%d" % n, b"chain")
    assert sorted(p.name for p in tmp_path.glob("gen-*")) == ["gen-3", "gen-4"]
    assert creds.current().key_path.read_bytes() == b"key3"
    assert creds.current().key_path.stat().st_mode & 0o077 == 0
