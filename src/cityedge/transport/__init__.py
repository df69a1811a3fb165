"""The one network layer: TLS, backoff, paho clients and the supervised link that the uplink,
the local bus, ingest (and its acknowledgements) and the sensor client all use.

Edge and cloud packages do not import each other; both import this.
"""

from cityedge.transport.backoff import TokenBucket, full_jitter_delay
from cityedge.transport.link import MqttLink
from cityedge.transport.mqtt import MqttVersion, ProtocolChoice, Will, connect_persistent, make_client
from cityedge.transport.session import LinkHandler, LinkSettings, Session
from cityedge.transport.tls import (
    TlsFailure,
    TlsFiles,
    certificate_not_after,
    classify_tls_failure,
    client_tls_context,
)

__all__ = [
    "LinkHandler",
    "LinkSettings",
    "MqttLink",
    "MqttVersion",
    "ProtocolChoice",
    "Session",
    "TlsFailure",
    "TlsFiles",
    "TokenBucket",
    "Will",
    "certificate_not_after",
    "classify_tls_failure",
    "client_tls_context",
    "connect_persistent",
    "full_jitter_delay",
    "make_client",
]
