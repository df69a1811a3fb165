"""The embedded MQTT broker for machines without Mosquitto: iotcore (rumqttd, compiled, from PyPI).

iotcore runs rumqttd in a child process it owns (started and stopped from here). It keeps
persistent sessions (MQTT 3.1.1 `clean_session=False`) and queues QoS 1 messages for a
subscriber that is away, which the data plane relies on; amqtt 0.12 did not (docs/pilot.md
has the measurements). Its listener speaks MQTT 3.1.1 with TLS from the pilot's CA; rumqttd
does not require a client certificate, so the embedded broker authenticates itself, not its
clients: Mosquitto remains the production broker and everything about client identity is
tested against it.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from cityedge.sim.brokers import free_port, wait_port

__all__ = ["IotcoreBroker"]

log = logging.getLogger(__name__)

_CONFIG = """\
# rendered by cityedge for the embedded pilot broker (rumqttd via iotcore)
id = 0

[router]
id = 0
max_connections = 1000
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10

[v4.1]
name = "cityedge-pilot"
listen = "127.0.0.1:{port}"
next_connection_delay_ms = 1
{tls}
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = {max_payload}
    max_inflight_count = 100
    dynamic_filters = true
"""

_TLS = """    [v4.1.tls]
    capath = "{ca}"
    certpath = "{cert}"
    keypath = "{key}"
"""


class IotcoreBroker:
    """One rumqttd broker on loopback; TLS when given a server certificate, plain TCP otherwise."""

    protocol = "3.1.1"

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        port: int | None = None,
        tls: tuple[Path, Path, Path] | None = None,  # (CA chain, server certificate, server key)
        max_payload: int = 1024 * 1024,
    ) -> None:
        self.port = port or free_port()
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="cityedge-embedded-"))
        self.tls = tls
        self.max_payload = max_payload
        self._broker: Any = None

    def config_text(self) -> str:
        tls = ""
        if self.tls is not None:
            ca, cert, key = self.tls
            tls = _TLS.format(ca=ca, cert=cert, key=key)
        return _CONFIG.format(port=self.port, tls=tls, max_payload=self.max_payload)

    def start(self) -> IotcoreBroker:
        from iotcore import Broker

        self.workdir.mkdir(parents=True, exist_ok=True)
        path = self.workdir / "rumqttd.toml"
        path.write_text(self.config_text())
        self._broker = Broker(config_path=str(path)).start(timeout=15.0)
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self._broker is not None:
            self._broker.stop()
            self._broker = None

    def __enter__(self) -> IotcoreBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
