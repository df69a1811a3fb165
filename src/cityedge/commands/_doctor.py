"""What `cityedge doctor` runs and prints (the command itself only parses its options)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import typer

from cityedge.protocol.doctor import Finding, worst
from cityedge.protocol.errors import ConfigError

__all__ = ["print_findings", "run_doctor"]

_COLOURS = {"ok": "green", "warn": "yellow", "fail": "red", "unknown": "bright_black"}


def run_doctor(
    config: Path | None,
    node: str | None,
    control_plane: Path | None,
    database: str | None,
    ca_dir: Path | None,
    crl: str | None,
    time_url: str | None,
) -> list[Finding]:
    if (config is None) == (node is None):
        raise ConfigError("give one of --config node.yaml (on the node) or --node ID (from the cloud)")
    if config is not None:
        from cityedge.configfile import load_config
        from cityedge.edge.config import EdgeConfig
        from cityedge.edge.doctor import run_node_doctor

        return run_node_doctor(load_config(EdgeConfig, config), crl=crl, time_url=time_url)
    assert node is not None
    return _cloud(node, control_plane, database, ca_dir)


def _cloud(node: str, config: Path | None, database: str | None, ca_dir: Path | None) -> list[Finding]:
    from cityedge.cloud.fleet.doctor import cloud_doctor
    from cityedge.cloud.fleet.monitor import thresholds_of
    from cityedge.cloud.store.fleet import FleetStore
    from cityedge.commands._shared import control_plane, now

    overrides: dict[str, Any] = {
        k: v for k, v in (("database", database), ("ca_dir", ca_dir)) if v is not None
    }
    with control_plane(config, **overrides) as plane:
        rows = FleetStore(plane.engine).nodes(node)
        at = now()
        status = plane.registry.ca_status(at)
        return cloud_doctor(node, rows[0] if rows else None, status, at, thresholds_of(plane.config.fleet))


def print_findings(findings: list[Finding], as_json: bool) -> int:
    if as_json:
        for f in findings:
            typer.echo(msgspec.json.encode(f).decode())
    else:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table("check", "verdict", "what was found", "fix", title="cityedge doctor")
        for f in findings:
            colour = _COLOURS[f.verdict]
            table.add_row(
                escape(f.check), f"[{colour}]{f.verdict}[/{colour}]", escape(f.detail), escape(f.fix)
            )
        Console(width=200).print(table)
    return 1 if worst(findings) == "fail" else 0
