"""`cityedge district init DIR`: a complete single-machine district, and the commands that start it."""

from __future__ import annotations

from pathlib import Path

import typer

from cityedge.commands._shared import now

__all__ = ["register"]

district_app = typer.Typer(help="A whole district on one machine: CA, brokers, control plane, a node.")

HOST = typer.Option("127.0.0.1", "--host", help="Where clients reach the brokers and the API (a SAN).")
BIND = typer.Option("127.0.0.1", "--bind", help="Address the cloud broker and the API listen on.")
USER = typer.Option("mosquitto", "--user", help="The user Mosquitto drops to when started as root.")
DB = typer.Option(None, "--database", "-d", help="Store URL; default sqlite:///DIR/cloud.db.")
INGEST = typer.Option(["ingest"], "--ingest-identity", help="An ingest replica's identity (repeat for more).")
SERIAL = typer.Option(None, "--serial", help="The node's serial in the inventory; default SN-<NODE>.")


@district_app.command("init")
def district_init(
    directory: Path = typer.Argument(..., help="A new (or empty) directory for the district."),
    name: str = typer.Option("d1", "--name", help="The district's name (topic segment, CA name)."),
    host: str = HOST,
    bind: str = BIND,
    broker_port: int = typer.Option(8883, "--broker-port", min=1, max=65535),
    local_port: int = typer.Option(8884, "--local-port", min=1, max=65535, help="The node broker's port."),
    api_port: int = typer.Option(8443, "--api-port", min=1, max=65535),
    node: str = typer.Option("edge-node-001", "--node", help="The first node's id."),
    serial: str | None = SERIAL,
    user: str = USER,
    database: str | None = DB,
    ingest_identity: list[str] = INGEST,
) -> None:
    """Write the CA, service certificates, broker configs, control plane, ingest and node configs and
    systemd units under DIR, then print the commands that bring the district up."""
    from cityedge.deploy.district import DistrictSettings, init_district, tools

    cityedge, mosquitto = tools()
    settings = DistrictSettings(
        directory.absolute(), name, host, bind, broker_port, local_port, api_port, node, serial, user,
        database, tuple(ingest_identity), cityedge=cityedge, mosquitto=mosquitto,
    )  # fmt: skip
    district = init_district(settings, now())
    typer.echo(f"District {name} written to {settings.directory}.")
    typer.echo("".join(f"  changed: {fix.command} ({fix.why})\n" for fix in district.changed_outside))
    typer.echo(district.text())
    if district.run_as_root:
        typer.echo("Before starting the brokers, run as root:", err=True)
        typer.echo("\n".join(f"  {fix.command}" for fix in district.run_as_root), err=True)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.add_typer(district_app, name="district")
