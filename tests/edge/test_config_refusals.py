"""A node config that cannot work is refused at start, with a sentence."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from cityedge.configfile import load_config
from cityedge.edge.app import EdgeAgent
from cityedge.edge.config import EdgeConfig
from cityedge.protocol.errors import ConfigError


def node(tmp_path: Path, **uplink: object) -> dict[str, object]:
    return {"node_id": "edge-a", "district": "d1", "data_dir": str(tmp_path / "data"), "uplink": uplink}


def write(tmp_path: Path, data: dict[str, object]) -> Path:
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_backoff_cap_below_its_base_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, node(tmp_path, backoff_base_s=5, backoff_cap_s=1))
    with pytest.raises(
        ConfigError, match=r"uplink: Value error, backoff_cap_s \(1.0\) must be >= backoff_base_s"
    ):
        load_config(EdgeConfig, path)


def test_a_missing_certificate_file_stops_the_agent_at_start(tmp_path: Path) -> None:
    tls = {
        "cafile": str(tmp_path / "chain.pem"),
        "certfile": str(tmp_path / "n.crt"),
        "keyfile": str(tmp_path / "n.key"),
    }
    for name in ("chain.pem", "n.key"):
        (tmp_path / name).write_text("x")
    cfg = load_config(EdgeConfig, write(tmp_path, node(tmp_path, tls=tls)))
    with pytest.raises(ConfigError, match=r"node edge-a: uplink certfile .*n.crt does not exist"):
        EdgeAgent(cfg)
    assert not (tmp_path / "data").exists(), "nothing is created for an agent that cannot start"


def test_a_metrics_port_in_use_is_a_sentence(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = load_config(EdgeConfig, write(tmp_path, {**node(tmp_path, port=1), "metrics_port": port}))
        agent = EdgeAgent(cfg)
        try:
            with pytest.raises(
                ConfigError, match=f"metrics_port {port}: cannot listen on 127.0.0.1:{port}: Address"
            ):
                agent.start()
        finally:
            agent.outbox.close()  # nothing else started
