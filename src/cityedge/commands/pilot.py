"""`cityedge pilot`: run the district use case from its spec on one machine and judge every SLO."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer

__all__ = ["register"]


def pilot(
    spec: Path | None = typer.Option(None, "--spec", help="Use-case spec: the guide's template or YAML."),
    nodes: int | None = typer.Option(None, "--nodes", min=1, help="Override the spec's number of nodes."),
    network: str | None = typer.Option(None, "--network", help="Network profile: clean, urban-lte, flaky."),
    report: Path = typer.Option(
        Path("pilot-report"), "--report", help="Write report.html and report.json here."
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Also write report.json to this file."),
    broker: str = typer.Option(
        "auto", "--broker", help="auto (Mosquitto if installed), mosquitto or embedded."
    ),
    workdir: Path | None = typer.Option(
        None, "--workdir", help="Keep the run's brokers, certificates, data here."
    ),
) -> None:
    """Run the use case (default: the spec shipped with cityedge) on a whole district on this machine,
    judge every SLO from the run's data, write the reports. Exit code 0 only when every SLO passes."""
    if broker not in ("auto", "mosquitto", "embedded"):
        raise typer.BadParameter("--broker: auto, mosquitto or embedded")
    if not _main(spec, nodes, network, report, json_out, broker, workdir):
        raise typer.Exit(1)


def _main(
    spec: Path | None, nodes: int | None, network: str | None, report: Path, json_out: Path | None,
    broker: str, workdir: Path | None,
) -> bool:  # fmt: skip
    from rich.console import Console

    from cityedge.sim.pilot import load_spec
    from cityedge.sim.pilot.runner import PilotOptions, with_overrides

    console = Console()
    chosen = with_overrides(load_spec(spec), nodes, network)
    run = _run(PilotOptions(chosen, broker, workdir), console, report / "pilot.log")
    _summary(console, run, _write(run, report, json_out))
    return bool(run.verdict.passed)


def _run(opts: Any, console: Any, log_path: Path) -> Any:
    from cityedge.sim.pilot.progress import LiveProgress
    from cityedge.sim.pilot.runner import run_pilot

    _log_to(log_path)
    console.print(f"[bold]cityedge pilot[/bold]: {opts.spec.title} ({opts.spec.source}); log: {log_path}")
    with LiveProgress(opts.spec, console) as progress:
        return run_pilot(opts, progress)


def _log_to(path: Path) -> None:
    """While the live view runs, the stack's logs go to a file, not over the display."""
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)


def _write(run: Any, report: Path, json_out: Path | None) -> list[Path]:
    from cityedge.sim.pilot.report import write_html, write_json

    data = write_json(run, report / "report.json")
    paths = [write_html(run, report / "report.html", data), report / "report.json"]
    if json_out is not None:
        write_json(run, json_out)
        paths.append(json_out)
    return paths


def _summary(console: Any, run: Any, paths: list[Path]) -> None:
    from rich.table import Table

    table = Table(
        "SLO", "target", "measured", "verdict", title=f"broker: {run.broker}, wall time {run.wall_s:g} s"
    )
    for s in run.verdict.slos:
        measured = "-" if s.measured is None else f"{s.measured:g} {s.unit}"
        verdict = "[green]pass[/green]" if s.verdict == "pass" else f"[red]FAIL[/red] ({s.shortfall})"
        table.add_row(s.name, f"{s.comparison} {s.target:g} {s.unit}", measured, verdict)
    console.print(table)
    for note in run.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    console.print(
        f"control plane API: {run.api_url}; dashboard: {run.dashboard_url} (both stopped with the run)"
    )
    word = "[green]PASS[/green]" if run.verdict.passed else "[red]FAIL[/red]"
    console.print(f"verdict: {word}; report: {paths[0].resolve()}")


def bench_broker(
    broker: list[str] = typer.Option(
        ["iotcore", "mosquitto"], "--broker", help="iotcore, amqtt (install it), mosquitto."
    ),
    runs: int = typer.Option(3, help="Repetitions; the JSON reports medians and every run."),
    rate: float = typer.Option(200.0, help="Records per second in the latency phase."),
) -> None:
    """Embedded broker candidates against Mosquitto through cityedge's uplink and ingest: connect time
    (protocol discovery and pinned 3.1.1), latency, burst throughput, persistent-session delivery."""
    import json

    from cityedge.bench.brokers import run_broker_bench

    typer.echo(json.dumps(run_broker_bench(broker, runs=runs, rate=rate)))


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.command("pilot")(pilot)
    bench_app.command("broker")(bench_broker)
