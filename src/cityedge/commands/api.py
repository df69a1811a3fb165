"""`cityedge api serve`: the control plane's API over HTTPS (enroll, renew over mTLS, revoke, status)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from cityedge.commands._shared import CA_DIR, CONFIG, DB, control_plane_config

__all__ = ["register"]

api_app = typer.Typer(help="The control plane's identity API.", no_args_is_help=True)

HOST = typer.Option(None, "--host", help="Address to listen on; default 0.0.0.0.")
PORT = typer.Option(None, "--port", help="Port to listen on; default 8443.")
CERT = typer.Option(None, "--cert", help="The API's server certificate (`ca issue --profile api`).")
KEY = typer.Option(None, "--key", help="The API's key.")
TOKENS = typer.Option(None, "--operator-tokens-file", help="Operator bearer tokens, one per line (0600).")
TOKENS_ENV = "CITYEDGE_OPERATOR_TOKENS"


@api_app.command("serve")
def api_serve(
    config: Path | None = CONFIG,
    database: str | None = DB,
    ca_dir: Path | None = CA_DIR,
    host: str | None = HOST,
    port: int | None = PORT,
    cert: Path | None = CERT,
    key: Path | None = KEY,
    operator_tokens_file: Path | None = TOKENS,
) -> None:
    """Serve enrollment, renewal (mTLS), revocation, CA status and /metrics over HTTPS; keep the CRL fresh.

    The control plane config (-c) also sets the device certificate lifetime and how a revocation
    reaches the brokers. Operator tokens may come from the environment: CITYEDGE_OPERATOR_TOKENS=a,b."""
    from cityedge.cloud.app import ControlPlane, read_operator_tokens

    cfg = control_plane_config(config, database=database, ca_dir=ca_dir, **{
        "api.host": host, "api.port": port, "api.certfile": cert, "api.keyfile": key,
        "api.operator_tokens_file": operator_tokens_file,
    })  # fmt: skip
    tokens = read_operator_tokens(cfg, os.environ.get(TOKENS_ENV))
    with ControlPlane.build(cfg) as plane:
        where = f"store {plane.store_url}, CA {plane.registry.layout.directory}"
        plane.serve_api(tokens, lambda url: typer.echo(f"api: listening on {url} ({where})", err=True))


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.add_typer(api_app, name="api")
