"""`init_district` writes a whole, consistent district, or nothing at all."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from cityedge.cloud.config import ControlPlaneConfig
from cityedge.cloud.ingest.config import IngestConfig
from cityedge.cloud.store import make_engine
from cityedge.cloud.store.registry import RegistryStore
from cityedge.configfile import load_config
from cityedge.deploy.district import DistrictSettings, init_district
from cityedge.edge.config import EdgeConfig
from cityedge.protocol.errors import ConfigError

NOW = datetime.now(UTC)


@pytest.fixture
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="cityedge-district-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def settings(directory: Path, **kw: object) -> DistrictSettings:
    return DistrictSettings(directory, user=None, **kw)  # type: ignore[arg-type]


def test_every_config_it_writes_loads_and_points_at_files_that_exist(root: Path) -> None:
    district = init_district(settings(root / "d", ingest=("ingest", "ingest-2")), NOW)
    d = root / "d"
    plane = load_config(ControlPlaneConfig, d / "control-plane.yaml")
    for path in (plane.api.certfile, plane.api.keyfile, plane.revocation.certfile, plane.ca_dir / "crl.pem"):
        assert path is not None and path.is_absolute() and path.exists(), path
    for name in ("ingest", "ingest-2"):
        ingest = load_config(IngestConfig, d / f"{name}.yaml")
        assert ingest.tls is not None and ingest.tls.certfile.exists() and ingest.client_id == name
        assert ingest.share_group == "ingest"  # two replicas split the traffic
    node = load_config(EdgeConfig, d / "nodes" / "edge-node-001" / "node.yaml")
    assert node.identity is not None and node.identity.api_url == "https://127.0.0.1:8443"
    with pytest.raises(
        ConfigError, match=r"uplink cafile .*creds/chain.pem does not exist \(run `cityedge enroll`"
    ):
        node.check_files()  # the node enrolls first: the steps say so
    acl = (d / "cloud-broker" / "acl.conf").read_text()
    assert "user ingest-2\ntopic read ce/v1/d1/+/up/+" in acl
    assert (d / "operator-tokens").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in (d / "systemd").iterdir()) == [
        "cityedge-d1-api.service", "cityedge-d1-broker.service", "cityedge-d1-ingest-2.service",
        "cityedge-d1-ingest.service", "cityedge-edge-node-001-agent.service",
        "cityedge-edge-node-001-broker.service",
    ]  # fmt: skip
    assert district.text() == (d / "NEXT-STEPS.txt").read_text()


def test_the_service_certificates_are_in_the_registry(root: Path) -> None:
    init_district(settings(root / "d"), NOW)
    engine = make_engine(f"sqlite:///{root / 'd' / 'cloud.db'}")
    try:
        rows = RegistryStore(engine).certificates()
    finally:
        engine.dispose()
    assert sorted((r.device_id, r.profile) for r in rows) == [
        ("api", "api"), ("broker", "broker"), ("edge-node-001-broker", "broker"), ("ingest", "ingest"),
        ("revoker", "revoker"),
    ]  # fmt: skip


def test_the_steps_are_the_commands_in_order(root: Path) -> None:
    text = init_district(settings(root / "d", cityedge="ce", mosquitto="mq"), NOW).text()
    commands = [line[4:] for line in text.splitlines() if line.startswith("  $ ")]
    assert [c.split()[0:3] for c in commands] == [
        ["mq", "-c", f"{root}/d/cloud-broker/mosquitto.conf"], ["ce", "api", "serve"],
        ["ce", "cloud", "ingest"], ["ce", "inventory", "import"],
        ["CITYEDGE_ENROLL_TOKEN=$(ce", "device", "token"],
        ["mq", "-c", f"{root}/d/nodes/edge-node-001/local-broker/mosquitto.conf"], ["ce", "edge", "run"],
        ["ce", "cloud", "records"],
    ]  # fmt: skip
    assert [c.endswith(" &") for c in commands] == [True, True, True, False, False, True, True, False]


def test_an_existing_directory_with_files_is_refused(root: Path) -> None:
    (root / "d").mkdir()
    (root / "d" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="exists and is not an empty directory; choose a new one"):
        init_district(settings(root / "d"), NOW)
    assert [p.name for p in (root / "d").iterdir()] == ["keep.txt"]


def test_a_failure_half_way_leaves_nothing_behind(root: Path) -> None:
    with pytest.raises(ConfigError, match="user 'no-such-broker-user' does not exist"):
        init_district(DistrictSettings(root / "d", user="no-such-broker-user"), NOW)
    assert not (root / "d").exists()
    (root / "e").mkdir()
    with pytest.raises(ConfigError):
        init_district(DistrictSettings(root / "e", user="no-such-broker-user"), NOW)
    assert list((root / "e").iterdir()) == []


def test_the_control_plane_config_round_trips_as_yaml(root: Path) -> None:
    init_district(settings(root / "d", device_cert_days=30.0), NOW)
    data = yaml.safe_load((root / "d" / "control-plane.yaml").read_text())
    assert data["device_cert_days"] == 30.0
    assert json.loads(json.dumps(data))["revocation"]["brokers"] == ["127.0.0.1:8883"]
