"""`cityedge pilot`: run the whole stack on one machine and report whether nothing was lost."""

from __future__ import annotations

import json
from pathlib import Path

import typer

__all__ = ["register"]


def pilot(
    seconds: float = typer.Option(20.0, help="How long the node produces records."),
    telemetry_per_s: float = typer.Option(50.0, help="Synthetic telemetry records per second."),
    incidents_per_min: float = typer.Option(30.0, help="Synthetic incidents per minute."),
    outage_at: float = typer.Option(6.0, help="Cut the node's link this many seconds in (negative: never)."),
    outage_for: float = typer.Option(4.0, help="How long the link stays cut."),
    broker: str = typer.Option("auto", help="auto (Mosquitto if installed), mosquitto, or embedded (amqtt)."),
    workdir: Path | None = typer.Option(None, help="Keep brokers' data, certificates and databases here."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the report as JSON to this file."),
) -> None:
    """Start a cloud broker, ingest with a SQLite store and one edge agent making synthetic
    telemetry and incidents; cut the link mid-run; print what arrived (sent, stored,
    duplicates, lost). Exit code 1 when anything was lost."""
    from rich.console import Console
    from rich.table import Table

    from cityedge.sim.pilot import PilotOptions, run_pilot

    console = Console()
    opts = PilotOptions(
        seconds=seconds,
        telemetry_per_s=telemetry_per_s,
        incidents_per_min=incidents_per_min,
        outage_at_s=outage_at if outage_at >= 0 else None,
        outage_for_s=outage_for,
        broker=broker,
        workdir=workdir,
    )
    with console.status(f"pilot running for {seconds:.0f}s ..."):
        report = run_pilot(opts)
    for note in report.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    table = Table("stream", "committed on node", "stored in cloud", title="cityedge pilot")
    for stream in sorted(set(report.committed) | set(report.stored)):
        table.add_row(stream, str(report.committed.get(stream, 0)), str(report.stored.get(stream, 0)))
    console.print(table)
    console.print(
        f"link cuts: {report.link_cuts}  pending: {report.pending}  duplicates ignored: {report.duplicates}  "
        f"lost: {report.lost}  order violations: {report.order_violations}  latency: {report.latency_ms}"
    )
    console.print("[green]PASS[/green]" if report.passed else "[red]FAIL[/red]")
    if json_out is not None:
        json_out.write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    if not report.passed:
        raise typer.Exit(1)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.command("pilot")(pilot)
