"""Tell a node to look for a release: an `OtaNotice` on its `down/ota` topic (QoS 1).

The notice carries no authority; the node installs only what TUF verifies. The client is
the control plane's own MQTT connection (a service identity allowed to write `down/`).
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import paho.mqtt.client as mqtt

from cityedge.protocol.errors import ReleaseError
from cityedge.protocol.release import OtaNotice
from cityedge.protocol.topics import down_topic

__all__ = ["mqtt_notifier"]


def mqtt_notifier(
    client: mqtt.Client, district: str, timeout_s: float = 10.0
) -> Callable[[str, OtaNotice], None]:
    """A `notify(node, notice)` for `RolloutDriver` and `publish_and_roll_out`."""

    def notify(node: str, notice: OtaNotice) -> None:
        info = client.publish(down_topic(district, node, "ota"), msgspec.json.encode(notice), qos=1)
        info.wait_for_publish(timeout_s)
        if not info.is_published():
            raise ReleaseError(f"notice to {node} not acknowledged by the broker within {timeout_s:g} s")

    return notify
