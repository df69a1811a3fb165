"""`down/ota` notices from MQTT into the supervisor's queue.

A payload that is not an `OtaNotice` is logged and dropped: a notice only says "look now",
and everything installed is still verified by TUF, so a forged notice cannot do harm.
"""

from __future__ import annotations

import logging
import queue
from typing import Any

import msgspec
import paho.mqtt.client as mqtt

from cityedge.edge.mqtt import make_client, tls_context
from cityedge.edge.ota.config import NotifyConfig
from cityedge.protocol.release import OtaNotice
from cityedge.protocol.topics import down_topic

__all__ = ["OtaListener"]

log = logging.getLogger(__name__)


class OtaListener:
    def __init__(
        self, cfg: NotifyConfig, district: str, node: str, notices: queue.Queue[OtaNotice | None]
    ) -> None:
        self.topic = down_topic(district, node, "ota")
        self.notices = notices
        self.cfg = cfg
        self.client = make_client(cfg.client_id or f"{node}-ota", "3.1.1", persistent=False)
        if cfg.tls is not None:
            self.client.tls_set_context(tls_context(cfg.tls.cafile, cfg.tls.certfile, cfg.tls.keyfile))
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 60)

    def start(self) -> OtaListener:
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not reason.is_failure:
            client.subscribe(self.topic, qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            notice = msgspec.json.decode(msg.payload, type=OtaNotice)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("ota: dropped a notice on %s that is not an OtaNotice: %s", msg.topic, exc)
            return
        self.notices.put(notice)
