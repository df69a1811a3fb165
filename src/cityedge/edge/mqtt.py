"""Small paho-mqtt 2.x helpers shared by the node's MQTT clients (uplink, local bus).

MQTT 5 when the broker offers it, 3.1.1 otherwise: the wire contract needs nothing that
only MQTT 5 has, so the embedded 3.1.1 broker works too.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cityedge.transport import TlsFiles, client_tls_context

__all__ = ["connect_persistent", "make_client", "next_protocol", "tls_context"]

Protocol = Literal["5", "3.1.1"]


def tls_context(cafile: Path, certfile: Path, keyfile: Path) -> ssl.SSLContext:
    """Client context: verify the broker against our CA, present our certificate, TLS 1.2+."""
    return client_tls_context(TlsFiles(cafile=cafile, certfile=certfile, keyfile=keyfile), "mqtt tls")


def make_client(
    client_id: str, protocol: Protocol, *, persistent: bool, manual_ack: bool = False
) -> mqtt.Client:
    version = MQTTProtocolVersion.MQTTv5 if protocol == "5" else MQTTProtocolVersion.MQTTv311
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=version,
        clean_session=None if protocol == "5" else not persistent,
        reconnect_on_failure=False,
        manual_ack=manual_ack,
    )
    client.connect_timeout = 5.0
    return client


def connect_persistent(
    client: mqtt.Client, host: str, port: int, keepalive_s: int, protocol: Protocol, session_expiry_s: int
) -> None:
    """Connect resuming the client's persistent session (MQTT 5 session expiry, or 3.1.1
    clean_session=False as set by `make_client`)."""
    props = None
    if protocol == "5":
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = session_expiry_s
    client.connect(
        host,
        port,
        keepalive=keepalive_s,
        clean_start=False if protocol == "5" else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
        properties=props,
    )


def next_protocol(configured: str, current: Protocol, connected_once: bool) -> Protocol:
    """In "auto" mode, alternate until one protocol connects, then keep it."""
    if configured in ("5", "3.1.1"):
        return "5" if configured == "5" else "3.1.1"
    if connected_once:
        return current
    return "3.1.1" if current == "5" else "5"
