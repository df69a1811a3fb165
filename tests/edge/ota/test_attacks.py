"""Attacks on the update path: each is refused on the node with a clear reason, and the
running slot, its files and its process are left exactly as they were.

The repository is real python-tuf metadata; the fetcher twin plays the network, so a test
can replace any file the node downloads (an attacker between node and control plane, or a
control plane whose online keys are stolen).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cityedge.cloud.releases.channels import publish
from cityedge.cloud.releases.keys import load_signer
from cityedge.edge.ota.machine import State
from cityedge.protocol.release import OtaNotice, target_path
from tests.support.ota import Node, Repo, RepoFetcher, bundle, make_node, make_repo


def _fingerprint(node: Node) -> tuple[object, ...]:
    st = node.updater.state
    slot = node.directory / "ota" / "slots" / st.committed_slot
    files = sorted((p.relative_to(slot).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
                   for p in slot.rglob("*") if p.is_file())  # fmt: skip
    pid = node.workload.process.pid if node.workload.process else None
    return st.committed_slot, st.committed_version, st.floor, tuple(files), pid, node.workload.slot


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return make_repo(tmp_path)


@pytest.fixture
def fetcher(repo: Repo) -> RepoFetcher:
    return RepoFetcher(repo.directory)


def _node(tmp_path: Path, repo: Repo, fetcher: RepoFetcher, channel: str = "canary") -> Node:
    initial = bundle(tmp_path, "1.0.0")
    n = make_node(tmp_path, f"node-{channel}", repo.root, fetcher, initial.path, channel=channel,
                  accept=(channel,))  # fmt: skip
    n.updater.boot()
    return n


@pytest.fixture
def node(tmp_path: Path, repo: Repo, fetcher: RepoFetcher) -> Iterator[Node]:
    n = _node(tmp_path, repo, fetcher)
    yield n
    n.workload.stop()


def _refused(node: Node, notice: OtaNotice | None, before: tuple[object, ...]) -> dict[str, str]:
    state = node.updater.check(notice)
    assert state.state is State.IDLE
    assert _fingerprint(node) == before, "the running slot must be untouched"
    report = node.reports()[-1]
    assert report["outcome"] == "refused", report
    return report


def _publish(repo: Repo, tmp_path: Path, version: str, channel: str = "canary", **kw: object) -> str:
    online = repo.online()
    with online.locked():
        listed = publish(online, bundle(tmp_path, version, **kw), channel)  # type: ignore[arg-type]
    return f"targets/{channel}/{listed.sha256}.cityedge-{version}.tar"


@pytest.mark.parametrize("extra", [0, 1], ids=["same-length", "longer"])
def test_a_tampered_artifact_is_refused(
    tmp_path: Path, repo: Repo, fetcher: RepoFetcher, node: Node, extra: int
) -> None:
    served = _publish(repo, tmp_path, "1.1.0")
    genuine = (repo.directory / served).read_bytes()
    fetcher.overrides[served] = genuine[:-10] + b"X" * (10 + extra)
    before = _fingerprint(node)
    report = _refused(node, None, before)
    assert report["reason"] == ("hash_mismatch" if extra == 0 else "oversize")
    assert report["step"] == "downloading"


def _sign_stable_with(repo: Repo, tmp_path: Path, signers: list[object]) -> None:
    """A control plane whose online keys are stolen lists 1.1.0 under stable/ itself."""
    online = repo.online()
    listed = None
    with online.locked():
        listed = publish(online, bundle(tmp_path, "1.1.0"), "canary")
        online.signers["stable"] = signers  # type: ignore[assignment]
        with online.edit_targets("stable") as stable:
            src = online.targets("canary").targets[listed.path]
            src.path = target_path("stable", "1.1.0")
            stable.targets[src.path] = src
        online.do_snapshot()
        online.do_timestamp()
    dest = repo.directory / "targets" / "stable" / f"{listed.sha256}.cityedge-1.1.0.tar"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(
        (repo.directory / "targets" / "canary" / f"{listed.sha256}.cityedge-1.1.0.tar").read_bytes()
    )


def test_an_artifact_signed_only_by_the_canary_key_under_stable_is_refused(
    tmp_path: Path, repo: Repo, fetcher: RepoFetcher
) -> None:
    n = _node(tmp_path, repo, fetcher, "stable")
    try:
        _sign_stable_with(repo, tmp_path, [load_signer(repo.directory / "keys" / "canary.pem")])
        report = _refused(n, OtaNotice(version="1.1.0"), _fingerprint(n))
        assert report["reason"] == "signature"
        assert "stable" in report["detail"]
    finally:
        n.workload.stop()


def test_stable_metadata_signed_by_one_release_manager_is_refused(
    tmp_path: Path, repo: Repo, fetcher: RepoFetcher
) -> None:
    n = _node(tmp_path, repo, fetcher, "stable")
    try:
        _sign_stable_with(repo, tmp_path, repo.managers(1))
        report = _refused(n, OtaNotice(version="1.1.0"), _fingerprint(n))
        assert report["reason"] == "signature"
        assert "1/2" in report["detail"] or "threshold" in report["detail"].lower()
    finally:
        n.workload.stop()


def test_replaying_an_older_timestamp_is_refused(
    tmp_path: Path, repo: Repo, fetcher: RepoFetcher, node: Node
) -> None:
    old_timestamp = (repo.directory / "metadata" / "timestamp.json").read_bytes()
    _publish(repo, tmp_path, "1.0.1", crash_after_s=None)
    assert node.updater.check().committed_version == "1.0.1"  # the node has seen the newer state
    _publish(repo, tmp_path, "1.1.0")
    fetcher.overrides["metadata/timestamp.json"] = old_timestamp
    report = _refused(node, None, _fingerprint(node))
    assert (report["reason"], report["step"]) == ("metadata_version", "checking")


def test_a_timestamp_pointing_at_an_older_snapshot_is_refused(
    tmp_path: Path, repo: Repo, fetcher: RepoFetcher, node: Node
) -> None:
    _publish(repo, tmp_path, "1.0.1")
    assert node.updater.check().committed_version == "1.0.1"
    online = repo.online()
    with online.locked(), online.edit_timestamp() as ts:  # stolen timestamp key, old snapshot
        ts.snapshot_meta.version -= 1
    report = _refused(node, None, _fingerprint(node))
    assert report["reason"] == "metadata_version"
    assert "snapshot" in report["detail"]


def test_a_frozen_expired_timestamp_is_refused(tmp_path: Path, fetcher: RepoFetcher) -> None:
    frozen = make_repo(tmp_path / "frozen", now=datetime.now(UTC) - timedelta(days=3))
    n = make_node(
        tmp_path, "node-f", frozen.root, RepoFetcher(frozen.directory), bundle(tmp_path, "1.0.0").path
    )
    try:
        n.updater.boot()
        online = frozen.online(now=datetime.now(UTC) - timedelta(days=3))
        with online.locked():
            publish(online, bundle(tmp_path, "1.1.0"), "canary")
        report = _refused(n, None, _fingerprint(n))
        assert report["reason"] == "expired"
        assert "timestamp" in report["detail"]
    finally:
        n.workload.stop()


def test_mixing_an_old_channel_role_into_a_new_snapshot_is_refused(
    tmp_path: Path, repo: Repo, fetcher: RepoFetcher, node: Node
) -> None:
    _publish(repo, tmp_path, "1.1.0")
    online = repo.online()
    current = online.latest_version("canary")
    fetcher.overrides[f"metadata/{current}.canary.json"] = (
        repo.directory / "metadata" / f"{current - 1}.canary.json"
    ).read_bytes()
    report = _refused(node, None, _fingerprint(node))
    assert report["reason"] == "metadata_version"
    assert "canary" in report["detail"]


def test_oversized_metadata_is_refused(tmp_path: Path, repo: Repo, fetcher: RepoFetcher, node: Node) -> None:
    _publish(repo, tmp_path, "1.1.0")
    fetcher.overrides["metadata/timestamp.json"] = b"{" + b" " * 10_000_000 + b"}"
    report = _refused(node, None, _fingerprint(node))
    assert report["reason"] == "oversize"


def test_a_bundle_for_other_hardware_is_refused(
    tmp_path: Path, repo: Repo, fetcher: RepoFetcher, node: Node
) -> None:
    _publish(repo, tmp_path, "1.1.0", hardware=("rpi-4",))
    report = _refused(node, None, _fingerprint(node))
    assert report["reason"] == "hardware"
    assert "rpi-4" in report["detail"] and "nx-500" in report["detail"]


def test_a_downgrade_below_the_minimum_version_is_refused(
    tmp_path: Path, repo: Repo, fetcher: RepoFetcher, node: Node
) -> None:
    _publish(repo, tmp_path, "1.0.0")
    _publish(repo, tmp_path, "1.1.0")
    _publish(repo, tmp_path, "1.2.0", min_version="1.2.0")  # a security fix raises the floor
    assert node.updater.check().committed_version == "1.2.0"
    assert node.updater.state.floor == "1.2.0"
    report = _refused(node, OtaNotice(version="1.1.0"), _fingerprint(node))
    assert report["reason"] == "downgrade"
    rolled = _refused(node, OtaNotice(action="rollback"), _fingerprint(node))
    assert rolled["reason"] == "downgrade"
