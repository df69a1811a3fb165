"""Serve the API and the dashboard in-process, on a free port, for a pilot or a test:

    from cityedge.cloud.web.server import start_dashboard
    dash = start_dashboard(plane, tokens=["an-operator-token"])
    print(dash.url, dash.login_hint)   # ... later: dash.stop()

Plain HTTP on 127.0.0.1 (the production API serves HTTPS: `cityedge api serve`). The fleet
monitor runs beside it unless one is already running against the same store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cityedge.cloud.api.server import ApiServer, bind
from cityedge.protocol.errors import ConfigError

if TYPE_CHECKING:
    from cityedge.cloud.app import ControlPlane
    from cityedge.cloud.fleet.monitor import FleetMonitor

__all__ = ["Dashboard", "start_dashboard"]


@dataclass
class Dashboard:
    url: str
    server: ApiServer
    thread: threading.Thread
    monitor: FleetMonitor | None

    @property
    def login_hint(self) -> str:
        return f"open {self.url} and log in with an API token (the operator token works)"

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        if self.monitor is not None:
            self.monitor.stop()


def start_dashboard(
    plane: ControlPlane,
    *,
    tokens: Iterable[str] = (),
    host: str = "127.0.0.1",
    port: int = 0,
    monitor: bool | FleetMonitor = True,
    timeout: float = 15.0,
) -> Dashboard:
    """Start the API + dashboard (and the fleet monitor) in this process; returns once it answers.

    `monitor`: True starts a fleet monitor (stopped with the dashboard); a `FleetMonitor` you
    run yourself is used as it is; False serves what the store holds (another process monitors)."""
    import uvicorn

    from cityedge.cloud.fleet.monitor import FleetMonitor

    given = monitor if isinstance(monitor, FleetMonitor) else None
    fleet = plane.fleet_monitor().start() if monitor is True else None
    app = plane.api_app(tokens, given or fleet)
    sock = bind(host, port)
    actual = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
    started = threading.Event()
    server = ApiServer(config, on_started=started.set)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="dashboard", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not started.wait(0.05):
        if not thread.is_alive() or time.monotonic() > deadline:
            if fleet is not None:
                fleet.stop()
            raise ConfigError(f"dashboard: the server on {host}:{actual} did not start")
    return Dashboard(f"http://{host}:{actual}/", server, thread, fleet)
