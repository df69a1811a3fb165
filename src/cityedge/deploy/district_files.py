"""What a single-machine district's files say: the layout's paths and the configs, units and
inventory row written into it. Pure: settings in, paths, dicts and text out.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DistrictLayout", "DistrictSettings", "Paths"]


@dataclass(frozen=True)
class DistrictSettings:
    directory: Path
    name: str = "d1"
    host: str = "127.0.0.1"  # where clients reach the brokers and the API (a SAN of their certificates)
    bind: str = "127.0.0.1"
    broker_port: int = 8883
    local_port: int = 8884
    api_port: int = 8443
    node: str = "edge-node-001"
    serial: str | None = None
    user: str | None = "mosquitto"
    database: str | None = None
    ingest: tuple[str, ...] = ("ingest",)
    device_cert_days: float = 90.0
    service_cert_days: float = 365.0
    cityedge: str = "cityedge"  # the executable the units and steps name
    mosquitto: str = "mosquitto"

    @property
    def node_serial(self) -> str:
        return self.serial or f"SN-{self.node.upper()}"

    @property
    def sans(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.host, "localhost", "127.0.0.1")))


@dataclass(frozen=True)
class Paths:
    """Where each part of a district lives under its directory."""

    root: Path

    @property
    def offline(self) -> Path:
        return self.root / "offline"

    @property
    def ca(self) -> Path:
        return self.root / "ca"

    @property
    def certs(self) -> Path:
        return self.root / "certs"

    @property
    def control_plane(self) -> Path:
        return self.root / "control-plane.yaml"

    @property
    def operator_tokens(self) -> Path:
        return self.root / "operator-tokens"

    @property
    def cloud_broker(self) -> Path:
        return self.root / "cloud-broker"

    @property
    def systemd(self) -> Path:
        return self.root / "systemd"

    @property
    def steps(self) -> Path:
        return self.root / "NEXT-STEPS.txt"

    def ingest_config(self, identity: str) -> Path:
        return self.root / f"{identity}.yaml"

    def node_dir(self, node: str) -> Path:
        return self.root / "nodes" / node


class DistrictLayout:
    """Every path and file body of a district, from its settings."""

    def __init__(self, settings: DistrictSettings) -> None:
        self.s = settings
        self.paths = Paths(settings.directory.absolute())
        self.node_dir = self.paths.node_dir(settings.node)

    @property
    def database(self) -> str:
        return self.s.database or f"sqlite:///{self.paths.root / 'cloud.db'}"

    @property
    def api_url(self) -> str:
        return f"https://{self.s.host}:{self.s.api_port}"

    def service_dir(self, name: str) -> Path:
        return self.paths.certs / name

    def control_plane(self) -> dict[str, Any]:
        api, revoker = self.service_dir("api"), self.service_dir("revoker")
        return {
            "database": self.database,
            "ca_dir": str(self.paths.ca),
            "device_cert_days": self.s.device_cert_days,
            "service_cert_days": self.s.service_cert_days,
            "api": {
                "host": self.s.bind, "port": self.s.api_port,
                "certfile": str(api / "api.crt"), "keyfile": str(api / "api.key"),
                "operator_tokens_file": str(self.paths.operator_tokens),
            },
            "revocation": {
                "brokers": [f"{self.s.host}:{self.s.broker_port}"],
                "certfile": str(revoker / "revoker.crt"), "keyfile": str(revoker / "revoker.key"),
                "broker_pid_file": str(self.paths.cloud_broker / "data" / "mosquitto.pid"),
            },
        }  # fmt: skip

    def ingest(self, identity: str) -> dict[str, Any]:
        certs = self.service_dir(identity)
        return {
            "host": self.s.host, "port": self.s.broker_port, "client_id": identity,
            "tls": {
                "cafile": str(self.paths.ca / "chain.pem"),
                "certfile": str(certs / f"{identity}.crt"), "keyfile": str(certs / f"{identity}.key"),
            },
            # more than one replica: they split the traffic (see docs/architecture.md first)
            "share_group": "ingest" if len(self.s.ingest) > 1 else None,
            "database": self.database,
        }  # fmt: skip

    def node(self) -> dict[str, Any]:
        creds = self.node_dir / "creds"
        return {
            "node_id": self.s.node, "district": self.s.name, "data_dir": str(self.node_dir / "data"),
            "uplink": {"host": self.s.host, "port": self.s.broker_port},
            "identity": {"api_url": self.api_url, "credentials_dir": str(creds)},
            "local_bus": {
                "host": "127.0.0.1", "port": self.s.local_port,
                "tls": {
                    "cafile": str(creds / "chain.pem"),
                    "certfile": str(creds / "current" / "device.crt"),
                    "keyfile": str(creds / "current" / "device.key"),
                },
            },
            "heartbeat": {"interval_s": 10.0},
        }  # fmt: skip

    def inventory(self) -> str:
        digest = hashlib.sha256(self.s.node.encode()).digest()
        mac = ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))  # locally administered
        return (
            "device_id,serial,model,ip,mac,sim\n"
            f"{self.s.node},{self.s.node_serial},cityedge-node,127.0.0.1,{mac},none\n"
        )

    def unit(self, description: str, command: str, *, reload: bool = False) -> str:
        lines = [
            "[Unit]", f"Description={description}", "After=network-online.target", "",
            "[Service]", f"ExecStart={command}", "Restart=on-failure", "RestartSec=2",
        ]  # fmt: skip
        if reload:
            lines.append("ExecReload=/bin/kill -HUP $MAINPID")
        return "\n".join([*lines, "", "[Install]", "WantedBy=multi-user.target", ""])
