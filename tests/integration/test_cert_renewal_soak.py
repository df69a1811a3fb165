"""Soak: the node renews a short-lived certificate several times while records stream.

Real pieces: locked-down Mosquitto (mTLS, ACL, CRL), the control plane API over HTTPS, the
edge agent (outbox + uplink) with its Renewer, and ingest into SQLite. 0 lost, 0 duplicated.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cityedge.cloud.registry import Registry
from cityedge.cloud.store import RecordStore, make_engine, upgrade
from cityedge.cloud.store.registry import RegistryStore
from cityedge.edge.identity import CredentialStore, Renewer, enroll
from cityedge.pki.renewal import RenewalPolicy
from tests.support.api import serve_api
from tests.support.identity import DISTRICT, LockedBroker

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]

NODE = "edge-node-001"
LIFETIME = timedelta(seconds=24)  # renews every ~14 s (2/3 of the life, with jitter)
RENEWALS = 4
CSV = f"device_id,serial,model,ip,mac,sim\n{NODE},SN12345,NX-500,10.0.10.21,aa:bb:cc:dd:ee:ff,SIM-001\n"


def wait_until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_several_renewals_while_records_stream_lose_and_duplicate_nothing(
    broker: LockedBroker, tmp_path: Path
) -> None:
    from cityedge.cloud.ingest import IngestConfig, IngestConsumer
    from cityedge.edge.app import EdgeAgent
    from cityedge.edge.config import EdgeConfig, SyntheticConfig, TlsFiles, UplinkConfig

    district = broker.district
    db = f"sqlite:///{tmp_path / 'cloud.db'}"
    engine = make_engine(db)
    upgrade(engine)
    registry = Registry(RegistryStore(engine), district.layout, lifetime=LIFETIME)
    now = datetime.now(UTC)
    registry.import_inventory(CSV, "devices.csv", now)
    store = RecordStore.open(db)
    ingest_id = district.identity("ingest")
    ingest_tls = {"cafile": ingest_id.ca_path, "certfile": ingest_id.cert_path, "keyfile": ingest_id.key_path}
    ingest_cfg = {
        "host": "127.0.0.1",
        "port": broker.port,
        "client_id": "ingest",
        "database": db,
        "tls": ingest_tls,
    }
    ingest = IngestConsumer(IngestConfig.model_validate(ingest_cfg), store).start()
    with serve_api(registry, tmp_path) as api:
        creds = CredentialStore(tmp_path / "creds")
        token, _ = registry.issue_token("SN12345", now)
        first = enroll(api, token, "SN12345", NODE, creds, district.layout.chain)
        tls = TlsFiles(cafile=first.chain_path, certfile=first.cert_path, keyfile=first.key_path)
        uplink = UplinkConfig(
            host="127.0.0.1", port=broker.port, tls=tls, backoff_base_s=0.1, backoff_cap_s=1.0
        )
        synthetic = SyntheticConfig(telemetry_per_s=150, incidents_per_min=600)
        node_cfg = EdgeConfig(
            node_id=NODE, district=DISTRICT, data_dir=tmp_path / "node", uplink=uplink, synthetic=synthetic
        )
        agent = EdgeAgent(node_cfg).start()
        renewer = Renewer(
            api, NODE, creds, agent.uplink.swap_credentials, policy=RenewalPolicy(), max_sleep_s=0.5
        ).start()
        try:
            wait_until(lambda: renewer.renewals >= RENEWALS, 30 + RENEWALS * 20, f"{RENEWALS} renewals")
            agent.stop_producers()
            wait_until(lambda: agent.outbox.stats().total_pending == 0, 60, "the outbox to drain")
        finally:
            renewer.stop()
            stats = agent.outbox.stats()
            agent.stop()
        total = sum(s.last_seq for s in stats.streams.values())
        wait_until(lambda: store.counts().get("total", 0) >= total, 30, "ingest to commit the last batches")
    ingest.stop()
    records = store.records(node=NODE)
    store.close()
    engine.dispose()

    committed = {name: s.last_seq for name, s in stats.streams.items() if s.last_seq}
    by_stream: dict[str, list[int]] = {}
    for r in records:
        by_stream.setdefault(r.stream, []).append(r.seq)
    lost = {s: n - len(set(by_stream.get(s, []))) for s, n in committed.items()}
    duplicated = len(records) - len({r.id for r in records})
    print(f"renewals={renewer.renewals} records={len(records)} lost={lost} duplicated={duplicated}")
    assert sum(lost.values()) == 0 and duplicated == 0
    for stream, last_seq in committed.items():
        assert sorted(by_stream[stream]) == list(range(1, last_seq + 1)), stream
    assert len(records) > 1000
    # Each renewal really reconnected the uplink under the same identity with the new certificate.
    sessions = re.findall(rf"New client connected .* as {NODE} ", broker.process.log_path.read_text())
    assert len(sessions) >= RENEWALS + 1
