"""`cityedge edge ...`: run the node agent."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import typer

__all__ = ["register"]

edge_app = typer.Typer(help="Run and inspect an edge node agent.", no_args_is_help=True)


@edge_app.command("run")
def run(
    config: Path = typer.Option(..., "--config", "-c", help="Node config YAML (see docs/configuration.md)."),
) -> None:
    """Run the edge agent until SIGTERM/SIGINT: outbox, uplink, local bus, producers, metrics."""
    from cityedge.configfile import load_config
    from cityedge.edge.app import EdgeAgent
    from cityedge.edge.config import EdgeConfig

    cfg = load_config(EdgeConfig, config)
    agent = EdgeAgent(cfg).start()
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    agent.stop()


@edge_app.command("outbox")
def outbox_status(
    data_dir: Path = typer.Option(..., "--data-dir", help="The node's data directory."),
) -> None:
    """Show the outbox: pending records and oldest age per stream, drops by reason."""
    from rich.console import Console
    from rich.table import Table

    from cityedge.edge.outbox import Outbox

    ob = Outbox.open(data_dir / "outbox.db")
    try:
        stats = ob.stats()
    finally:
        ob.close()
    table = Table("stream", "pending", "bytes", "oldest age (s)", "last seq")
    for name, s in sorted(stats.streams.items()):
        table.add_row(name, str(s.pending), str(s.bytes), f"{s.oldest_age_s or 0:.1f}", str(s.last_seq))
    console = Console()
    console.print(table)
    for (stream, reason), n in sorted(stats.drops.items()):
        console.print(f"dropped {stream}/{reason}: {n}")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.add_typer(edge_app, name="edge")
