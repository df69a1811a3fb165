"""`cityedge bench uplink` (and the outbox micro-benchmark): print one JSON object."""

from __future__ import annotations

import json

import typer

__all__ = ["register"]


def bench_uplink(
    runs: int = typer.Option(3, help="Repetitions; the JSON reports medians."),
    records: int = typer.Option(20_000, help="Records per throughput run."),
    backlog: int = typer.Option(50_000, help="Records queued while the link is down, then drained."),
    rate: float = typer.Option(200.0, help="Records per second for the latency phase."),
    json_out: bool = typer.Option(True, "--json/--no-json", help="Print JSON (the only format)."),
) -> None:
    """Batching uplink vs. raw paho one-message-per-publish on the same mTLS Mosquitto,
    latency from source timestamp to store commit, backlog drain rate, lost and duplicates."""
    from cityedge.bench.uplink import run_uplink_bench

    result = run_uplink_bench(runs=runs, n=records, backlog=backlog, rate=rate)
    typer.echo(json.dumps(result))


def bench_codec(
    runs: int = typer.Option(5, help="Repetitions; the JSON reports medians."),
) -> None:
    """Decode throughput of the ingest codec (msgspec) against json.loads + pydantic."""
    from cityedge.bench.codec import run_codec_bench

    typer.echo(json.dumps(run_codec_bench(runs=runs)))


def bench_outbox(
    records: int = typer.Option(20_000, help="Records appended (in batches of 100), then claimed and acked."),
    runs: int = typer.Option(3, help="Repetitions; the JSON reports medians."),
) -> None:
    """Outbox throughput on this disk: append_many, and claim + ack."""
    import statistics

    from cityedge.edge.outbox.bench import run

    results = [run(records) for _ in range(runs)]
    keys = [k for k, v in results[0].items() if isinstance(v, int | float)]
    out = {k: round(statistics.median(r[k] for r in results), 1) for k in keys}
    typer.echo(json.dumps({**out, "runs": runs}))


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    bench_app.command("uplink")(bench_uplink)
    bench_app.command("codec")(bench_codec)
    bench_app.command("outbox")(bench_outbox)
