"""`cityedge doctor`: the field guide's troubleshooting steps as checks, each with a verdict and a
fix; on a node (`--config node.yaml`) or from the cloud (`--node ID` against the store)."""

from __future__ import annotations

from pathlib import Path

import typer

from cityedge.commands._shared import CA_DIR, DB

__all__ = ["register"]


def doctor(
    config: Path | None = typer.Option(None, "--config", "-c", help="On a node: its node.yaml."),
    node: str | None = typer.Option(None, "--node", help="From the cloud: the node to examine."),
    control_plane: Path | None = typer.Option(
        None, "--control-plane", help="From the cloud: control-plane.yaml."
    ),
    database: str | None = DB,
    ca_dir: Path | None = CA_DIR,
    crl: str | None = typer.Option(
        None, "--crl", help="CRL file or URL (default: the node's identity.api_url)."
    ),
    time_url: str | None = typer.Option(
        None, "--time-url", help="A control-plane URL whose clock is the reference."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per finding."),
) -> None:
    """Certificate and chain, CRL, broker and TLS handshake, round trip and jitter, outbox backlog and drops (and records waiting for the store), disk and retention, clock skew, camera streams. Exit 1 when a check fails."""  # noqa: E501
    from cityedge.commands._doctor import print_findings, run_doctor

    findings = run_doctor(config, node, control_plane, database, ca_dir, crl, time_url)
    raise typer.Exit(print_findings(findings, as_json))


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.command("doctor")(doctor)
