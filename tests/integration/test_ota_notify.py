"""The control plane's down/ota notifier and the node's listener, over a real Mosquitto."""

from __future__ import annotations

import queue
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cityedge.cloud.releases.notify import mqtt_notifier
from cityedge.edge.ota.config import NotifyConfig
from cityedge.edge.ota.listener import OtaListener
from cityedge.protocol.release import OtaNotice
from cityedge.sim.brokers import MosquittoProcess


def test_the_control_planes_notifier_reaches_the_nodes_listener(plain_broker: MosquittoProcess) -> None:
    notices: queue.Queue[OtaNotice | None] = queue.Queue()
    listener = OtaListener(NotifyConfig(port=plain_broker.port), "corridor-a", "node-3", notices).start()
    cloud = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="control-plane")
    cloud.connect("127.0.0.1", plain_broker.port)
    cloud.loop_start()
    try:
        notify = mqtt_notifier(cloud, "corridor-a")
        deadline = time.monotonic() + 20
        got = None
        while got is None and time.monotonic() < deadline:
            notify("node-3", OtaNotice(action="rollback"))
            try:
                got = notices.get(timeout=0.5)
            except queue.Empty:
                continue
        assert got == OtaNotice(action="rollback")
    finally:
        cloud.disconnect()
        cloud.loop_stop()
        listener.stop()
