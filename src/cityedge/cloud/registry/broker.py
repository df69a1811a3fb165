"""Cut a revoked device's live broker session: reload the CRL, then kick the session.

Mosquitto 2.0 checks the CRL only at the TLS handshake and keeps established sessions, so
after writing the CRL we send SIGHUP (new handshakes see it) and ask the dynamic-security
plugin to disable a client of that username, which disconnects it at once.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cityedge.protocol.errors import CityEdgeError

__all__ = ["DynsecEndpoint", "DynsecRevoker", "kick_commands", "pid_file_reload"]

log = logging.getLogger(__name__)
CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"


@dataclass(frozen=True)
class DynsecEndpoint:
    """A broker's dynamic-security control topic, reached as the `revoker` service identity."""

    host: str
    port: int
    cafile: Path
    certfile: Path
    keyfile: Path


def pid_file_reload(pid_file: Path) -> Callable[[], None]:
    """SIGHUP the broker whose pid Mosquitto wrote to `pid_file` (read at each reload)."""

    def reload() -> None:
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, signal.SIGHUP)
        except (OSError, ValueError) as exc:
            raise CityEdgeError(
                f"cannot reload the broker through {pid_file}: {exc} (is Mosquitto running with "
                f"`pid_file {pid_file}` in its config?)"
            ) from None
        log.info("reloaded the broker (pid %s from %s)", pid, pid_file)

    return reload


def kick_commands(username: str) -> dict[str, Any]:
    # create (so disable has a target), disable (kicks), delete (no state left behind, so a
    # re-enrolled device with a fresh certificate is governed by the ACL file alone).
    names = ("createClient", "disableClient", "deleteClient")
    return {"commands": [{"command": name, "username": username} for name in names]}


class DynsecRevoker:
    """Disconnects devices through each broker's $CONTROL topic; `reload` runs first."""

    def __init__(
        self,
        brokers: Sequence[DynsecEndpoint],
        reload: Callable[[], None] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.brokers = tuple(brokers)
        self.reload = reload
        self.timeout = timeout

    def __call__(self, device_id: str) -> None:
        if self.reload is not None:
            self.reload()
        for broker in self.brokers:
            self._kick(broker, device_id)

    def _kick(self, broker: DynsecEndpoint, username: str) -> None:
        done = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        ctx = ssl.create_default_context(cafile=str(broker.cafile))
        ctx.load_cert_chain(str(broker.certfile), str(broker.keyfile))
        client.tls_set_context(ctx)

        def on_connect(c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
            if not rc.is_failure:
                c.subscribe(f"{CONTROL_TOPIC}/response", qos=1)

        def on_subscribe(c: mqtt.Client, *_: Any) -> None:
            c.publish(CONTROL_TOPIC, json.dumps(kick_commands(username)), qos=1)

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = lambda *_: done.set()
        try:
            client.connect(broker.host, broker.port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            raise CityEdgeError(
                f"cannot reach broker {broker.host}:{broker.port} to cut {username}: {exc}"
            ) from exc
        client.loop_start()
        try:
            if not done.wait(self.timeout):
                raise CityEdgeError(f"broker {broker.host}:{broker.port} did not confirm cutting {username}")
        finally:
            client.disconnect()
            client.loop_stop()
        log.info("cut %s's session on %s:%s", username, broker.host, broker.port)
