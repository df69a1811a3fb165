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


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    bench_app.command("uplink")(bench_uplink)
    bench_app.command("codec")(bench_codec)
