"""`down/ota` notices from MQTT into the supervisor's queue.

A payload that is not an `OtaNotice` is logged and dropped: a notice only says "look now",
and everything installed is still verified by TUF, so a forged notice cannot do harm.
"""

from __future__ import annotations

import logging
import queue

import msgspec
import paho.mqtt.client as mqtt

from cityedge.edge.ota.config import NotifyConfig
from cityedge.protocol.release import OtaNotice
from cityedge.protocol.topics import down_topic
from cityedge.transport import LinkHandler, LinkSettings, MqttLink, Session

__all__ = ["OtaListener"]

log = logging.getLogger(__name__)


class OtaListener(LinkHandler):
    def __init__(
        self, cfg: NotifyConfig, district: str, node: str, notices: queue.Queue[OtaNotice | None]
    ) -> None:
        self.topic = down_topic(district, node, "ota")
        self.notices = notices
        self.cfg = cfg
        settings = LinkSettings(
            name="ota-notices", host=cfg.host, port=cfg.port, client_id=cfg.client_id or f"{node}-ota",
            protocol=cfg.protocol, keepalive_s=cfg.keepalive_s, persistent=False, backoff_base_s=1.0,
            backoff_cap_s=60.0,
        )  # fmt: skip
        self.link = MqttLink(settings, self, tls=cfg.tls)

    def start(self) -> OtaListener:
        self.link.start()
        return self

    def stop(self) -> None:
        self.link.stop()

    def on_connected(self, session: Session, session_present: bool) -> None:
        session.subscribe(self.topic, qos=1)

    def on_message(self, session: Session, msg: mqtt.MQTTMessage) -> None:
        try:
            notice = msgspec.json.decode(msg.payload, type=OtaNotice)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("ota: dropped a notice on %s that is not an OtaNotice: %s", msg.topic, exc)
            return
        self.notices.put(notice)
