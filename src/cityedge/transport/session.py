"""What a link and its owner share: settings, one connection's session, the owner's hooks,
and the links' Prometheus metrics (one set per registry, labelled by link)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode
from prometheus_client import CollectorRegistry, Counter, Gauge

from cityedge.protocol.errors import ConfigError
from cityedge.transport.mqtt import MqttVersion, ProtocolChoice, Will

__all__ = ["LinkHandler", "LinkMetrics", "LinkSettings", "Session"]


@dataclass(frozen=True)
class LinkSettings:
    name: str  # for logs and metrics: "uplink", "localbus", "ingest", ...
    host: str
    port: int
    client_id: str
    protocol: ProtocolChoice = "auto"
    keepalive_s: int = 30
    persistent: bool = True
    session_expiry_s: int = 7 * 24 * 3600
    manual_ack: bool = False
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 60.0
    connect_timeout_s: float = 10.0
    max_inflight: int = 20
    # The last will; a callable is asked once per connection (e.g. a new record id each time).
    will: Will | Callable[[], Will] | None = None

    def __post_init__(self) -> None:
        if not 0 < self.backoff_base_s <= self.backoff_cap_s:
            raise ConfigError(
                f"{self.name}: backoff needs 0 < backoff_base_s <= backoff_cap_s, "
                f"got {self.backoff_base_s} and {self.backoff_cap_s}"
            )


class Session:
    """One connection's client; `alive` turns False when it drops. Thread-safe (paho's
    threaded interface): publish, subscribe and ack may be called from any thread."""

    def __init__(self, client: mqtt.Client, generation: int, version: MqttVersion) -> None:
        self.client = client
        self.generation = generation
        self.version = version
        self.alive = True

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> int | None:
        """The message id, or None when paho could not queue it (the link is going down)."""
        if not self.alive:
            return None
        info = self.client.publish(topic, payload, qos=qos)
        return info.mid if info.rc == mqtt.MQTT_ERR_SUCCESS else None

    def subscribe(self, topic: str, qos: int = 1) -> None:
        self.client.subscribe(topic, qos=qos)

    def ack(self, mid: int, qos: int) -> bool:
        """Acknowledge a message received on this very connection (a message id means
        nothing on the next one: the broker redelivers there instead)."""
        return self.alive and self.client.ack(mid, qos) == mqtt.MQTT_ERR_SUCCESS


class LinkHandler:
    """What a link tells its owner; every hook is optional and runs guarded."""

    def on_connected(self, session: Session, session_present: bool) -> None:
        return None

    def on_message(self, session: Session, msg: mqtt.MQTTMessage) -> None:
        return None

    def on_published(self, session: Session, mid: int, reason: ReasonCode) -> None:
        return None

    def on_subscribed(self, session: Session, reasons: list[ReasonCode]) -> None:
        return None

    def on_disconnected(self, session: Session) -> None:
        return None


class LinkMetrics:
    _by_registry: dict[int, LinkMetrics] = {}
    _lock = threading.Lock()

    def __init__(self, registry: CollectorRegistry) -> None:
        self.connected = Gauge(
            "cityedge_mqtt_connected", "1 while the link is connected", ["link"], registry=registry
        )
        self.connects = Counter("cityedge_mqtt_connects", "Connections made", ["link"], registry=registry)
        self.failures = Counter(
            "cityedge_mqtt_connect_failures", "Connection attempts that failed, by cause", ["link", "cause"],
            registry=registry,
        )  # fmt: skip
        self.callback_errors = Counter(
            "cityedge_mqtt_callback_errors", "Exceptions caught in a link's callbacks", ["link", "callback"],
            registry=registry,
        )  # fmt: skip

    @classmethod
    def of(cls, registry: CollectorRegistry) -> LinkMetrics:
        with cls._lock:
            found = cls._by_registry.get(id(registry))
            if found is None:
                found = cls._by_registry[id(registry)] = cls(registry)
            return found
