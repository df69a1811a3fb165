"""Process-level harness for end-to-end tests: the brokers exactly as `cityedge broker config`
renders them (mTLS, CRL, ACLs, persistence) and started as rendered (`mosquitto -c`), ingest
and edge agents as real CLI subprocesses (so they can be SIGKILLed), a TCP proxy for link
cuts, and a district PKI that issues every certificate.
"""

from __future__ import annotations

import getpass
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cityedge.pki import IssuedIdentity
from cityedge.sim.brokers import free_port, mosquitto_binary, wait_port
from cityedge.sim.proxy import TcpProxy

from .identity import District
from .services import require_mosquitto

DISTRICT = "corridor-a"
NODE = "edge-node-001"


def tls_dict(ident: IssuedIdentity) -> dict[str, str]:
    return {"cafile": str(ident.ca_path), "certfile": str(ident.cert_path), "keyfile": str(ident.key_path)}


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `cityedge ARGS` as an operator would; fail the test with its output if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "cityedge.cli", *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"cityedge {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


class Proc:
    """A cityedge CLI subprocess with its log file."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log = log
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        env = {**os.environ, **self.env}
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cityedge.cli", *self.args], stdout=fh, stderr=fh, env=env
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def pause(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGSTOP)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class RenderedBroker:
    """A Mosquitto whose files `cityedge broker config` wrote, run as `mosquitto -c <conf>`."""

    def __init__(self, district: District, workdir: Path, role: str, *, node: str | None = None,
                 ingest: tuple[str, ...] = ("ingest",)) -> None:  # fmt: skip
        require_mosquitto()
        self.workdir = workdir
        self.port = free_port()
        server = district.ca.issue_to_directory(
            "broker", workdir / "tls", now=_now(), server_auth=True, extra_sans=("localhost", "127.0.0.1"),
            chain=district.layout.chain.read_bytes(),
        )  # fmt: skip
        args = [
            "broker", "config", "--role", role, "--out", str(workdir), "--port", str(self.port),
            "--bind", "127.0.0.1", "--chain", str(district.layout.chain), "--cert", str(server.cert_path),
            "--key", str(server.key_path), "--crl", str(district.layout.crl), "--district", DISTRICT,
            "--user", getpass.getuser(), *(["--node", node] if node else []),
            *[a for name in ingest for a in ("--ingest-identity", name)],
        ]  # fmt: skip
        written = json.loads(cli(*args).stdout)
        self.conf = Path(written["conf"])
        self.log_path = workdir / "broker.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def persistence_file(self) -> Path:
        return self.workdir / "data" / "mosquitto.db"

    def start(self) -> RenderedBroker:
        binary = mosquitto_binary()
        assert binary is not None
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([binary, "-c", str(self.conf)], stdout=log, stderr=log)
        wait_port(self.port)
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        """Graceful: Mosquitto saves its sessions on SIGTERM."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


@dataclass
class Stack:
    """A district on one machine: the cloud broker (rendered), ingest, agents, link proxy."""

    tmp: Path
    db_url: str
    ingest_names: tuple[str, ...] = ("ingest",)
    district: District = field(init=False)
    cloud: RenderedBroker = field(init=False)
    local: RenderedBroker | None = None
    proxy: TcpProxy = field(init=False)
    procs: list[Proc] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.district = District(self.tmp / "pki")
        self.cloud = RenderedBroker(
            self.district, self.tmp / "cloud-broker", "cloud", ingest=self.ingest_names
        ).start()
        self.proxy = TcpProxy(self.cloud.port).start()

    def identity(self, name: str) -> IssuedIdentity:
        return self.district.identity(name)

    def start_local_broker(self, node: str = NODE) -> RenderedBroker:
        self.local = RenderedBroker(self.district, self.tmp / "local-broker", "local", node=node).start()
        return self.local

    def ingest(self, env: dict[str, str] | None = None, name: str = "ingest", share_group: str | None = None,
               wait: bool = True) -> Proc:  # fmt: skip
        conf = {
            "host": "127.0.0.1", "port": self.cloud.port, "tls": tls_dict(self.identity(name)),
            "client_id": name,
            "share_group": share_group, "database": self.db_url, "backoff_base_s": 0.1, "backoff_cap_s": 1.0,
        }  # fmt: skip
        path = self.tmp / f"{name}.yaml"
        path.write_text(yaml.safe_dump(conf))
        proc = Proc(["cloud", "ingest", "--config", str(path)], self.tmp / f"{name}.log", env).start()
        self.procs.append(proc)
        if wait:
            wait_until(lambda: "subscribed" in proc.tail(), 30, f"{name} to subscribe")
        return proc

    def agent(self, node: str = NODE, **overrides: Any) -> Proc:
        conf: dict[str, Any] = {
            "node_id": node,
            "district": DISTRICT,
            "data_dir": str(self.tmp / node),
            "uplink": {
                "host": "127.0.0.1",
                "port": self.proxy.port,
                "tls": tls_dict(self.identity(node)),
                "backoff_base_s": 0.1,
                "backoff_cap_s": 1.0,
                "batch_max_records": 50,
                "store_ack_timeout_s": 2.0,
                "store_ack_timeout_cap_s": 4.0,
            },
            "outbox": {"min_free_disk_bytes": 0},
            "heartbeat": {"interval_s": 3600.0},
        }
        for key, value in overrides.items():
            conf[key] = {**conf[key], **value} if isinstance(conf.get(key), dict) else value
        path = self.tmp / f"{node}.yaml"
        path.write_text(yaml.safe_dump(conf))
        proc = Proc(["edge", "run", "--config", str(path)], self.tmp / f"{node}.log").start()
        self.procs.append(proc)
        return proc

    def local_bus(self, node: str = NODE) -> dict[str, Any]:
        """The agent's `local_bus` section for the node-local broker (its identity is the node's)."""
        assert self.local is not None
        return {
            "host": "127.0.0.1",
            "port": self.local.port,
            "client_id": node,
            "tls": tls_dict(self.identity(node)),
        }

    def close(self) -> None:
        for p in self.procs:
            p.kill()
        self.proxy.stop()
        self.cloud.kill()
        if self.local:
            self.local.kill()
