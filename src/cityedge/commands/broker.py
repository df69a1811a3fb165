"""`cityedge broker config`: render a locked-down Mosquitto that starts as it is."""

from __future__ import annotations

from pathlib import Path

import typer

from cityedge.commands._shared import echo_json

__all__ = ["register"]

broker_app = typer.Typer(help="Render locked-down Mosquitto configs.", no_args_is_help=True)

ROLE = typer.Option(..., "--role", help="cloud (district broker) or local (node broker).")
OUT = typer.Option(..., "--out", help="Directory for mosquitto.conf, acl.conf and data/ (the broker's own).")
CHAIN = typer.Option(..., "--chain", help="The district chain.pem (client CA).")
CERT = typer.Option(..., "--cert", help="The broker's certificate (`ca issue --profile broker`).")
KEY = typer.Option(..., "--key", help="The broker's key; made readable for --user only.")
CRL = typer.Option(..., "--crl", help="The CRL file the control plane publishes.")
NODE = typer.Option(None, "--node", help="local role: the node id (its agent's identity).")
USER = typer.Option("mosquitto", "--user", help="The user Mosquitto drops to when started as root.")
INGEST = typer.Option(
    ["ingest"], "--ingest-identity", help="cloud role: an ingest replica's identity (repeat)."
)


@broker_app.command("config")
def broker_config(
    role: str = ROLE,
    out: Path = OUT,
    port: int = typer.Option(8883, "--port", min=1, max=65535),
    bind: str = typer.Option("0.0.0.0", "--bind", help="Address the listener binds."),
    chain: Path = CHAIN,
    cert: Path = CERT,
    key: Path = KEY,
    crl: Path = CRL,
    district: str = typer.Option(..., "--district"),
    node: str | None = NODE,
    user: str = USER,
    ingest_identity: list[str] = INGEST,
) -> None:
    """Render a broker that takes only our client certificates, TLS 1.2+, the CRL and the ACLs,
    with absolute paths, a data/ directory and files its user can read."""
    from cityedge.deploy.broker import BrokerInputs, render_broker

    if role not in ("cloud", "local"):
        raise typer.BadParameter("--role must be cloud or local")
    files = BrokerInputs(chain, cert, key, crl)
    rendered = render_broker(
        "cloud" if role == "cloud" else "local", out, files, district=district, port=port, bind=bind,
        node=node, user=user, ingest=tuple(ingest_identity),
    )  # fmt: skip
    echo_json(rendered.as_dict())
    if rendered.pending:
        typer.echo(f"Mosquitto cannot start as {user} until these run as root:", err=True)
        typer.echo("\n".join(f"  {fix.command}" for fix in rendered.pending), err=True)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.add_typer(broker_app, name="broker")
