"""A release rolled out mid-run across a pilot's nodes, as a user runs it (`cityedge pilot`).

Real processes as the pilot uses them: three node processes, each with its agent and the real
OTA supervisor (python-tuf against the control plane's `/tuf` over HTTPS, A/B slots, the
release's workload restarted from its slot, health gates on the agent's metrics, `down/ota`
notices through Mosquitto). The control plane's `publish_and_roll_out` drives the waves on
the install reports the nodes' outboxes delivered. Kept short: one camera per node, the
shortest run the spec allows (42 s), half a second of control-plane soak, two of node soak.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cityedge.cloud.releases.channels import listing
from cityedge.cloud.releases.repository import ReleaseRepository

from ...support.services import require_mosquitto
from .test_pilot_runs import HEAD, pilot, slo

pytestmark = pytest.mark.slow

NODES = ["edge-node-001", "edge-node-002", "edge-node-003"]


def _spec(bundle: str) -> str:
    spec = HEAD.format(title=f"Rollout, {bundle} bundle", latency="1000ms", incidents=3)
    return spec + (
        "nodes: 3\nnetwork: {profile: clean}\n"
        f"rollout: {{at: 6s, bundle: {bundle}, canary: 1, staging: 1, soak: 500ms, node_soak: 2s}}\n"
    )


def _run(tmp: Path, bundle: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    require_mosquitto()
    rc, report, out = pilot(tmp, _spec(bundle), "--broker", "mosquitto")
    assert rc == 0 and report["verdict"] == "pass", (report.get("failed"), report.get("rollout"), out[-3000:])
    assert slo(report, "rollout")["verdict"] == "pass"
    return report, report["rollout"], (tmp / "report" / "report.html").read_text()


def _listed(tmp: Path) -> set[tuple[str, str]]:
    repo = ReleaseRepository(tmp / "work" / "releases", datetime.now(UTC))
    return {(x.channel, x.version) for x in listing(repo)}


def test_a_good_release_goes_canary_staging_stable_across_the_pilots_nodes(tmp_path: Path) -> None:
    _report, r, html = _run(tmp_path, "good")
    assert (r["status"], r["version"], r["factory_version"]) == ("done", "1.1.0", "1.0.0")
    waves = r["waves"]
    assert [(w["channel"], [n["node"] for n in w["nodes"]]) for w in waves] == [
        ("canary", NODES[:1]), ("staging", NODES[1:2]), ("stable", NODES[2:])
    ]  # fmt: skip
    for before, after in itertools.pairwise(waves):  # a wave widens only after the last was healthy
        assert before["healthy_s"] is not None and after["started_s"] >= before["healthy_s"]
    for w in waves:
        for n in w["nodes"]:
            assert (n["health"], n["final_version"], n["final_slot"]) == ("committed", "1.1.0", "b"), n
            assert n["reported_s"] >= w["started_s"] >= r["published_s"] >= 6.0
    assert {n: f["committed_version"] for n, f in r["final"].items()} == dict.fromkeys(NODES, "1.1.0")
    assert {(x["node"], x["outcome"]) for x in r["reports"]} == {(n, "committed") for n in NODES}
    assert r["audit"].count("release.promote") == 2 and "release.publish" in r["audit"]
    assert _listed(tmp_path) == {("canary", "1.1.0"), ("staging", "1.1.0"), ("stable", "1.1.0")}
    assert "id='rollout-waves'" in html and "edge-node-003" in html


def test_a_bad_release_halts_after_the_canary_which_rolls_back(tmp_path: Path) -> None:
    _report, r, html = _run(tmp_path, "bad")
    assert r["status"] == "halted" and r["reason"] == "wave 0 (canary) failed on edge-node-001"
    canary, *later = r["waves"]
    (node,) = canary["nodes"]
    assert (node["node"], node["health"], node["reason"]) == ("edge-node-001", "rolled_back", "crash")
    assert all(w["started_s"] is None for w in later)
    final = r["final"]
    assert {n: (f["committed_version"], f["committed_slot"]) for n, f in final.items()} == dict.fromkeys(
        NODES, ("1.0.0", "a")
    )
    assert final["edge-node-001"]["failed"] == ["1.1.0"]
    assert final["edge-node-001"]["workload_starts"] == 3  # factory, the trial, the rollback
    assert [final[n]["workload_starts"] for n in NODES[1:]] == [1, 1]  # never restarted
    assert {(x["node"], x["outcome"]) for x in r["reports"]} == {("edge-node-001", "rolled_back")}
    assert _listed(tmp_path) == {("canary", "1.1.0")}  # never listed on staging or stable
    assert "halted" in html and "rolled_back" in html
