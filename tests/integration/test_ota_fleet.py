"""A rollout across a simulated fleet of five nodes.

Each node is an in-process updater (the same `OtaUpdater` the supervisor runs) with its own
trusted root, TUF cache, two real slot directories and a real workload process; every
download goes over the control plane's real HTTPS. Notices are direct calls (the MQTT path
is tested in tests/edge/ota/test_listener.py), reports come from each node's RecordSink.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cityedge.cloud.releases.channels import listing
from cityedge.cloud.releases.driver import latest_reports, publish_and_roll_out
from cityedge.cloud.releases.repository import ReleaseRepository
from cityedge.cloud.releases.rollout import Policy
from cityedge.edge.ota.client import HttpsFetcher
from cityedge.protocol.release import OtaNotice
from tests.support.ota import Node, Repo, bundle, make_node, make_repo
from tests.support.ota_api import Served, serve_ota

pytestmark = pytest.mark.slow

FLEET = {
    "node-1": ("canary", "staging", "stable"),
    "node-2": ("staging", "stable"),
    "node-3": ("staging", "stable"),
    "node-4": ("stable",),
    "node-5": ("stable",),
}


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return make_repo(tmp_path)


@pytest.fixture
def served(tmp_path: Path, repo: Repo) -> Iterator[Served]:
    with serve_ota(tmp_path, repo.directory) as s:
        yield s


@pytest.fixture
def fleet(tmp_path: Path, repo: Repo, served: Served) -> Iterator[dict[str, Node]]:
    initial = bundle(tmp_path, "1.0.0")
    nodes = {}
    for name, accepts in FLEET.items():
        nodes[name] = make_node(
            tmp_path, name, repo.root, HttpsFetcher(served.cafile), initial.path,
            channel=accepts[0], accept=accepts, repository_url=f"{served.url}/tuf",
        )  # fmt: skip
        nodes[name].updater.boot()
    yield nodes
    for n in nodes.values():
        n.workload.stop()


def _roll_out(repo: Repo, served: Served, fleet: dict[str, Node], bundle_path: Path) -> dict[str, Any]:
    threads: list[threading.Thread] = []

    def notify(node: str, notice: OtaNotice) -> None:  # what down/ota does on a node
        t = threading.Thread(target=fleet[node].updater.check, args=(notice,), daemon=True)
        t.start()
        threads.append(t)

    def reports() -> dict[str, tuple[str, str, str]]:
        return latest_reports((name, body) for name, n in fleet.items() for body in n.reports())

    result = publish_and_roll_out(
        repo.directory, bundle_path, FLEET, notify, reports, stable_signers=repo.managers(2),
        rollout_policy=Policy(canary_nodes=("node-1",), soak_s=0.5), timeout_s=120, poll_s=0.2,
        audit=lambda action, target, detail: served.auth.audit("rollout", action, target, "ok", detail),
    )  # fmt: skip
    for t in threads:
        t.join(60)
    return result


def test_a_good_release_goes_canary_staging_stable_across_the_fleet(
    tmp_path: Path, repo: Repo, served: Served, fleet: dict[str, Node]
) -> None:
    result = _roll_out(repo, served, fleet, bundle(tmp_path, "1.1.0").path)
    assert result["status"] == "done", result
    waves = [(w["channel"], w["nodes"], set(w["results"].values())) for w in result["waves"]]
    assert waves == [
        ("canary", ["node-1"], {"committed"}),
        ("staging", ["node-2", "node-3"], {"committed"}),
        ("stable", ["node-4", "node-5"], {"committed"}),
    ]
    for name, node in fleet.items():
        assert node.updater.state.committed_version == "1.1.0", name
        assert node.updater.state.committed_slot == "b"
    hashes = {(x.channel, x.sha256) for x in listing(ReleaseRepository(repo.directory, served.auth.clock()))}
    assert len({sha for _, sha in hashes}) == 1
    assert {ch for ch, _ in hashes} == {"canary", "staging", "stable"}
    actions = [e.action for e in served.auth.store.audit_entries()]
    assert actions.count("release.promote") == 2 and "release.publish" in actions


def test_a_release_failing_its_health_gate_rolls_back_on_the_canary_and_halts(
    tmp_path: Path, repo: Repo, served: Served, fleet: dict[str, Node]
) -> None:
    result = _roll_out(repo, served, fleet, bundle(tmp_path, "1.1.0", fps=1).path)
    assert result["status"] == "halted", result
    assert "wave 0 (canary) failed on node-1" in result["reason"]
    canary = result["waves"][0]
    assert canary["results"] == {"node-1": "rolled_back"} and canary["reasons"] == {"node-1": "camera_fps"}
    assert all(w["started_at"] is None for w in result["waves"][1:])
    assert fleet["node-1"].updater.state.committed_version == "1.0.0"
    assert fleet["node-1"].workload.slot == fleet["node-1"].directory / "ota" / "slots" / "a"
    listed = {(x.channel, x.version) for x in listing(ReleaseRepository(repo.directory, served.auth.clock()))}
    assert listed == {("canary", "1.1.0")}
    for name in ("node-4", "node-5"):  # the stable nodes never see it, even when they look
        node = fleet[name]
        assert node.reports() == []
        assert node.updater.check().committed_version == "1.0.0"
        assert node.reports() == []
