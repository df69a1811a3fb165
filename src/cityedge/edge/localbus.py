"""The node's local bus: sensor messages in (into the outbox), local decisions out.

Messages are acknowledged to the local broker only after the outbox commit (paho manual
acks), so a crash between the two loses nothing: the broker redelivers, and a sensor
message that carries its own record id is then recognised as a duplicate by the outbox.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
from prometheus_client import CollectorRegistry, Counter

from cityedge.edge.config import LocalBusConfig
from cityedge.edge.mqtt import Protocol, connect_persistent, make_client, next_protocol, tls_context
from cityedge.protocol.envelope import Envelope
from cityedge.protocol.errors import ProtocolError
from cityedge.protocol.ids import uuid7
from cityedge.protocol.topics import parse_local_sensor_topic

__all__ = ["LocalBus", "SensorMessage", "sensor_envelope"]

log = logging.getLogger(__name__)


class SensorMessage(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """What a sensor publishes locally. `id` (a UUID) makes redelivery idempotent."""

    kind: str
    body: dict[str, Any]
    id: uuid.UUID | None = None
    ts: datetime | None = None


_decoder = msgspec.json.Decoder(SensorMessage)


def sensor_envelope(
    topic: str, payload: bytes, node_id: str, versions: dict[str, str], now: datetime
) -> Envelope:
    """Turn one local sensor message into an envelope; raises ProtocolError naming the problem."""
    sensor, stream = parse_local_sensor_topic(topic)
    try:
        msg = _decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProtocolError(f"sensor {sensor}: bad message on {topic}: {exc}") from exc
    ts = msg.ts if msg.ts is not None else now
    if ts.tzinfo is None:
        raise ProtocolError(f"sensor {sensor}: ts must carry a UTC offset")
    record_id = str(msg.id) if msg.id is not None else str(uuid7(int(now.timestamp() * 1000)))
    try:
        # convert (not the constructor) so the envelope's field constraints are checked
        return msgspec.convert(
            {
                "id": record_id,
                "node": node_id,
                "stream": stream,
                "kind": msg.kind,
                "ts": ts,
                "body": {"sensor": sensor, **msg.body},
                "ver": versions,
            },
            Envelope,
        )
    except (msgspec.ValidationError, ValueError) as exc:
        raise ProtocolError(f"sensor {sensor}: invalid record: {exc}") from exc


class LocalBus:
    """A persistent-session subscriber on the node's broker; `commit` returns after the outbox commit."""

    def __init__(
        self,
        config: LocalBusConfig,
        node_id: str,
        versions: dict[str, str],
        commit: Callable[[Envelope], None],
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.config = config
        self.node_id = node_id
        self.versions = versions
        self.commit = commit
        reg = registry or CollectorRegistry()
        self._taken = Counter(
            "cityedge_localbus_messages", "Sensor messages committed to the outbox", registry=reg
        )
        self._bad = Counter(
            "cityedge_localbus_rejected", "Sensor messages refused (bad topic or payload)", registry=reg
        )
        self._protocol: Protocol = "3.1.1" if config.protocol == "3.1.1" else "5"
        self._client: mqtt.Client | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()
        self.rejected = 0

    def start(self) -> LocalBus:
        self._thread = threading.Thread(target=self._run, name="localbus", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)

    def publish(self, topic: str, payload: bytes) -> bool:
        """Publish a local decision (QoS 1); False when the local broker is not connected."""
        client = self._client
        if client is None or not self.connected.is_set():
            return False
        return client.publish(topic, payload, qos=1).rc == mqtt.MQTT_ERR_SUCCESS

    def _run(self) -> None:
        connected_once = False
        while not self._stop.is_set():
            client = make_client(self.config.client_id, self._protocol, persistent=True, manual_ack=True)
            if self.config.tls is not None:
                t = self.config.tls
                client.tls_set_context(tls_context(t.cafile, t.certfile, t.keyfile))
            client.on_connect = self._on_connect
            client.on_message = self._on_message
            client.on_disconnect = lambda *a: self.connected.clear()
            try:
                cfg = self.config
                connect_persistent(client, cfg.host, cfg.port, cfg.keepalive_s, self._protocol, 7 * 24 * 3600)
                self._client = client
                client.loop_start()
                if self.connected.wait(5.0):
                    connected_once = True
                    while self.connected.is_set() and not self._stop.wait(0.2):
                        pass
            except OSError as exc:
                log.warning("localbus: cannot connect to %s:%s: %s", self.config.host, self.config.port, exc)
            finally:
                self._client = None
                self.connected.clear()
                try:
                    client.disconnect()
                finally:
                    client.loop_stop()
            if not connected_once:
                self._protocol = next_protocol(self.config.protocol, self._protocol, connected_once)
            self._stop.wait(0.5)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.warning("localbus: refused: %s", reason)
            return
        client.subscribe(self.config.sensor_filter, qos=1)
        self.connected.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            env = sensor_envelope(
                msg.topic, bytes(msg.payload), self.node_id, self.versions, datetime.now(UTC)
            )
        except ProtocolError as exc:
            # A bad message is dropped (and counted) rather than redelivered forever.
            self.rejected += 1
            self._bad.inc()
            log.warning("localbus: %s", exc)
            client.ack(msg.mid, msg.qos)
            return
        try:
            self.commit(env)
        except Exception:
            # Not acknowledged: the broker redelivers it after we reconnect.
            log.exception("localbus: outbox commit failed; message left unacknowledged")
            client.disconnect()
            return
        self._taken.inc()
        client.ack(msg.mid, msg.qos)
