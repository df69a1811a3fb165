"""`cityedge edge ...`: run the node agent, inspect its outbox and its door's quarantine."""

from __future__ import annotations

from pathlib import Path

import typer

from cityedge.commands._output import print_rows, stop_on_signals

__all__ = ["register"]

edge_app = typer.Typer(help="Run and inspect an edge node agent.", no_args_is_help=True)
DATA_DIR = typer.Option(..., "--data-dir", help="The node's data directory (outbox.db lives there).")


@edge_app.command("run")
def run(
    config: Path = typer.Option(..., "--config", "-c", help="Node config YAML (see docs/configuration.md)."),
) -> None:
    """Run the edge agent until SIGTERM/SIGINT: outbox, uplink, local bus, producers, metrics."""
    from cityedge.configfile import load_config
    from cityedge.edge.app import EdgeAgent
    from cityedge.edge.config import EdgeConfig

    agent = EdgeAgent(load_config(EdgeConfig, config)).start()
    stop_on_signals().wait()
    agent.stop()


@edge_app.command("outbox")
def outbox_status(data_dir: Path = DATA_DIR) -> None:
    """Show the outbox per stream: pending, sent and waiting for the store, oldest ages, drops."""
    from cityedge.edge.outbox import Outbox

    with Outbox.open(data_dir / "outbox.db") as ob:
        stats = ob.stats()
    rows = [
        {"stream": name, "pending": s.pending, "sent, awaiting store": s.sent, "bytes": s.bytes,
         "oldest age (s)": round(s.oldest_age_s or 0, 1), "last seq": s.last_seq}
        for name, s in sorted(stats.streams.items())
    ]  # fmt: skip
    print_rows(f"outbox in {data_dir}", list(rows[0]) if rows else ["stream"], rows, as_json=False)
    for (stream, reason), n in sorted(stats.drops.items()):
        typer.echo(f"dropped {stream}/{reason}: {n}")


@edge_app.command("quarantine")
def quarantine(
    data_dir: Path = DATA_DIR,
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line, raw bytes included."),
) -> None:
    """Messages the node's door refused for what they are (malformed, too big, too deep, bad time or string), kept with their reason."""  # noqa: E501
    from cityedge.edge.outbox import Outbox

    with Outbox.open(data_dir / "outbox.db") as ob:
        entries, counts = ob.quarantined(limit), ob.quarantine_counts()
    rows = [
        {"at": e.at, "source": e.source, "reason": e.reason, "size": e.size, "detail": e.detail,
         **({"raw": e.raw.decode(errors="replace")} if as_json else {})}
        for e in entries
    ]  # fmt: skip
    print_rows(
        f"quarantine in {data_dir}", ("at", "source", "reason", "size", "detail"), rows, as_json=as_json
    )
    if not as_json:
        typer.echo("quarantined: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing"))


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.add_typer(edge_app, name="edge")
