"""`cityedge audit ...`: read and verify the hash-chained audit log, offline."""

from __future__ import annotations

import json
from pathlib import Path

import typer

__all__ = ["register"]

audit_app = typer.Typer(help="The audit log: every change, hash-chained.", no_args_is_help=True)


@audit_app.command("verify")
def verify(
    database: str | None = typer.Option(None, "--database", "-d", help="Store URL to read the log from."),
    file: Path | None = typer.Option(
        None, "--file", help="An export (`cityedge audit export`), one entry per line."
    ),
) -> None:
    """Check every link of the chain; exit 1 and name the first broken entry if one is wrong."""
    from cityedge.cloud.auth.audit import verify_chain
    from cityedge.cloud.auth.commands import read_entries
    from cityedge.protocol.errors import AuditChainError

    try:
        n = verify_chain(read_entries(database, file))
    except AuditChainError as exc:
        typer.echo(f"BROKEN at entry {exc.index}: {exc}")
        raise typer.Exit(1) from None
    typer.echo(f"ok: {n} entries, chain intact")


@audit_app.command("export")
def export(database: str = typer.Option(..., "--database", "-d", help="Store URL.")) -> None:
    """Print the log as JSON lines (to verify elsewhere with `audit verify --file`)."""
    from cityedge.cloud.auth.commands import read_entries

    for e in read_entries(database, None):
        typer.echo(json.dumps(e.__dict__))


@audit_app.command("users")
def users(database: str = typer.Option(..., "--database", "-d", help="Store URL.")) -> None:
    """List users and service accounts with their roles."""
    from cityedge.cloud.auth.commands import open_auth

    typer.echo(json.dumps([u.__dict__ for u in open_auth(database).store.users()], indent=2))


@audit_app.command("add-user")
def add_user(
    name: str = typer.Argument(...),
    role: str = typer.Option(..., "--role", help="viewer, operator, release-manager or admin."),
    service: bool = typer.Option(False, "--service", help="A service account (a token for a machine)."),
    database: str = typer.Option(..., "--database", "-d", help="Store URL."),
    actor: str = typer.Option("cli", "--actor"),
) -> None:
    """Create a user and print its bearer token once (only its hash is stored)."""
    from cityedge.cloud.auth.commands import open_auth

    typer.echo(open_auth(database).create_user(name, role, actor, "service" if service else "user"))


@audit_app.command("set-role")
def set_role(
    name: str = typer.Argument(...),
    role: str = typer.Option(..., "--role"),
    database: str = typer.Option(..., "--database", "-d", help="Store URL."),
    actor: str = typer.Option("cli", "--actor"),
) -> None:
    """Change a user's role (audited)."""
    from cityedge.cloud.auth.commands import open_auth

    open_auth(database).set_role(name, role, actor)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
