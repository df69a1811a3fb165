"""`cityedge inventory|device|enroll ...`: the device side of the identity lifecycle."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import typer

from cityedge.commands._shared import (
    BROKERS,
    CA_DIR,
    CONFIG,
    DB,
    PID_FILE,
    REVOKER_CERT,
    REVOKER_KEY,
    control_plane,
    echo_json,
    now,
    revocation,
)

__all__ = ["register"]

inventory_app = typer.Typer(help="The device inventory (CSV import).", no_args_is_help=True)
device_app = typer.Typer(help="Devices: bootstrap tokens, revocation.", no_args_is_help=True)


@inventory_app.command("import")
def inventory_import(
    csv_file: Path = typer.Argument(..., help="CSV with device_id,serial,model,ip,mac,sim (+ attributes)."),
    database: str | None = DB,
    config: Path | None = CONFIG,
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and show the changes only."),
) -> None:
    """Import all rows or none (every problem named with its line); re-importing reports what changed."""
    from cityedge.protocol.errors import ConfigError

    try:
        data = csv_file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {csv_file}: {exc.strerror}") from None
    with control_plane(config, database=database) as plane:
        plan = plane.registry.import_inventory(data, str(csv_file), now(), dry_run=dry_run)
    echo_json(plan.summary() | {"dry_run": dry_run})


@device_app.command("token")
def device_token(
    serial: str = typer.Argument(..., help="The device's serial in the inventory."),
    database: str | None = DB,
    config: Path | None = CONFIG,
    ttl_minutes: int = typer.Option(60, "--ttl-minutes", min=1, help="How long the token is valid."),
    token_only: bool = typer.Option(
        False, "--token-only", help="Print only the token (for a shell variable)."
    ),
) -> None:
    """Issue a one-time bootstrap token (printed once; only its hash is stored)."""
    with control_plane(config, database=database) as plane:
        token, expires = plane.registry.issue_token(serial, now(), timedelta(minutes=ttl_minutes))
    if token_only:
        typer.echo(token)
    else:
        echo_json({"serial": serial, "token": token, "expires_at": expires.isoformat()})


@device_app.command("revoke")
def device_revoke(
    device_id: str = typer.Argument(...),
    config: Path | None = CONFIG,
    database: str | None = DB,
    ca_dir: Path | None = CA_DIR,
    broker: list[str] | None = BROKERS,
    revoker_cert: Path | None = REVOKER_CERT,
    revoker_key: Path | None = REVOKER_KEY,
    broker_pid_file: Path | None = PID_FILE,
) -> None:
    """Revoke, publish the CRL, reload the broker and cut the device's live session."""
    revoke = revocation(broker, revoker_cert, revoker_key, broker_pid_file)
    with control_plane(config, database=database, ca_dir=ca_dir, **revoke) as plane:
        serials = plane.registry.revoke(device_id, now())
    echo_json({"device_id": device_id, "revoked_serials": serials})


def enroll(
    api: str = typer.Option(..., "--api", help="Control plane URL, e.g. https://cloud:8443."),
    token: str = typer.Option(..., "--token", envvar="CITYEDGE_ENROLL_TOKEN", help="Bootstrap token."),
    serial: str = typer.Option(..., "--serial", help="This device's serial (as in the inventory)."),
    device_id: str = typer.Option(..., "--device-id", help="This device's id (the certificate CN)."),
    creds: Path = typer.Option(Path("creds"), "--dir", help="Where the key and certificates go."),
    ca_file: Path = typer.Option(..., "--ca-file", help="The district chain.pem (trust anchor)."),
) -> None:
    """Generate the key on this device, send a CSR with the token, store the certificate."""
    from cityedge.edge.identity import CredentialStore
    from cityedge.edge.identity import enroll as do_enroll

    got = do_enroll(api, token, serial, device_id, CredentialStore(creds.absolute()), ca_file)
    echo_json(
        {"cert": got.cert_path, "key": got.key_path, "chain": got.chain_path, "current": creds / "current"}
    )


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.add_typer(inventory_app, name="inventory")
    app.add_typer(device_app, name="device")
    app.command("enroll")(enroll)
