"""The updater end to end on one node: real TUF metadata, real slots, a real workload process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cityedge.cloud.releases.channels import promote, publish
from cityedge.edge.ota.machine import State
from cityedge.protocol.release import OtaNotice
from tests.support.ota import Node, Repo, RepoFetcher, bundle, make_node, make_repo


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return make_repo(tmp_path)


@pytest.fixture
def node(tmp_path: Path, repo: Repo) -> Iterator[Node]:
    initial = bundle(tmp_path, "1.0.0")
    n = make_node(tmp_path, "node-1", repo.root, RepoFetcher(repo.directory), initial.path)
    n.updater.boot()
    yield n
    n.workload.stop()


def test_a_good_release_is_installed_in_the_other_slot_soaked_and_committed(
    tmp_path: Path, repo: Repo, node: Node
) -> None:
    online = repo.online()
    with online.locked():
        publish(online, bundle(tmp_path, "1.1.0"), "canary")
    first_pid = node.workload.process.pid if node.workload.process else None
    state = node.updater.check()
    assert state.state is State.IDLE
    assert (state.committed_slot, state.committed_version, state.previous_version) == ("b", "1.1.0", "1.0.0")
    assert node.workload.slot == node.directory / "ota" / "slots" / "b"
    assert node.workload.process is not None and node.workload.process.pid != first_pid
    report = node.reports()[-1]
    assert (report["outcome"], report["version"], report["from_version"]) == ("committed", "1.1.0", "1.0.0")
    assert (node.directory / "ota" / "current").resolve() == node.directory / "ota" / "slots" / "b"


def test_a_release_that_fails_its_health_gate_is_rolled_back_and_reported(
    tmp_path: Path, repo: Repo, node: Node
) -> None:
    online = repo.online()
    with online.locked():
        publish(online, bundle(tmp_path, "1.1.0", fps=1), "canary")
    state = node.updater.check()
    assert (state.committed_slot, state.committed_version) == ("a", "1.0.0")
    assert node.workload.slot == node.directory / "ota" / "slots" / "a"
    report = node.reports()[-1]
    assert (report["outcome"], report["reason"], report["version"]) == ("rolled_back", "camera_fps", "1.1.0")
    assert "cam-1 at 1.0 fps" in report["detail"]


def test_a_workload_that_crashes_is_rolled_back(tmp_path: Path, repo: Repo, node: Node) -> None:
    online = repo.online()
    with online.locked():
        publish(online, bundle(tmp_path, "1.1.0", crash_after_s=0.3), "canary")
    state = node.updater.check()
    assert state.committed_version == "1.0.0"
    assert node.reports()[-1]["reason"] == "crash"


def test_a_rollback_notice_reinstalls_the_previous_release(tmp_path: Path, repo: Repo, node: Node) -> None:
    online = repo.online()
    with online.locked():
        publish(online, bundle(tmp_path, "1.0.0"), "canary")  # the installed release, listed
        publish(online, bundle(tmp_path, "1.1.0"), "canary")
    assert node.updater.check().committed_version == "1.1.0"
    state = node.updater.check(OtaNotice(action="rollback"))
    assert (state.committed_version, state.committed_slot) == ("1.0.0", "a")
    assert node.reports()[-1]["outcome"] == "committed"


def test_a_node_refuses_a_channel_it_does_not_accept(tmp_path: Path, repo: Repo) -> None:
    initial = bundle(tmp_path, "1.0.0")
    n = make_node(tmp_path, "node-s", repo.root, RepoFetcher(repo.directory), initial.path,
                  channel="stable", accept=("stable",))  # fmt: skip
    try:
        n.updater.boot()
        online = repo.online()
        with online.locked():
            publish(online, bundle(tmp_path, "1.1.0"), "canary")
            promote(online, "1.1.0", "staging")
        state = n.updater.check(OtaNotice(channel="canary"))
        assert state.committed_version == "1.0.0"
        assert n.reports()[-1]["reason"] == "channel"
        assert n.updater.check().committed_version == "1.0.0"  # stable lists nothing newer
    finally:
        n.workload.stop()
