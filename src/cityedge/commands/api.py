"""`cityedge api serve`: the control plane's API over HTTPS (enroll, renew over mTLS, revoke, status)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from cityedge.commands._shared import CA_DIR, CONFIG, DB, control_plane_config

__all__ = ["register"]

api_app = typer.Typer(help="The control plane's identity API.", no_args_is_help=True)

CERT = typer.Option(None, "--cert", help="The API's server certificate (`ca issue --profile api`).")
KEY = typer.Option(None, "--key", help="The API's key.")
TOKENS = typer.Option(None, "--operator-tokens-file", help="Operator bearer tokens, one per line (0600).")
DEVICE_DAYS = typer.Option(None, "--device-cert-days", help="Lifetime of device certificates; default 90.")
BROKERS = typer.Option(None, "--broker", help="host:port of a broker whose live sessions revocation cuts.")
REVOKER_CERT = typer.Option(None, "--revoker-cert", help="The 'revoker' service certificate.")
REVOKER_KEY = typer.Option(None, "--revoker-key", help="The 'revoker' service key.")
PID_FILE = typer.Option(None, "--broker-pid-file", help="The broker's pid_file: SIGHUP it after a new CRL.")
TOKENS_ENV = "CITYEDGE_OPERATOR_TOKENS"


@api_app.command("serve")
def api_serve(
    config: Path | None = CONFIG,
    database: str | None = DB,
    ca_dir: Path | None = CA_DIR,
    host: str | None = typer.Option(None, "--host", help="Address to listen on; default 0.0.0.0."),
    port: int | None = typer.Option(None, "--port", help="Port to listen on; default 8443."),
    cert: Path | None = CERT,
    key: Path | None = KEY,
    operator_tokens_file: Path | None = TOKENS,
    device_cert_days: float | None = DEVICE_DAYS,
    broker: list[str] | None = BROKERS,
    revoker_cert: Path | None = REVOKER_CERT,
    revoker_key: Path | None = REVOKER_KEY,
    broker_pid_file: Path | None = PID_FILE,
) -> None:
    """Serve enrollment, renewal (mTLS), revocation, CA status and /metrics over HTTPS; keep the CRL fresh.
    Operator tokens may also come from the environment: CITYEDGE_OPERATOR_TOKENS=a,b."""
    from cityedge.cloud.app import ControlPlane, read_operator_tokens

    cfg = control_plane_config(config, **{
        "database": database, "ca_dir": ca_dir, "device_cert_days": device_cert_days,
        "api.host": host, "api.port": port, "api.certfile": cert, "api.keyfile": key,
        "api.operator_tokens_file": operator_tokens_file, "revocation.brokers": broker or None,
        "revocation.certfile": revoker_cert, "revocation.keyfile": revoker_key,
        "revocation.broker_pid_file": broker_pid_file,
    })  # fmt: skip
    tokens = read_operator_tokens(cfg, os.environ.get(TOKENS_ENV))
    plane = ControlPlane.build(cfg)
    where = f"store {plane.store_url}, CA {plane.registry.layout.directory}"
    try:
        plane.serve_api(tokens, lambda url: typer.echo(f"api: listening on {url} ({where})", err=True))
    finally:
        plane.close()
        typer.echo("api: stopped", err=True)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.add_typer(api_app, name="api")
