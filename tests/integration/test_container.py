"""The container image, really built (deploy/build-image.sh: a debootstrap base made here) and
really run: the agent as uid 10001 on a read-only root filesystem with memory and CPU limits
and no capabilities, its records stored exactly once by ingest running outside the container;
and the district broker run from the same image as the K3s manifests run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
import yaml

from cityedge.pki import IssuedIdentity
from cityedge.sim.brokers import free_port, wait_port

from ..support.databases import fresh_database
from ..support.e2e import assert_exactly_once, settle
from ..support.services import require
from ..support.stack import DISTRICT, NODE, Stack, wait_until

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
UID = 10001


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if check:
        assert done.returncode == 0, f"docker {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


@cache
def image() -> str:
    """CITYEDGE_IMAGE (what .ci/run built), else build it now (cached: seconds when warm)."""
    has_docker = shutil.which("docker") is not None and docker("info", check=False).returncode == 0
    require(has_docker, "a running Docker engine (apt-get install docker.io; dockerd)")
    if os.environ.get("CITYEDGE_IMAGE"):
        return os.environ["CITYEDGE_IMAGE"]
    done = subprocess.run(
        [str(ROOT / "deploy" / "build-image.sh")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return str(json.loads(done.stdout.strip().splitlines()[-1])["image"])


def readable_copy(ident: IssuedIdentity, into: Path) -> dict[str, str]:
    """The identity's files where uid 10001 can read them; paths as the container sees them."""
    into.mkdir(parents=True, exist_ok=True)
    for src, name in (
        (ident.ca_path, "chain.pem"),
        (ident.cert_path, "tls.crt"),
        (ident.key_path, "tls.key"),
    ):
        shutil.copyfile(src, into / name)
        (into / name).chmod(0o644)
    return {"cafile": "/etc/cityedge/tls/chain.pem", "certfile": "/etc/cityedge/tls/tls.crt",
            "keyfile": "/etc/cityedge/tls/tls.key"}  # fmt: skip


def writable_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)  # the container's uid owns nothing on the host
    return path


RESTRICTED = [
    "--read-only", "--user", f"{UID}:{UID}", "--memory", "512m", "--cpus", "1", "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges", "--tmpfs", "/tmp:size=16m", "--network", "host",
]  # fmt: skip


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with fresh_database("sqlite", tmp_path) as url:
        s = Stack(tmp_path, url)
        try:
            yield s
        finally:
            s.close()


@pytest.fixture
def container_names() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        docker("rm", "-f", name, check=False)


def test_the_agent_runs_non_root_read_only_and_limited_and_its_records_reach_ingest_outside(
    stack: Stack, tmp_path: Path, container_names: list[str]
) -> None:
    img = image()
    stack.ingest()
    home = writable_dir(tmp_path / "node-home")
    tls = readable_copy(stack.identity(NODE), tmp_path / "node-tls")
    health = free_port()
    config = {
        "node_id": NODE, "district": DISTRICT, "data_dir": "/var/lib/cityedge/data",
        "uplink": {"host": "127.0.0.1", "port": stack.proxy.port, "tls": tls, "backoff_base_s": 0.1,
                   "backoff_cap_s": 1.0, "store_ack_timeout_s": 2.0, "store_ack_timeout_cap_s": 4.0},
        "outbox": {"min_free_disk_bytes": 0}, "heartbeat": {"interval_s": 3600.0},
        "synthetic": {"telemetry_per_s": 200, "incidents_per_min": 600, "limit": 1000},
        "health": {"host": "127.0.0.1", "port": health},
    }  # fmt: skip
    (tmp_path / "node.yaml").write_text(yaml.safe_dump(config))
    name = f"cityedge-agent-{uuid.uuid4().hex[:8]}"
    container_names.append(name)
    docker("run", "-d", "--name", name, *RESTRICTED,
           "-v", f"{home}:/var/lib/cityedge", "-v", f"{tmp_path / 'node-tls'}:/etc/cityedge/tls:ro",
           "-v", f"{tmp_path / 'node.yaml'}:/etc/cityedge/node.yaml:ro",
           img, "edge", "run", "--config", "/etc/cityedge/node.yaml")  # fmt: skip
    wait_until(lambda: _status(health, "/readyz") == 200, 60, f"the agent's /readyz ({_logs(name)})")

    assert docker("exec", name, "id", "-u").stdout.strip() == str(UID)
    refused = docker("exec", name, "touch", "/opt/cityedge/x", check=False)
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr
    [info] = json.loads(docker("inspect", name).stdout)
    host = info["HostConfig"]
    assert (host["ReadonlyRootfs"], host["Memory"], host["NanoCpus"]) == (True, 512 * 2**20, 10**9)
    assert host["CapDrop"] == ["ALL"] and info["Config"]["User"] == f"{UID}:{UID}"

    settle(stack, 1001, timeout=120)  # the synthetic records and the first heartbeat
    docker("stop", "-t", "20", name)  # SIGTERM through tini: the agent stops in order
    assert json.loads(docker("inspect", name).stdout)[0]["State"]["ExitCode"] == 0, _logs(name)
    counts = assert_exactly_once(stack, home / "data", arrival_order=False)
    assert sum(counts.values()) == 1001


