"""What `cityedge release publish|promote` do, behind the thin command functions."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

from cityedge.cloud.releases.bundle import build, inspect
from cityedge.cloud.releases.channels import Listed, promote, publish
from cityedge.cloud.releases.keys import load_signers
from cityedge.cloud.releases.repository import ReleaseRepository

__all__ = ["promote_version", "publish_bundle"]


def publish_bundle(repo_dir: Path, bundle: Path, channel: str, keys: list[Path]) -> Listed:
    repo = ReleaseRepository.online(repo_dir, datetime.now(UTC))
    if keys:
        repo.signers[channel] = list(load_signers(keys))
    with tempfile.TemporaryDirectory() as tmp:
        found = build(bundle, Path(tmp) / "bundle.tar") if bundle.is_dir() else inspect(bundle)
        with repo.locked():
            return publish(repo, found, channel)


def promote_version(repo_dir: Path, version: str, to: str, keys: list[Path]) -> Listed:
    repo = ReleaseRepository.online(repo_dir, datetime.now(UTC))
    if keys:
        repo.signers[to] = list(load_signers(keys))
    with repo.locked():
        return promote(repo, version, to)
