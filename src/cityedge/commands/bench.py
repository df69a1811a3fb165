"""`cityedge bench uplink|localbus|codec|outbox|store|ingest|fleet`: each prints one JSON object.

The benchmarks live in `cityedge.bench`; these commands parse options, run one, print it.
"""

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
    """Batching uplink vs. raw paho one-message-per-publish on the same mTLS Mosquitto, with
    the store's acknowledgement on: throughput until the store has everything, latency from
    source timestamp to store commit, commit-to-store-acknowledgement, backlog drain rate,
    lost and duplicates."""
    from cityedge.bench.uplink import run_uplink_bench

    typer.echo(json.dumps(run_uplink_bench(runs=runs, n=records, backlog=backlog, rate=rate)))


def bench_localbus(
    sensors: int = typer.Option(4, help="Sensor clients publishing at once."),
    messages: int = typer.Option(10_000, help="Messages per sensor."),
    runs: int = typer.Option(3, help="Repetitions; the JSON reports medians."),
    json_out: bool = typer.Option(True, "--json/--no-json", help="Print JSON (the only format)."),
) -> None:
    """Sensors -> node-local Mosquitto -> agent (group commit into the outbox), against a paho
    subscriber that only counts (the broker's own limit); the agent is SIGKILLed once mid-run."""
    from cityedge.bench.localbus import run_localbus_bench

    typer.echo(json.dumps(run_localbus_bench(sensors=sensors, messages=messages, runs=runs)))


def bench_codec(runs: int = typer.Option(5, help="Repetitions; the JSON reports medians.")) -> None:
    """Decode throughput of the ingest codec (msgspec) against json.loads + pydantic."""
    from cityedge.bench.codec import run_codec_bench

    typer.echo(json.dumps(run_codec_bench(runs=runs)))


def bench_outbox(
    records: int = typer.Option(20_000, help="Records appended (in batches of 100), then claimed and acked."),
    runs: int = typer.Option(3, help="Repetitions; the JSON reports medians."),
) -> None:
    """Outbox throughput on this disk: append_many, and claim + store acknowledgement."""
    from cityedge.bench.outbox import run_medians

    typer.echo(json.dumps(run_medians(records, runs)))


def bench_store(
    db: str | None = typer.Option(
        None,
        "--db",
        help="Database URL (default: a temporary SQLite file; a SQLite file given here keeps "
        "every run's records; PostgreSQL runs in a scratch schema dropped after).",
    ),
    records: int = typer.Option(20_000, "--records", min=1, help="Records to insert."),
    batch: int = typer.Option(
        5000,
        "--batch",
        min=1,
        help="Records per insert (one transaction). Ingest commits up to max_group_messages (64) "
        "messages of up to batch_max_records (500) at once; 5000 is ten full messages.",
    ),
    runs: int = typer.Option(3, "--runs", min=1, help="Repetitions; the JSON reports medians."),
    as_json: bool = typer.Option(True, "--json/--no-json", help="Print one JSON object (the default)."),
) -> None:
    """Insert throughput of the cloud store, then the same batches again (the duplicate path);
    on PostgreSQL also a raw COPY of the same rows (copy_records_per_s, copy_ratio)."""
    from cityedge.bench.store import run_store_bench

    typer.echo(json.dumps(run_store_bench(db, records, batch, runs)))


def bench_ingest(
    records: int = typer.Option(40_000, "--records", min=1, help="Records to publish."),
    batch: int = typer.Option(200, "--batch", min=1, help="Records per MQTT message."),
    db: str | None = typer.Option(None, "--db", help="Database URL (default: a temporary SQLite file)."),
    consumers: str = typer.Option(
        "1",
        "--consumers",
        help="Ingest processes on one shared subscription; a list (1,2,4) runs each and prints the curve.",
    ),
    as_json: bool = typer.Option(True, "--json/--no-json", help="Print one JSON object (the default)."),
) -> None:
    """Ingest throughput through a real Mosquitto with mutual TLS: publish a backlog, time until
    the store holds every record; with several consumers, replicas on one shared subscription."""
    from cityedge.bench.ingest import run_ingest_curve

    counts = [int(n) for n in consumers.split(",") if n.strip()]
    typer.echo(json.dumps(run_ingest_curve(records, batch, db, counts)))


def bench_fleet(
    nodes: int = typer.Option(10_000, help="Simulated nodes."),
    heartbeat_s: float = typer.Option(10.0, "--heartbeat-s", help="Heartbeat interval of every node."),
    incident_every_s: float = typer.Option(
        60.0, "--incident-every-s", help="One incident per node this often."
    ),
    victims: int = typer.Option(
        100, help="Nodes on their own connection with a last will, SIGKILLed mid-run."
    ),
    silent: int = typer.Option(50, help="Nodes that stop sending without disconnecting (missed heartbeats)."),
    connections: int = typer.Option(8, help="MQTT connections the other simulated nodes share."),
    json_out: bool = typer.Option(True, "--json/--no-json", help="Print JSON (the only format)."),
) -> None:
    """N simulated nodes (real batches over MQTT to a real Mosquitto, real ingest into SQLite, the
    real fleet monitor): messages per second, publish-to-store-acknowledgement lag, time from a
    node's death to `offline`, control-plane CPU."""
    from cityedge.bench.fleet import run_fleet_bench

    typer.echo(
        json.dumps(run_fleet_bench(nodes, heartbeat_s, incident_every_s, victims, silent, connections))
    )


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    for name, fn in (
        ("uplink", bench_uplink), ("localbus", bench_localbus), ("codec", bench_codec),
        ("outbox", bench_outbox), ("store", bench_store), ("ingest", bench_ingest), ("fleet", bench_fleet),
    ):  # fmt: skip
        bench_app.command(name)(fn)
