"""`cityedge release ...`: the key ceremony, build, publish, promote, list (TUF repository)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

__all__ = ["register"]

release_app = typer.Typer(
    help="Releases: TUF keys, bundles, channels (canary, staging, stable).", no_args_is_help=True
)
REPO = typer.Option(
    Path("releases"), "--repo", help="The release repository directory (control plane data dir)."
)
DB = typer.Option(
    None, "--database", "-d", help="Store URL; when given, the change is written to the audit log."
)
ACTOR = typer.Option("cli", "--actor", help="Who is acting, for the audit log.")


def _echo(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _audit(database: str | None, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
    if database is None:
        return
    from cityedge.cloud.store import make_engine, upgrade
    from cityedge.cloud.store.auth import AuthStore

    engine = make_engine(database)
    upgrade(engine)
    AuthStore(engine).append_audit(actor, action, target, "ok", detail, datetime.now(UTC))
    engine.dispose()


@release_app.command("keys")
def keys(
    offline: Path = typer.Option(
        ..., "--offline", help="Where root, targets and release-manager keys go (removable media)."
    ),
    repo: Path = REPO,
    stable_keys: int = typer.Option(
        3, "--stable-keys", min=1, help="Release-manager keys for the stable channel."
    ),
    stable_threshold: int = typer.Option(2, "--stable-threshold", min=1, help="How many must sign stable."),
) -> None:
    """The key ceremony: make every key and root v1 with one delegated role per channel."""
    from cityedge.cloud.releases.channels import init_repository
    from cityedge.cloud.releases.keys import KeyPlan

    _echo(init_repository(repo, offline, datetime.now(UTC), KeyPlan(stable_keys, stable_threshold)))
    typer.echo(
        f"Move {offline} offline now. Ship {repo}/metadata/1.root.json with every node's install.", err=True
    )


@release_app.command("build")
def build(
    source: Path = typer.Argument(..., help="Release directory with manifest.json."),
    out: Path = typer.Option(..., "--out", "-o", help="The bundle (.tar) to write."),
) -> None:
    """Make a deterministic, content-addressed bundle from a release directory."""
    from cityedge.cloud.releases.bundle import build as build_bundle

    b = build_bundle(source, out)
    _echo({"bundle": b.path, "version": b.manifest.version, "sha256": b.sha256, "length": b.length})


@release_app.command("publish")
def publish(
    bundle: Path = typer.Argument(..., help="A bundle (.tar) or a release directory."),
    channel: str = typer.Option("canary", "--channel", help="canary or staging (stable: promote)."),
    repo: Path = REPO,
    key: list[Path] = typer.Option([], "--key", help="Channel keys, when not the online ones."),
    database: str | None = DB,
    actor: str = ACTOR,
) -> None:
    """List a bundle under a channel; a version is immutable (one hash for life)."""
    from cityedge.cloud.releases.commands import publish_bundle

    listed = publish_bundle(repo, bundle, channel, key)
    _audit(database, actor, "release.publish", listed.version, {"channel": channel, "sha256": listed.sha256})
    _echo(listed.as_dict())


@release_app.command("promote")
def promote(
    version: str = typer.Argument(..., help="The version to promote."),
    to: str = typer.Option(..., "--to", help="staging or stable."),
    repo: Path = REPO,
    key: list[Path] = typer.Option([], "--key", help="Stable: release-manager keys (2 of 3 by default)."),
    database: str | None = DB,
    actor: str = ACTOR,
) -> None:
    """Re-list the identical bytes (same SHA-256) of VERSION under the next channel."""
    from cityedge.cloud.releases.commands import promote_version

    listed = promote_version(repo, version, to, key)
    _audit(database, actor, "release.promote", version, {"to": to, "sha256": listed.sha256})
    _echo(listed.as_dict())


@release_app.command("list")
def list_releases(repo: Path = REPO) -> None:
    """What each channel lists: version, hash, hardware, minimum version."""
    from cityedge.cloud.releases.channels import listing
    from cityedge.cloud.releases.repository import ReleaseRepository

    _echo([item.as_dict() for item in listing(ReleaseRepository(repo, datetime.now(UTC)))])


@release_app.command("refresh")
def refresh(repo: Path = REPO) -> None:
    """Re-sign online metadata (timestamp, snapshot, canary, staging) close to expiry; run it
    from a timer (the control plane also does it on each change)."""
    from cityedge.cloud.releases.repository import ReleaseRepository

    r = ReleaseRepository.online(repo, datetime.now(UTC))
    with r.locked():
        _echo({"resigned": r.refresh()})


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.add_typer(release_app, name="release")
