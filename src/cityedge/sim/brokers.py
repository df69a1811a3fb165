"""Run real Mosquitto processes for tests, benchmarks and the one-machine pilot.

A `MosquittoProcess` owns one broker: its config file, data directory and port. It can be
stopped gracefully (sessions persisted), killed, and restarted on the same port.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from cityedge.deploy.mosquitto import MosquittoConfig, render_mosquitto_conf
from cityedge.protocol.errors import CityEdgeError

__all__ = ["MosquittoProcess", "free_port", "mosquitto_binary", "wait_port"]


def mosquitto_binary() -> str | None:
    """Path of the mosquitto binary, or None when it is not installed."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise CityEdgeError(f"nothing listens on {host}:{port} after {timeout}s")


class MosquittoProcess:
    """One Mosquitto broker process with a rendered config."""

    def __init__(self, cfg: MosquittoConfig, workdir: Path) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise CityEdgeError("mosquitto is not installed (apt-get install mosquitto)")
        self.binary = binary
        self.cfg = cfg
        self.workdir = workdir
        self.conf_path = workdir / "mosquitto.conf"
        self.log_path = workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        port = self.cfg.tls_port if self.cfg.tls_port is not None else self.cfg.plain_port
        assert port is not None
        return port

    def start(self) -> MosquittoProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text(render_mosquitto_conf(self.cfg))
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf_path)], stdout=log, stderr=log)
        log.close()
        try:
            for port in (self.cfg.tls_port, self.cfg.plain_port):
                if port is not None:
                    wait_port(port)
        except CityEdgeError:
            self.kill()
            raise CityEdgeError(f"mosquitto did not start; log:\n{self.log_tail()}") from None
        return self

    def stop(self) -> None:
        """Graceful stop: Mosquitto writes its persistence file on SIGTERM."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    def reload(self) -> None:
        """SIGHUP: re-read the config (ACL, CRL, certificates for new connections)."""
        if self.proc:
            self.proc.send_signal(signal.SIGHUP)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> MosquittoProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