def test_the_district_broker_runs_from_the_image_as_the_manifests_run_it(
    stack: Stack, tmp_path: Path, container_names: list[str]
) -> None:
    """`cityedge broker config` then `mosquitto -c`, as uid 10001 on a read-only root: the
    StatefulSet's init container and container. A node's certificate gets through; the
    broker's own rules (the certificate's CN is the client id) hold."""
    img = image()
    data = writable_dir(tmp_path / "broker-data")
    port = free_port()
    server = stack.district.ca.issue_to_directory(
        "broker", tmp_path / "broker-tls-src", now=_now(), server_auth=True,
        extra_sans=("localhost", "127.0.0.1"), chain=stack.district.layout.chain.read_bytes(),
    )  # fmt: skip
    readable_copy(server, tmp_path / "broker-tls")
    trust = tmp_path / "trust"
    trust.mkdir()
    for src, name in ((stack.district.layout.chain, "chain.pem"), (stack.district.layout.crl, "crl.pem")):
        shutil.copyfile(src, trust / name)
        (trust / name).chmod(0o644)
    mounts = ["-v", f"{data}:/var/lib/cityedge/broker", "-v", f"{trust}:/etc/cityedge/trust:ro",
              "-v", f"{tmp_path / 'broker-tls'}:/etc/cityedge/tls:ro"]  # fmt: skip
    docker("run", "--rm", *RESTRICTED, *mounts, img, "broker", "config", "--role=cloud",
           "--out=/var/lib/cityedge/broker", f"--port={port}", "--bind=127.0.0.1",
           "--chain=/etc/cityedge/trust/chain.pem", "--cert=/etc/cityedge/tls/tls.crt",
           "--key=/etc/cityedge/tls/tls.key", "--crl=/etc/cityedge/trust/crl.pem", f"--district={DISTRICT}",
           "--user=cityedge", "--ingest-identity=ingest")  # fmt: skip
    name = f"cityedge-broker-{uuid.uuid4().hex[:8]}"
    container_names.append(name)
    docker("run", "-d", "--name", name, *RESTRICTED, *mounts, "--entrypoint", "/usr/sbin/mosquitto",
           img, "-c", "/var/lib/cityedge/broker/mosquitto.conf")  # fmt: skip
    wait_port(port)
    from ..support.cloud import DISTRICT as CLOUD_DISTRICT
    from ..support.cloud import Device, batch, envelope

    assert CLOUD_DISTRICT == DISTRICT
    device = Device(port, stack.identity(NODE))
    try:
        device.publish(f"ce/v1/{DISTRICT}/{NODE}/up/events", batch([envelope()]))
    finally:
        device.close()
    assert docker("exec", name, "id", "-u").stdout.strip() == str(UID)
    assert "Opening ipv4 listen socket on port" in _logs(name)


def _now() -> object:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        with exc:
            return int(exc.code)
    except OSError:
        return 0


def _logs(name: str) -> str:
    done = docker("logs", "--tail", "40", name, check=False)
    return done.stdout + done.stderr
