"""`cityedge ca ...`: the district CA (offline root, online issuing CA, CRL) and service certificates."""

from __future__ import annotations

from pathlib import Path

import typer

from cityedge.commands._shared import CA_DIR, CONFIG, DB, control_plane, echo_json, now

__all__ = ["register"]

ca_app = typer.Typer(
    help="The district CA: offline root, online issuing CA, CRL, service certificates.", no_args_is_help=True
)
PROFILE = typer.Option(
    ..., "--profile", help="broker | api | dashboard (TLS servers) or ingest | revoker (TLS clients)."
)
SAN = typer.Option([], "--san", help="A host name or IP clients connect to (servers; repeat for each).")
OUT = typer.Option(..., "--out", help="Directory for NAME.key, NAME.crt and chain.pem.")
DAYS = typer.Option(None, "--days", min=0.001, help="Lifetime in days; default service_cert_days (365).")
CSR = typer.Option(None, "--csr", help="Sign this CSR (key made on the service's host) instead of a new key.")


@ca_app.command("init")
def ca_init(
    offline: Path = typer.Option(
        ..., "--offline", help="Where the root key goes (removable media); not the CA dir."
    ),
    ca_dir: Path = typer.Option(Path("ca"), "--ca-dir", help="The control plane's CA directory."),
    name: str = typer.Option("cityedge", "--name", help="CA name prefix (e.g. the district)."),
) -> None:
    """Make the offline root and the online issuing CA, chain.pem and an empty CRL."""
    from cityedge.pki import init_ca

    root, layout = init_ca(offline, ca_dir, name=name, now=now())
    echo_json({"root_key": root.key, "issuing_ca": layout.cert, "chain": layout.chain, "crl": layout.crl})
    typer.echo(
        f"Move {root.directory} offline now; the control plane needs only {layout.directory}.", err=True
    )


@ca_app.command("status")
def ca_status(config: Path | None = CONFIG, database: str | None = DB, ca_dir: Path | None = CA_DIR) -> None:
    """Device and service certificates by expiry, revoked ones, CRL freshness.

    Exits 1 when the CRL is stale (brokers then refuse every client)."""
    with control_plane(config, database=database, ca_dir=ca_dir) as plane:
        status = plane.registry.ca_status(now())
    echo_json(status)
    if status["crl"]["alert"]:
        raise typer.Exit(1)


@ca_app.command("publish-crl")
def ca_publish_crl(
    config: Path | None = CONFIG, database: str | None = DB, ca_dir: Path | None = CA_DIR
) -> None:
    """Re-sign and write the CRL now (brokers load it on SIGHUP)."""
    with control_plane(config, database=database, ca_dir=ca_dir) as plane:
        plane.registry.publish_crl(now())
    typer.echo(f"wrote {plane.registry.layout.crl}; reload each broker (SIGHUP) to load it", err=True)


@ca_app.command("issue")
def ca_issue(
    name: str = typer.Argument(..., help="The service's identity (certificate CN), e.g. broker, ingest-2."),
    profile: str = PROFILE,
    san: list[str] = SAN,
    out: Path = OUT,
    days: float | None = DAYS,
    csr: Path | None = CSR,
    config: Path | None = CONFIG,
    database: str | None = DB,
    ca_dir: Path | None = CA_DIR,
) -> None:
    """Issue a service certificate with its profile's key usages, recorded for `ca status`."""
    with control_plane(config, database=database, ca_dir=ca_dir) as plane:
        files = plane.issue_service(profile, name, tuple(san), out, days=days, csr=csr)
    echo_json(files.as_dict())


@ca_app.command("renew")
def ca_renew(
    cert: Path = typer.Argument(..., help="The service certificate to replace (its key lies beside it)."),
    days: float | None = DAYS,
    config: Path | None = CONFIG,
    database: str | None = DB,
    ca_dir: Path | None = CA_DIR,
) -> None:
    """New key and certificate for a service, same name, profile and host names, same file owner.
    Reload the service afterwards (a broker: SIGHUP)."""
    with control_plane(config, database=database, ca_dir=ca_dir) as plane:
        files = plane.renew_service(cert, days=days)
    echo_json(files.as_dict())


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.add_typer(ca_app, name="ca")
