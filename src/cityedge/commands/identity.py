"""`cityedge ca|inventory|device|enroll|broker|api ...`: the identity lifecycle from the shell."""

from __future__ import annotations

import json
import os
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from cityedge.cloud.registry import Registry
    from cityedge.cloud.registry.broker import DynsecRevoker

__all__ = ["register"]

ca_app = typer.Typer(help="The district CA: offline root, online issuing CA, CRL.", no_args_is_help=True)
inventory_app = typer.Typer(help="The device inventory (CSV import).", no_args_is_help=True)
device_app = typer.Typer(help="Devices: bootstrap tokens, revocation.", no_args_is_help=True)
broker_app = typer.Typer(help="Render locked-down Mosquitto configs.", no_args_is_help=True)
api_app = typer.Typer(help="The control plane's identity API.", no_args_is_help=True)

DB = typer.Option("sqlite:///cloud.db", "--database", "-d", help="Store URL (sqlite:/// or postgresql://).")
CA_DIR = typer.Option(Path("ca"), "--ca-dir", help="The issuing CA directory made by `cityedge ca init`.")


def _now() -> datetime:
    return datetime.now(UTC)


def _echo(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _registry(database: str, ca_dir: Path, on_revoked: Any = None) -> Registry:
    from cityedge.cloud.registry import Registry
    from cityedge.cloud.store import make_engine, upgrade
    from cityedge.cloud.store.registry import RegistryStore
    from cityedge.pki import CaLayout

    engine = make_engine(database)
    upgrade(engine)
    return Registry(RegistryStore(engine), CaLayout(ca_dir), on_revoked=on_revoked)


@ca_app.command("init")
def ca_init(
    offline: Path = typer.Option(
        ..., "--offline", help="Where the root key goes (removable media); not the CA dir."
    ),
    ca_dir: Path = CA_DIR,
    name: str = typer.Option("cityedge", "--name", help="CA name prefix (e.g. the district)."),
) -> None:
    """Make the offline root and the online issuing CA, chain.pem and an empty CRL."""
    from cityedge.pki import init_ca

    root, layout = init_ca(offline, ca_dir, name=name, now=_now())
    _echo({"root_key": root.key, "issuing_ca": layout.cert, "chain": layout.chain, "crl": layout.crl})
    typer.echo(
        f"Move {root.directory} offline now; the control plane needs only {layout.directory}.", err=True
    )


@ca_app.command("status")
def ca_status(database: str = DB, ca_dir: Path = CA_DIR) -> None:
    """Certificates by expiry, revoked ones, CRL freshness (exit 1 when the CRL is stale)."""
    status = _registry(database, ca_dir).ca_status(_now())
    _echo(status)
    if status["crl"]["alert"]:
        raise typer.Exit(1)


@ca_app.command("publish-crl")
def ca_publish_crl(database: str = DB, ca_dir: Path = CA_DIR) -> None:
    """Re-sign and write the CRL now (brokers load it on SIGHUP)."""
    _registry(database, ca_dir).publish_crl(_now())


@inventory_app.command("import")
def inventory_import(
    csv_file: Path = typer.Argument(..., help="CSV with device_id,serial,model,ip,mac,sim (+ attributes)."),
    database: str = DB,
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and show the changes only."),
) -> None:
    """Import all rows or none; re-importing reports what changed."""
    from cityedge.protocol.errors import ConfigError

    try:
        text = csv_file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"cannot read {csv_file}: {exc.strerror}") from exc
    plan = _registry(database, Path("-")).import_inventory(text, str(csv_file), _now(), dry_run=dry_run)
    _echo(plan.summary() | {"dry_run": dry_run})


@device_app.command("token")
def device_token(
    serial: str = typer.Argument(..., help="The device's serial in the inventory."),
    database: str = DB,
    ttl_minutes: int = typer.Option(60, "--ttl-minutes", help="How long the token is valid."),
) -> None:
    """Issue a one-time bootstrap token (printed once; only its hash is stored)."""
    from datetime import timedelta

    token, expires = _registry(database, Path("-")).issue_token(
        serial, _now(), timedelta(minutes=ttl_minutes)
    )
    _echo({"serial": serial, "token": token, "expires_at": expires.isoformat()})


def _revoker(
    ca_dir: Path, brokers: list[str], cert: Path | None, key: Path | None, broker_pid: int | None
) -> DynsecRevoker:
    """Reload (SIGHUP a local broker) and kick through each broker's revocation plugin."""
    from cityedge.cloud.registry.broker import BrokerEndpoint, DynsecRevoker
    from cityedge.pki import CaLayout

    if brokers and (cert is None or key is None):
        raise typer.BadParameter("--broker needs --revoker-cert and --revoker-key")
    reload = (lambda: os.kill(broker_pid, signal.SIGHUP)) if broker_pid else None
    endpoints = []
    for item in brokers:
        host, _, port = item.rpartition(":")
        assert cert is not None and key is not None
        endpoints.append(BrokerEndpoint(host, int(port), CaLayout(ca_dir).chain, cert, key))
    return DynsecRevoker(endpoints, reload=reload)


BROKERS = typer.Option([], "--broker", help="host:port of a broker whose sessions revocation cuts.")
REVOKER_CERT = typer.Option(None, "--revoker-cert", help="The 'revoker' service certificate.")
REVOKER_KEY = typer.Option(None, "--revoker-key", help="The 'revoker' service key.")
BROKER_PID = typer.Option(None, "--broker-pid", help="Local Mosquitto to SIGHUP (CRL reload).")


