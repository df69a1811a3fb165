"""Power loss at every step of the OTA state table: a real `cityedge ota supervise` process
is SIGKILLed right after it persisted each state, then started again. The node must boot a
consistent slot and either finish the attempt or roll back, and no workload from before the
kill may be left running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from cityedge.cloud.releases.channels import publish
from cityedge.edge.ota.machine import State
from cityedge.edge.ota.slots import SlotStore
from cityedge.edge.ota.updater import provision
from cityedge.sim.brokers import free_port
from tests.support.ota import Repo, bundle, make_repo
from tests.support.ota_api import Served, serve_ota

pytestmark = pytest.mark.slow

# (state to die in, channel of the release it is installing, what the node ends up with)
CASES = [
    (State.CHECKING, "canary", ("committed", "1.1.0", "b")),
    (State.DOWNLOADING, "canary", ("committed", "1.1.0", "b")),
    (State.INSTALLING, "canary", ("committed", "1.1.0", "b")),
    (State.INSTALLED, "canary", ("committed", "1.1.0", "b")),
    (State.SWITCHED, "canary", ("rolled_back", "1.0.0", "a")),
    (State.SOAKING, "canary", ("rolled_back", "1.0.0", "a")),
    (State.COMMITTED, "canary", ("committed", "1.1.0", "b")),
    (State.IDLE, "canary", ("committed", "1.1.0", "b")),
    (State.ROLLING_BACK, "staging", ("rolled_back", "1.0.0", "a")),
    (State.ROLLED_BACK, "staging", ("rolled_back", "1.0.0", "a")),
    (State.REFUSED, "stable", ("refused", "1.0.0", "a")),
]


def test_every_state_of_the_table_is_covered() -> None:
    assert {state for state, _, _ in CASES} == set(State)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Repo, Served, Path]]:
    tmp = tmp_path_factory.mktemp("ota-power")
    repo = make_repo(tmp)
    online = repo.online()
    with online.locked():
        publish(online, bundle(tmp, "1.1.0"), "canary")  # healthy
        publish(online, bundle(tmp, "1.2.0", fps=1), "staging")  # fails its health gate
        online.signers["stable"] = repo.managers(2)
        publish(online, bundle(tmp, "1.3.0", hardware=("rpi-4",)), "stable")  # other hardware
    with serve_ota(tmp, repo.directory) as s:
        yield repo, s, bundle(tmp, "1.0.0").path


def _supervisor(config: Path, fault: str | None) -> subprocess.Popen[bytes]:
    log = config.with_name("supervisor.log").open("ab")
    env = {k: v for k, v in os.environ.items() if k != "CITYEDGE_FAULT"}
    if fault:
        env["CITYEDGE_FAULT"] = fault
    cmd = [sys.executable, "-m", "cityedge.cli", "ota", "supervise", "--config", str(config)]
    try:
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
    finally:
        log.close()


def _running_release(port: int) -> str | None:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        if line.startswith("cityedge_test_release{"):
            return line.split('version="')[1].split('"')[0]
    return None


def _reports(ota: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text())["body"] for p in sorted((ota / "reports").glob("*.json"))]


def _wait(what: str, predicate: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.parametrize(("kill_at", "channel", "expected"), CASES, ids=[c[0].value for c in CASES])
def test_a_kill_at_each_step_leaves_a_consistent_node_that_finishes_or_rolls_back(
    tmp_path: Path,
    served: tuple[Repo, Served, Path],
    kill_at: State,
    channel: str,
    expected: tuple[str, str, str],
) -> None:
    repo, server, factory = served
    install = tmp_path / "install"
    install.mkdir()
    (install / "root.json").write_bytes(repo.root.read_bytes())
    ota, port = tmp_path / "ota", free_port()
    provision(SlotStore(ota), factory, channel)
    config = tmp_path / "ota.yaml"
    config.write_text(yaml.safe_dump({
        "node_id": "node-1", "district": "corridor-a", "hardware": "nx-500", "ota_dir": str(ota),
        "trusted_root": str(install / "root.json"), "repository_url": f"{server.url}/tuf",
        "cafile": str(server.cafile), "accept_channels": [channel], "check_interval_s": 0.5,
        "health": {"metrics_url": f"http://127.0.0.1:{port}/metrics", "soak_s": 1.0, "settle_s": 0.5,
                   "min_fps": 5.0, "poll_s": 0.2},
        "workload_env": {"OTA_TEST_METRICS_PORT": str(port)},
    }))  # fmt: skip
    state = SlotStore(ota)

    first = _supervisor(config, f"ota_kill_at:{kill_at.value}")
    if kill_at is State.IDLE:  # idle is entered once the attempt is reported
        _wait("the first report", lambda: _reports(ota))
    assert first.wait(90) == -signal.SIGKILL, (tmp_path / "supervisor.log").read_text()
    assert state.load(None).state is kill_at  # type: ignore[arg-type]
    _wait("the killed supervisor's workload to die with it", lambda: _running_release(port) is None, 10)

    second = _supervisor(config, None)
    try:
        outcome, version, slot = expected
        _wait("the attempt to end", lambda: state.load(None).state is State.IDLE and bool(_reports(ota)))  # type: ignore[arg-type]
        final = state.load(None)  # type: ignore[arg-type]
        assert (final.committed_version, final.committed_slot) == (version, slot)
        assert (ota / "current").resolve() == ota / "slots" / slot
        assert SlotStore(ota).verify(slot).version == version
        _wait(f"release {version} running", lambda: _running_release(port) == version, 30)
        report = _reports(ota)[-1]
        assert report["outcome"] == outcome, report
        if kill_at in (State.SWITCHED, State.SOAKING):
            assert report["reason"] == "interrupted"
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0
    _wait("the workload to stop with the supervisor", lambda: _running_release(port) is None, 10)
