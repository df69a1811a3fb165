"""What the control-plane command groups share: options, the clock, JSON output, and the
control plane built from its config file and the options given."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from cityedge.cloud.app import ControlPlane
    from cityedge.cloud.config import ControlPlaneConfig

__all__ = [
    "BROKERS",
    "CA_DIR",
    "CONFIG",
    "DB",
    "PID_FILE",
    "REVOKER_CERT",
    "REVOKER_KEY",
    "control_plane",
    "control_plane_config",
    "echo_json",
    "now",
    "revocation",
]

CONFIG = typer.Option(
    None,
    "--config",
    "-c",
    help="Control plane config (YAML, see docs/configuration.md); options override it.",
)
DB = typer.Option(
    None,
    "--database",
    "-d",
    help="Store URL (sqlite:///cloud.db or postgresql://...); default sqlite:///cloud.db.",
)
CA_DIR = typer.Option(
    None, "--ca-dir", help="The issuing CA directory made by `cityedge ca init`; default ./ca."
)
BROKERS = typer.Option(None, "--broker", help="host:port of a broker whose live sessions revocation cuts.")
REVOKER_CERT = typer.Option(None, "--revoker-cert", help="The 'revoker' service certificate.")
REVOKER_KEY = typer.Option(None, "--revoker-key", help="The 'revoker' service key.")
PID_FILE = typer.Option(None, "--broker-pid-file", help="The broker's pid_file: SIGHUP it to load a new CRL.")


def revocation(
    brokers: list[str] | None, cert: Path | None, key: Path | None, pid_file: Path | None
) -> dict[str, Any]:
    """The revocation options as control plane config keys."""
    return {
        "revocation.brokers": brokers or None, "revocation.certfile": cert, "revocation.keyfile": key,
        "revocation.broker_pid_file": pid_file,
    }  # fmt: skip


def now() -> datetime:
    return datetime.now(UTC)


def echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def control_plane_config(config: Path | None, **overrides: Any) -> ControlPlaneConfig:
    """The control plane's config: the file's keys, then the options given (dotted keys)."""
    from cityedge.cloud.config import ControlPlaneConfig
    from cityedge.configfile import load_with_overrides

    return load_with_overrides(ControlPlaneConfig, config, overrides)


def control_plane(config: Path | None, **overrides: Any) -> ControlPlane:
    from cityedge.cloud.app import ControlPlane

    return ControlPlane.build(control_plane_config(config, **overrides))