@device_app.command("revoke")
def device_revoke(
    device_id: str = typer.Argument(...),
    database: str = DB,
    ca_dir: Path = CA_DIR,
    broker: list[str] = BROKERS,
    revoker_cert: Path | None = REVOKER_CERT,
    revoker_key: Path | None = REVOKER_KEY,
    broker_pid: int | None = BROKER_PID,
) -> None:
    """Revoke, publish the CRL, reload the broker and cut the device's live session."""
    revoker = _revoker(ca_dir, broker, revoker_cert, revoker_key, broker_pid)
    serials = _registry(database, ca_dir, revoker).revoke(device_id, _now())
    _echo({"device_id": device_id, "revoked_serials": serials})


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

    got = do_enroll(api, token, serial, device_id, CredentialStore(creds), ca_file)
    _echo({"cert": got.cert_path, "key": got.key_path, "chain": got.chain_path, "current": creds / "current"})


@broker_app.command("config")
def broker_config(
    role: str = typer.Option(..., "--role", help="cloud (district broker) or local (node broker)."),
    out: Path = typer.Option(..., "--out", help="Directory for mosquitto.conf, acl.conf, dynsec.json."),
    port: int = typer.Option(8883, "--port"),
    bind: str = typer.Option("0.0.0.0", "--bind"),
    chain: Path = typer.Option(..., "--chain", help="The district chain.pem (client CA)."),
    cert: Path = typer.Option(..., "--cert", help="The broker's server certificate."),
    key: Path = typer.Option(..., "--key", help="The broker's key."),
    crl: Path = typer.Option(..., "--crl", help="The CRL file the control plane publishes."),
    district: str = typer.Option(..., "--district"),
    node: str | None = typer.Option(None, "--node", help="local role: the node id (its agent's identity)."),
    user: str = typer.Option("mosquitto", "--user", help="User Mosquitto runs as."),
    ingest: list[str] = typer.Option(
        ["ingest"],
        "--ingest-identity",
        help="cloud role: an ingest replica's certificate CN (repeat per replica).",
    ),
) -> None:
    """Render a broker that takes only our client certificates, TLS 1.2+, the CRL and the ACLs."""
    from cityedge.deploy.mosquitto import (
        Role,
        broker_profile,
        default_services,
        render_mosquitto_conf,
        write_broker_files,
    )

    if role not in ("cloud", "local"):
        raise typer.BadParameter("--role must be cloud or local")
    kind: Role = "cloud" if role == "cloud" else "local"
    cfg = broker_profile(
        kind,
        out,
        port=port,
        bind=bind,
        chain=chain,
        certfile=cert,
        keyfile=key,
        crlfile=crl,
        user=user,
    )
    services = default_services(kind, district, ingest)
    written = dict(write_broker_files(cfg, kind, district, services=services, node=node))
    conf = out / "mosquitto.conf"
    conf.write_text(render_mosquitto_conf(cfg))
    _echo({"conf": conf, **written})


@api_app.command("serve")
def api_serve(
    database: str = DB,
    ca_dir: Path = CA_DIR,
    host: str = typer.Option("0.0.0.0", "--host"),
    port: int = typer.Option(8443, "--port"),
    cert: Path = typer.Option(..., "--cert", help="The API's server certificate."),
    key: Path = typer.Option(..., "--key"),
    operator_tokens: str = typer.Option(
        ...,
        "--operator-tokens",
        envvar="CITYEDGE_OPERATOR_TOKENS",
        help="Comma-separated operator bearer tokens.",
    ),
    crl_check_s: float = typer.Option(300.0, "--crl-check-s", help="How often to re-publish a due CRL."),
    broker: list[str] = BROKERS,
    revoker_cert: Path | None = REVOKER_CERT,
    revoker_key: Path | None = REVOKER_KEY,
    broker_pid: int | None = BROKER_PID,
) -> None:
    """Serve enrollment, renewal (mTLS), revocation and CA status over HTTPS; keep the CRL fresh."""
    import uvicorn

    from cityedge.cloud.api import ApiDeps, ApiServerConfig, create_app, uvicorn_config
    from cityedge.pki import CaLayout

    revoker = _revoker(ca_dir, broker, revoker_cert, revoker_key, broker_pid)
    registry = _registry(database, ca_dir, revoker)
    tokens = [t.strip() for t in operator_tokens.split(",") if t.strip()]
    app = create_app(ApiDeps.with_tokens(registry, tokens))
    stop = threading.Event()

    def keep_crl_fresh() -> None:
        while not stop.wait(crl_check_s):
            if registry.refresh_crl(_now()):
                # A broker keeps the CRL it loaded; without a reload it would lapse there.
                if revoker.reload is not None:
                    revoker.reload()
                typer.echo("re-published the CRL", err=True)

    threading.Thread(target=keep_crl_fresh, name="crl", daemon=True).start()
    cfg = ApiServerConfig(host, port, cert, key, CaLayout(ca_dir).chain)
    try:
        uvicorn.Server(uvicorn_config(app, cfg)).run()
    finally:
        stop.set()


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.add_typer(ca_app, name="ca")
    app.add_typer(inventory_app, name="inventory")
    app.add_typer(device_app, name="device")
    app.add_typer(broker_app, name="broker")
    app.add_typer(api_app, name="api")
    app.command("enroll")(enroll)
