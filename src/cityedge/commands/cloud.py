"""`cityedge cloud ...`: run ingest, migrate the store, inspect what arrived.

The control plane's API (`cloud serve`) registers on the same `cloud_app`. Heavy imports
stay inside the commands so `cityedge --help` stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec
import typer

from cityedge.commands._output import print_rows, stop_on_signals

__all__ = ["cloud_app", "register"]

cloud_app = typer.Typer(
    help="The cloud side: ingest from the broker into the store, migrate the store, inspect records.",
    no_args_is_help=True,
)

FAULT_ENV = "CITYEDGE_FAULT"


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.add_typer(cloud_app, name="cloud")


@cloud_app.command("ingest")
def ingest(
    config: Path = typer.Option(
        ..., "--config", "-c", help="Ingest config (YAML): broker, TLS files, database."
    ),
    db: str | None = typer.Option(None, "--db", help="Database URL; overrides `database` in the config."),
) -> None:
    """Consume every node's up/ topics into the store; tell each node what is stored and acknowledge each message only after its records are committed. Runs until SIGTERM or Ctrl-C.

    Config keys: see docs/configuration.md (ingest). Env CITYEDGE_FAULT=ingest_exit_after_commit (tests only): exit right after the first commit, before the acknowledgements.
    """  # noqa: E501
    from cityedge.cloud.ingest.service import load_ingest_config, serve_ingest

    cfg = load_ingest_config(config, db, os.environ.get(FAULT_ENV))
    serve_ingest(cfg, stop_on_signals(), lambda line: typer.echo(line, err=True))


@cloud_app.command("migrate")
def migrate(db: str = typer.Option(..., "--db", help="Database URL, e.g. sqlite:///cloud.db.")) -> None:
    """Create or upgrade the store's schema to the newest revision (safe to repeat)."""
    from cityedge.cloud.store import RecordStore, head_revision

    with RecordStore.open(db) as store:
        typer.echo(f"{store.url}: at revision {store.revision()} (head {head_revision()})")


@cloud_app.command("records")
def records(
    db: str = typer.Option(..., "--db", help="Database URL, e.g. sqlite:///cloud.db."),
    node: str | None = typer.Option(None, "--node", help="Only this node's records."),
    stream: str | None = typer.Option(None, "--stream", help="Only this stream's records."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most this many (oldest first)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line instead of a table."),
) -> None:
    """Show the records that arrived, in arrival order, and the count per stream."""
    from cityedge.cloud.store import RecordStore

    with RecordStore.open(db) as store:
        rows = [msgspec.structs.asdict(r) for r in store.records(node=node, stream=stream, limit=limit)]
        counts = store.counts()
    columns = ("arrival", "node", "stream", "seq", "kind", "ts", "id")
    print_rows(f"records in {store.url}", columns, [_without(r, "raw") for r in rows], as_json=as_json)
    if not as_json:
        typer.echo("stored: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@cloud_app.command("quarantine")
def quarantine(
    db: str = typer.Option(..., "--db", help="Database URL, e.g. sqlite:///cloud.db."),
    reason: str | None = typer.Option(None, "--reason", help="Only this reason (e.g. bad_ts, too_deep)."),
    node: str | None = typer.Option(None, "--node", help="Only this node's."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most this many (oldest first)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line, raw bytes included."),
) -> None:
    """What ingest could not store, with its reason: single records (their good neighbours were stored and the node was told) or whole messages."""  # noqa: E501
    from cityedge.cloud.store import RecordStore

    with RecordStore.open(db) as store:
        items = store.quarantined(reason=reason, node=node, limit=limit)
        counts = store.quarantine_counts()
    rows = [{**msgspec.structs.asdict(q), "raw": q.raw.decode(errors="replace")} for q in items]
    columns = ("id", "received_at", "reason", "node", "stream", "seq", "record_id", "size", "detail")
    print_rows(f"quarantine in {store.url}", columns, rows, as_json=as_json)
    if not as_json:
        typer.echo("quarantined: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing"))


def _without(row: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != key}
