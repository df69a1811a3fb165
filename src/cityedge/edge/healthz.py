"""The agent's health endpoint: `/healthz` (liveness), `/readyz` (readiness) and `/metrics`,
for an orchestrator's probes and a Prometheus scrape on one port.

Live: every thread the agent started is still running (a dead one is a bug a restart cures;
the outbox keeps every record across it). Ready: the outbox is open and the uplink is
connected, or has been trying for less than `uplink_grace_s` (it reconnects with backoff; a
short outage is normal, a long one means this node delivers nothing). `judge` is the pure
decision; `HealthServer` is the small HTTP adapter around it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from cityedge.edge.config import HealthConfig
from cityedge.protocol.errors import CityEdgeError, ConfigError

__all__ = ["WATCHED", "Checks", "HealthServer", "Verdict", "judge", "start_health"]

log = logging.getLogger(__name__)

# The agent's long-lived threads, by name (prefix). Not watched: paho's network threads (a
# new one per connection), HTTP request threads, synthetic load (it may end at its limit).
WATCHED = (
    "group-commit", "uplink-sender", "link-", "heartbeat", "ota-spool", "renewer", "retention", "camera-",
)  # fmt: skip


@dataclass(frozen=True)
class Checks:
    """What the probes look at, at one moment."""

    threads: Mapping[str, bool]  # thread name -> alive
    outbox_open: bool
    uplink_connected: bool
    seconds_since_uplink: float  # since it was last seen connected (or since start)


@dataclass(frozen=True)
class Verdict:
    live: bool
    ready: bool
    reasons: list[str] = field(default_factory=list)

    def body(self, which: str) -> bytes:
        ok = self.live if which == "live" else self.ready
        return json.dumps({"status": "ok" if ok else "failing", "reasons": self.reasons}).encode()


def judge(checks: Checks, uplink_grace_s: float) -> Verdict:
    """The pure verdict: live unless a thread died; ready when live, the outbox is open and the
    uplink is connected or still within its grace."""
    dead = sorted(name for name, alive in checks.threads.items() if not alive)
    reasons = [f"thread {name} is not running" for name in dead]
    if not checks.outbox_open:
        reasons.append("the outbox is not open")
    if not checks.uplink_connected and checks.seconds_since_uplink > uplink_grace_s:
        reasons.append(
            f"the uplink has not been connected for {checks.seconds_since_uplink:.0f}s "
            f"(grace {uplink_grace_s:.0f}s)"
        )
    return Verdict(live=not dead, ready=not reasons, reasons=reasons)


class AgentView(Protocol):
    """What the health endpoint reads from the agent (`EdgeAgent` is one)."""

    registry: CollectorRegistry

    def outbox_open(self) -> bool: ...

    def uplink_connected(self) -> bool: ...


class HealthServer:
    """Serves the verdict over HTTP; `stop()` closes the socket."""

    def __init__(
        self,
        config: HealthConfig,
        agent: AgentView,
        threads: Iterable[threading.Thread],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._agent = agent
        self._threads = list(threads)
        self._clock = clock
        self._last_up = clock()
        try:
            self._server = ThreadingHTTPServer((config.host, config.port), _handler(self))
        except OSError as exc:
            raise ConfigError(
                f"health.port {config.port}: cannot listen on {config.host}:{config.port}: {exc.strerror}"
            ) from None
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="health", daemon=True)

    def start(self) -> HealthServer:
        self._thread.start()
        log.info("agent: health on http://%s:%d/healthz and /readyz", self.config.host, self.port)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def verdict(self) -> Verdict:
        now, connected = self._clock(), self._agent.uplink_connected()
        if connected:
            self._last_up = now
        checks = Checks(
            threads={t.name: t.is_alive() for t in self._threads},
            outbox_open=self._agent.outbox_open(),
            uplink_connected=connected,
            seconds_since_uplink=now - self._last_up,
        )
        return judge(checks, self.config.uplink_grace_s)

    def metrics(self) -> bytes:
        return generate_latest(self._agent.registry)


def _handler(health: HealthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, health.metrics(), CONTENT_TYPE_LATEST)
                return
            if path not in ("/healthz", "/readyz"):
                self._send(404, b'{"status":"unknown path"}', "application/json")
                return
            try:
                verdict = health.verdict()
            except Exception as exc:  # a probe must answer, never hang or crash the server
                verdict = Verdict(False, False, [f"health check failed: {exc}"])
            which = "live" if path == "/healthz" else "ready"
            ok = verdict.live if which == "live" else verdict.ready
            self._send(200 if ok else 503, verdict.body(which), "application/json")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: quiet
            log.debug("health: " + format, *args)

    return Handler


def start_health(
    config: HealthConfig | None, agent: AgentView, before: set[threading.Thread]
) -> HealthServer | None:
    """Watch the agent's threads (those `WATCHED` started since `before`) and serve the probes."""
    if config is None:
        return None
    started = [t for t in threading.enumerate() if t not in before and t.name.startswith(WATCHED)]
    if not started:
        raise CityEdgeError("health: the agent started no threads to watch")
    return HealthServer(config, agent, started).start()
