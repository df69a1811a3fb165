"""OTA test helpers: a release repository, bundles with a tiny workload, a fetcher twin, nodes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tuf.api import exceptions as tuf_errors
from tuf.ngclient.fetcher import FetcherInterface

from cityedge.cloud.releases.bundle import Bundle, build
from cityedge.cloud.releases.channels import init_repository
from cityedge.cloud.releases.keys import load_signers
from cityedge.cloud.releases.repository import ReleaseRepository
from cityedge.edge.ota.client import ReleaseClient
from cityedge.edge.ota.health import HealthGates
from cityedge.edge.ota.slots import SlotStore
from cityedge.edge.ota.updater import OtaUpdater, UpdaterSettings, provision
from cityedge.edge.ota.workload import MetricsProbe, ProcessWorkload
from cityedge.edge.records import ListSink
from cityedge.sim.brokers import free_port

HARDWARE = "nx-500"
BASE = "https://releases.test/tuf"

# The workload a test bundle runs: serves the agent's health metrics, as `behaviour.json` says.
WORKLOAD = """
import json, os, sys, time
from prometheus_client import CollectorRegistry, Gauge, start_http_server
b = json.load(open("behaviour.json"))
if b.get("exit_at_start") is not None:
    sys.exit(b["exit_at_start"])
reg = CollectorRegistry()
Gauge("cityedge_camera_fps", "fps", ["camera"], registry=reg).labels("cam-1").set(b.get("fps", 10))
Gauge("cityedge_uplink_connected", "up", registry=reg).set(1 if b.get("uplink", True) else 0)
release = Gauge("cityedge_test_release", "running", ["version"], registry=reg)
release.labels(os.environ["CITYEDGE_RELEASE"]).set(1)
start_http_server(int(os.environ["OTA_TEST_METRICS_PORT"]), addr="127.0.0.1", registry=reg)
started = time.time()
while True:
    time.sleep(0.1)
    if b.get("crash_after_s") is not None and time.time() - started > b["crash_after_s"]:
        os._exit(3)
"""


def release_source(tmp: Path, version: str, *, hardware: tuple[str, ...] = (HARDWARE,),
                   min_version: str = "0.0.0", **behaviour: Any) -> Path:  # fmt: skip
    src = tmp / f"src-{version}-{abs(hash((hardware, min_version, str(behaviour)))) % 10**8}"
    src.mkdir(parents=True, exist_ok=True)
    manifest = {"version": version, "agent_version": version, "hardware": list(hardware),
                "min_version": min_version, "entrypoint": ["{python}", "workload.py"]}  # fmt: skip
    (src / "manifest.json").write_text(json.dumps(manifest))
    (src / "workload.py").write_text(WORKLOAD)
    (src / "behaviour.json").write_text(json.dumps({"fps": 10, "uplink": True, **behaviour}))
    (src / "config").mkdir(exist_ok=True)
    (src / "config" / "node.yaml").write_text(f"# release {version}\n")
    return src


def bundle(tmp: Path, version: str, **kw: Any) -> Bundle:
    src = release_source(tmp, version, **kw)
    return build(src, tmp / "bundles" / f"{src.name}.tar")


@dataclass
class Repo:
    directory: Path
    offline: Path
    keys: dict[str, Any]

    def online(self, now: datetime | None = None) -> ReleaseRepository:
        return ReleaseRepository.online(self.directory, now or datetime.now(UTC))

    def managers(self, n: int = 2) -> list[Any]:
        return load_signers(self.keys["release_managers"][:n])

    @property
    def root(self) -> Path:
        return self.directory / "metadata" / "1.root.json"


def make_repo(tmp: Path, now: datetime | None = None) -> Repo:
    keys = init_repository(tmp / "repo", tmp / "offline", now or datetime.now(UTC))
    return Repo(tmp / "repo", tmp / "offline", keys)


@dataclass
class RepoFetcher(FetcherInterface):
    """Serves a repository directory as python-tuf would fetch it; `overrides` replace
    files by their URL path (an attacker between node and repository)."""

    directory: Path
    overrides: dict[str, bytes] = field(default_factory=dict)

    def _fetch(self, url: str) -> Iterator[bytes]:
        rel = url.removeprefix(BASE + "/")
        if rel in self.overrides:
            return iter([self.overrides[rel]])
        path = self.directory / rel
        if not path.is_file():
            raise tuf_errors.DownloadHTTPError(f"{url}: 404", 404)
        return iter([path.read_bytes()])


@dataclass
class Node:
    name: str
    directory: Path
    updater: OtaUpdater
    workload: ProcessWorkload
    sink: ListSink
    port: int

    def reports(self) -> list[dict[str, Any]]:
        return [r.body for r in self.sink.records if r.stream == "ota"]


def make_node(tmp: Path, name: str, repo_root: Path, fetcher: FetcherInterface, initial: Path,
              channel: str = "canary", accept: tuple[str, ...] = ("canary", "staging", "stable"),
              gates: HealthGates | None = None, repository_url: str = BASE) -> Node:  # fmt: skip
    """A node whose install holds `initial` (a bundle) and the trusted root `repo_root`."""
    home = tmp / name
    install = home / "install"
    install.mkdir(parents=True)
    (install / "root.json").write_bytes(repo_root.read_bytes())  # the read-only install copy
    slots = SlotStore(home / "ota")
    provision(slots, initial, channel)
    port = free_port()
    workload = ProcessWorkload(home / "logs", env={"OTA_TEST_METRICS_PORT": str(port)})
    probe = MetricsProbe(workload, f"http://127.0.0.1:{port}/metrics")
    client = ReleaseClient(repository_url, install / "root.json", home / "tuf-cache", fetcher)
    gates = gates or HealthGates(soak_s=1.0, settle_s=1.0, min_fps=5.0, require_uplink=True)
    settings = UpdaterSettings(HARDWARE, accept, gates, poll_s=0.2)
    sink = ListSink()
    updater = OtaUpdater(settings, client, slots, workload, probe, sink)
    return Node(name, home, updater, workload, sink, port)
