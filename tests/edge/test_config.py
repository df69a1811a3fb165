from pathlib import Path

import pytest

from cityedge.configfile import load_config
from cityedge.edge.config import EdgeConfig
from cityedge.protocol.errors import ConfigError

GOOD = """
node_id: edge-node-001
district: corridor-a
data_dir: /var/lib/cityedge
uplink:
  host: broker.example
  port: 8883
  tls: {cafile: ca.crt, certfile: node.crt, keyfile: node.key}
outbox:
  max_bytes: 1048576
  streams:
    telemetry: {priority: 2, when_full: drop_oldest, ttl_s: 3600}
"""


def test_a_valid_node_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "node.yaml"
    path.write_text(GOOD)
    cfg = load_config(EdgeConfig, path)
    assert cfg.uplink.tls is not None and cfg.outbox.streams["telemetry"].when_full == "drop_oldest"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (GOOD.replace("district: corridor-a", "district: Corridor/A"), "district"),
        (GOOD + "surprise: 1\n", "surprise: Extra inputs are not permitted"),
        (GOOD.replace("when_full: drop_oldest", "when_full: sometimes"), "streams.telemetry.when_full"),
        (GOOD.replace("port: 8883", "port: 99999"), "uplink.port"),
        ("node_id: [unclosed", "line 1"),
    ],
)
def test_bad_node_configs_name_the_file_and_field(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "node.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(EdgeConfig, path)
    assert str(path) in str(info.value) and fragment in str(info.value)


def test_a_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(EdgeConfig, tmp_path / "absent.yaml")


def test_a_node_with_a_renewed_identity_takes_its_uplink_files_from_the_credentials_dir(
    tmp_path: Path,
) -> None:
    text = GOOD.replace("  tls: {cafile: ca.crt, certfile: node.crt, keyfile: node.key}\n", "")
    text += "identity: {api_url: https://cp.example:8443, credentials_dir: /etc/cityedge/creds}\n"
    path = tmp_path / "node.yaml"
    path.write_text(text)
    tls = load_config(EdgeConfig, path).uplink_tls()
    assert tls is not None
    assert (str(tls.cafile), str(tls.certfile)) == (
        "/etc/cityedge/creds/chain.pem",
        "/etc/cityedge/creds/current/device.crt",
    )


def test_identity_and_fixed_uplink_files_together_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.yaml"
    path.write_text(GOOD + "identity: {api_url: https://cp.example, credentials_dir: /creds}\n")
    with pytest.raises(ConfigError, match="either identity"):
        load_config(EdgeConfig, path)
