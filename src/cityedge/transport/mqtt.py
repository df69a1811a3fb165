"""paho-mqtt 2.x clients as cityedge makes them: MQTT 5 when the broker offers it, 3.1.1
otherwise (the wire contract needs nothing MQTT 5 alone has, so the embedded broker works),
persistent sessions, and the choice of protocol while a link looks for one that connects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

__all__ = ["MqttVersion", "ProtocolChoice", "Will", "connect_persistent", "make_client", "next_version"]

MqttVersion = Literal["5", "3.1.1"]
ProtocolChoice = Literal["auto", "5", "3.1.1"]


@dataclass(frozen=True)
class Will:
    """The broker publishes this when the client vanishes without a DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


def make_client(
    client_id: str, version: MqttVersion, *, persistent: bool, manual_ack: bool = False
) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5 if version == "5" else MQTTProtocolVersion.MQTTv311,
        clean_session=None if version == "5" else not persistent,
        reconnect_on_failure=False,
        manual_ack=manual_ack,
    )
    client.connect_timeout = 5.0
    # A callback that raises must not end paho's network thread; ours are guarded anyway.
    client.suppress_exceptions = True
    return client


def connect_persistent(
    client: mqtt.Client,
    host: str,
    port: int,
    keepalive_s: int,
    version: MqttVersion,
    session_expiry_s: int,
    *,
    persistent: bool = True,
) -> None:
    """Connect, resuming the client's session when `persistent` (MQTT 5 session expiry, or
    3.1.1 clean_session=False as set by `make_client`)."""
    props = None
    if version == "5":
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = session_expiry_s if persistent else 0
    client.connect(
        host,
        port,
        keepalive=keepalive_s,
        clean_start=(not persistent) if version == "5" else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
        properties=props,
    )


def next_version(configured: ProtocolChoice, current: MqttVersion, connected_once: bool) -> MqttVersion:
    """In "auto" mode, alternate until one version connects, then keep it."""
    if configured != "auto":
        return configured
    if connected_once:
        return current
    return "3.1.1" if current == "5" else "5"
