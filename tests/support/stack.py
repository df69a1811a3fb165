"""Process-level harness for end-to-end tests: a cloud broker (mTLS), ingest and edge agents
as real subprocesses (so they can be SIGKILLed), a TCP proxy for link cuts, and a local broker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from cityedge.deploy.mosquitto import MosquittoConfig
from cityedge.pki import CertificateAuthority, IssuedIdentity
from cityedge.sim.brokers import MosquittoProcess, free_port
from cityedge.sim.proxy import TcpProxy

from .services import require_mosquitto

DISTRICT = "corridor-a"


def tls_dict(ident: IssuedIdentity) -> dict[str, str]:
    return {"cafile": str(ident.ca_path), "certfile": str(ident.cert_path), "keyfile": str(ident.key_path)}


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


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

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
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


@dataclass
class Stack:
    tmp: Path
    db_url: str
    ca: CertificateAuthority = field(init=False)
    cloud: MosquittoProcess = field(init=False)
    local: MosquittoProcess | None = None
    proxy: TcpProxy = field(init=False)
    procs: list[Proc] = field(default_factory=list)

    def __post_init__(self) -> None:
        require_mosquitto()
        now = datetime.now(UTC)
        self.ca = CertificateAuthority.create("cityedge e2e root", now=now)
        self.certs = self.tmp / "certs"
        self.server = self.ca.issue_to_directory(
            "broker", self.certs, now=now, server_auth=True, extra_sans=("localhost", "127.0.0.1")
        )
        cfg = MosquittoConfig(
            data_dir=self.tmp / "cloud-data",
            tls_port=free_port(),
            cafile=self.server.ca_path,
            certfile=self.server.cert_path,
            keyfile=self.server.key_path,
        )
        self.cloud = MosquittoProcess(cfg, self.tmp / "cloud-broker").start()
        self.proxy = TcpProxy(self.cloud.port).start()

    def identity(self, name: str) -> IssuedIdentity:
        return self.ca.issue_to_directory(name, self.certs, now=datetime.now(UTC), lifetime=timedelta(days=1))

    def start_local_broker(self) -> MosquittoProcess:
        cfg = MosquittoConfig(
            data_dir=self.tmp / "local-data",
            tls_port=free_port(),
            cafile=self.server.ca_path,
            certfile=self.server.cert_path,
            keyfile=self.server.key_path,
        )
        self.local = MosquittoProcess(cfg, self.tmp / "local-broker").start()
        return self.local

    def ingest(
        self, env: dict[str, str] | None = None, name: str = "ingest", share_group: str | None = None
    ) -> Proc:
        ident = self.identity(name)
        conf = {
            "host": "127.0.0.1",
            "port": self.cloud.port,
            "tls": tls_dict(ident),
            "client_id": name,
            "share_group": share_group,
            "database": self.db_url,
        }
        path = self.tmp / f"{name}.yaml"
        path.write_text(yaml.safe_dump(conf))
        proc = Proc(["cloud", "ingest", "--config", str(path)], self.tmp / f"{name}.log", env).start()
        self.procs.append(proc)
        # Ingest's subscription must exist before nodes publish: a broker drops messages
        # that match no subscription (in production ingest is deployed first).
        wait_until(lambda: "subscribed" in proc.tail(), 30, f"{name} to subscribe")
        return proc

    def agent(self, node: str, **overrides: Any) -> Proc:
        ident = self.identity(node)
        conf: dict[str, Any] = {
            "node_id": node,
            "district": DISTRICT,
            "data_dir": str(self.tmp / node),
            "uplink": {
                "host": "127.0.0.1",
                "port": self.proxy.port,
                "tls": tls_dict(ident),
                "backoff_base_s": 0.1,
                "backoff_cap_s": 1.0,
                "batch_max_records": 50,
            },
            "heartbeat": {"interval_s": 3600.0},
        }
        conf.update(overrides)
        path = self.tmp / f"{node}.yaml"
        path.write_text(yaml.safe_dump(conf))
        proc = Proc(["edge", "run", "--config", str(path)], self.tmp / f"{node}.log").start()
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for p in self.procs:
            p.kill()
        self.proxy.stop()
        self.cloud.kill()
        if self.local:
            self.local.kill()
