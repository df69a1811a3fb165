"""The release repository: ceremony, immutable publishing, promotion of identical bytes,
thresholds, automatic re-signing before expiry, and the `cityedge release` commands."""

from __future__ import annotations

import json
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cityedge.cli import app
from cityedge.cloud.releases.bundle import build, inspect
from cityedge.cloud.releases.channels import init_repository, listing, promote, publish
from cityedge.cloud.releases.repository import ReleaseRepository
from cityedge.protocol.errors import ReleaseError
from tests.support.ota import bundle, make_repo, release_source


def test_the_ceremony_keeps_offline_keys_out_of_the_repository(tmp_path: Path) -> None:
    with pytest.raises(ReleaseError, match="must be outside the repository"):
        init_repository(tmp_path / "repo", tmp_path / "repo" / "offline", datetime.now(UTC))
    repo = make_repo(tmp_path)
    assert sorted(p.name for p in repo.offline.iterdir()) == [
        "release-manager-1.pem", "release-manager-2.pem", "release-manager-3.pem", "root.pem", "targets.pem",
    ]  # fmt: skip
    assert sorted(p.name for p in (repo.directory / "keys").iterdir()) == [
        "canary.pem", "snapshot.pem", "staging.pem", "timestamp.pem",
    ]  # fmt: skip
    assert (repo.offline / "root.pem").stat().st_mode & 0o777 == 0o600
    root = json.loads(repo.root.read_text())["signed"]
    assert root["consistent_snapshot"] is True
    targets = json.loads((repo.directory / "metadata" / "1.targets.json").read_text())["signed"]
    roles = {
        r["name"]: (r["threshold"], len(r["keyids"]), r["paths"]) for r in targets["delegations"]["roles"]
    }
    assert roles == {
        "canary": (1, 1, ["canary/*"]),
        "staging": (1, 1, ["staging/*"]),
        "stable": (2, 3, ["stable/*"]),
    }
    with pytest.raises(ReleaseError, match="already exists"):
        init_repository(tmp_path / "repo", tmp_path / "offline2", datetime.now(UTC))


def test_a_version_is_immutable_and_promotion_lists_the_same_bytes(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    good = bundle(tmp_path, "1.1.0")
    online = repo.online()
    with online.locked():
        first = publish(online, good, "canary")
        assert publish(online, good, "canary") == first  # idempotent
        with pytest.raises(ReleaseError, match="already published"):
            publish(online, bundle(tmp_path, "1.1.0", fps=3), "canary")
        staged = promote(online, "1.1.0", "staging")
        with pytest.raises(ReleaseError, match="stable needs 2 signing keys, 0 given"):
            promote(online, "1.1.0", "stable")
        online.signers["stable"] = repo.managers(1)
        with pytest.raises(ReleaseError, match="stable needs 2 signing keys, 1 given"):
            promote(online, "1.1.0", "stable")
        online.signers["stable"] = repo.managers(2)
        stable = promote(online, "1.1.0", "stable")
    assert first.sha256 == staged.sha256 == stable.sha256 == good.sha256
    files = [
        repo.directory / "targets" / ch / f"{good.sha256}.cityedge-1.1.0.tar" for ch in ("canary", "stable")
    ]
    assert files[0].stat().st_ino == files[1].stat().st_ino  # the same file, not a rebuild
    assert [(x.channel, x.version) for x in listing(online)] == [
        ("canary", "1.1.0"), ("staging", "1.1.0"), ("stable", "1.1.0"),
    ]  # fmt: skip


def test_online_metadata_is_re_signed_before_it_expires(tmp_path: Path) -> None:
    start = datetime.now(UTC)
    repo = make_repo(tmp_path, now=start)
    fresh = ReleaseRepository.online(repo.directory, start + timedelta(hours=1))
    with fresh.locked():
        assert fresh.refresh() == []
    later = ReleaseRepository.online(repo.directory, start + timedelta(hours=17))
    with later.locked():
        assert later.refresh() == ["timestamp"]
    assert later.expires("timestamp") == (start + timedelta(hours=17, days=1)).replace(microsecond=0)
    much_later = ReleaseRepository.online(repo.directory, start + timedelta(days=24))
    with much_later.locked():
        assert much_later.refresh() == ["canary", "staging", "snapshot", "timestamp"]


def test_bundles_are_deterministic_and_checked(tmp_path: Path) -> None:
    src = release_source(tmp_path, "1.1.0")
    a, b = build(src, tmp_path / "a.tar"), build(src, tmp_path / "b.tar")
    assert a.sha256 == b.sha256
    with tarfile.open(tmp_path / "evil.tar", "w") as tar:
        tar.add(src / "manifest.json", "manifest.json")
        tar.add(src / "workload.py", "workload.py")
    with pytest.raises(ReleaseError, match="files not in the manifest"):
        inspect(tmp_path / "evil.tar")
    (src / "manifest.json").write_text('{"version": "1.1"}')
    with pytest.raises(ReleaseError, match=r"manifest.json: invalid manifest: .*"):
        build(src, tmp_path / "c.tar")


def test_the_release_commands_publish_and_promote(tmp_path: Path) -> None:
    runner = CliRunner()
    repo, offline, db = tmp_path / "repo", tmp_path / "offline", f"sqlite:///{tmp_path / 'cloud.db'}"
    assert (
        runner.invoke(app, ["release", "keys", "--offline", str(offline), "--repo", str(repo)]).exit_code == 0
    )
    src = release_source(tmp_path, "1.1.0")
    out = runner.invoke(app, ["release", "publish", str(src), "--repo", str(repo), "--database", db])
    assert out.exit_code == 0, out.output
    sha = json.loads(out.stdout)["sha256"]
    for args in (["--to", "staging"], ["--to", "stable", "--key", str(offline / "release-manager-1.pem"),
                                       "--key", str(offline / "release-manager-3.pem")]):  # fmt: skip
        out = runner.invoke(
            app, ["release", "promote", "1.1.0", "--repo", str(repo), "--database", db, *args]
        )
        assert out.exit_code == 0, out.output
        assert json.loads(out.stdout)["sha256"] == sha
    out = runner.invoke(app, ["audit", "verify", "--database", db])
    assert out.exit_code == 0 and "ok: 3 entries" in out.stdout
