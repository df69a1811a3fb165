"""The node's local bus: sensor messages in (into the outbox), local decisions out.

A sensor message is acknowledged to the local broker only after it is committed to the
outbox (group commit: what arrives within a few milliseconds shares one transaction), and
the agent then confirms it to the sensor on `ce/local/v1/acks/{sensor}`. A message refused
for what it is goes to the quarantine and is acknowledged (never redelivered forever); a
message the outbox has no room for is NOT acknowledged: the link steps away so the local
broker keeps it and hands it out again once there is room.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from datetime import UTC, datetime

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode
from prometheus_client import CollectorRegistry, Counter

from cityedge.edge.config import LocalBusConfig
from cityedge.edge.door import refusal_of, sensor_envelope
from cityedge.edge.outbox import AppendResult, GroupCommitter, Outbox
from cityedge.protocol.acks import SensorAck, SensorRefusal
from cityedge.protocol.errors import ProtocolError
from cityedge.protocol.topics import local_ack_topic, parse_local_sensor_topic
from cityedge.transport import LinkHandler, LinkSettings, MqttLink, Session

__all__ = ["LocalBus"]

log = logging.getLogger(__name__)
_ROOM_RETRY_S = 1.0


class LocalBus(LinkHandler):
    """A persistent-session subscriber on the node's broker, feeding the outbox."""

    def __init__(
        self,
        config: LocalBusConfig,
        node_id: str,
        versions: dict[str, str],
        group: GroupCommitter[Outbox],
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.config = config
        self.node_id = node_id
        self.versions = versions
        self.group = group
        reg = registry or CollectorRegistry()
        self._taken = Counter(
            "cityedge_localbus_messages", "Sensor messages committed to the outbox", registry=reg
        )
        self._bad = Counter(
            "cityedge_localbus_rejected", "Sensor messages refused and quarantined, by reason", ["reason"],
            registry=reg,
        )  # fmt: skip
        self._held = Counter(
            "cityedge_localbus_held",
            "Sensor messages left with the local broker for lack of room",
            registry=reg,
        )
        self._lock = threading.Lock()
        self._confirm: dict[str, list[str]] = defaultdict(list)
        self._refused: dict[str, list[SensorRefusal]] = defaultdict(list)
        self._no_room = False
        self._held_in: Session | None = None
        self.rejected = 0
        self.link = MqttLink(self._settings(), self, tls=config.tls, registry=reg)
        self.connected = self.link.connected
        group.after_each_batch(self.flush_confirmations)

    def _settings(self) -> LinkSettings:
        c = self.config
        return LinkSettings(
            name="localbus", host=c.host, port=c.port, client_id=c.client_id, protocol=c.protocol,
            keepalive_s=c.keepalive_s, manual_ack=True, backoff_base_s=0.5, backoff_cap_s=c.backoff_cap_s,
        )  # fmt: skip

    def start(self) -> LocalBus:
        self.group.start()
        self.link.start()
        return self

    def stop(self) -> None:
        self.link.stop()

    def publish(self, topic: str, payload: bytes) -> bool:
        """Publish a local decision (QoS 1); False when the local broker is not connected."""
        session = self.link.session
        return session is not None and session.publish(topic, payload, qos=1) is not None

    # -- link hooks --------------------------------------------------------------------------------
    def on_connected(self, session: Session, session_present: bool) -> None:
        session.subscribe(self.config.sensor_filter, qos=1)

    def on_subscribed(self, session: Session, reasons: list[ReasonCode]) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            log.error("localbus: the local broker refused the subscription to %s: %s (check its ACL for "
                      "this node's identity)", self.config.sensor_filter, ", ".join(failed))  # fmt: skip
        else:
            log.info("localbus: subscribed to %s", self.config.sensor_filter)

    def on_message(self, session: Session, msg: mqtt.MQTTMessage) -> None:
        payload = bytes(msg.payload)
        try:
            env = sensor_envelope(
                msg.topic, payload, self.node_id, self.versions, datetime.now(UTC),
                require_id=self.config.require_sensor_id,
            )  # fmt: skip
        except ProtocolError as exc:
            self._quarantine(session, msg, exc, payload)
            return
        self.group.submit(env, lambda result: self._committed(session, msg, env.id, result))

    # -- after the commit (the group committer's thread) ---------------------------------------------
    def _committed(
        self, session: Session, msg: mqtt.MQTTMessage, record_id: str, result: AppendResult | BaseException
    ) -> None:
        if isinstance(result, BaseException):
            log.error("localbus: outbox commit failed (%s); message left with the broker", result)
            self.link.reconnect(after_s=_ROOM_RETRY_S)
            return
        if result.reason in ("full", "disk_floor"):
            self._hold(session, result.reason)
            return
        if self._no_room:
            log.info("localbus: the outbox has room again; taking sensor messages")
            self._no_room = False
        session.ack(msg.mid, msg.qos)
        self._taken.inc()
        self._queue_confirmation(msg.topic, record_id)

    def _hold(self, session: Session, reason: str) -> None:
        """No room: leave this (and what follows) unacknowledged. The broker hands out what a
        session left unacknowledged only when it reconnects, so step away and come back later."""
        self._held.inc()
        if not self._no_room:
            log.warning(
                "localbus: the outbox refuses sensor messages (%s); leaving them with the local broker "
                "until there is room",
                "a reject_new stream is full" if reason == "full" else "disk under its floor",
            )  # fmt: skip
            self._no_room = True
        if session.alive and session is not self._held_in:
            self._held_in = session
            self.link.reconnect(after_s=_ROOM_RETRY_S)

    def _quarantine(
        self, session: Session, msg: mqtt.MQTTMessage, exc: ProtocolError, payload: bytes
    ) -> None:
        refusal = refusal_of(exc, payload)
        self.rejected += 1
        self._bad.labels(refusal.reason).inc()
        log.warning(
            "localbus: quarantined a message on %s (%s): %s", msg.topic, refusal.reason, refusal.detail
        )
        try:
            self.group.outbox.quarantine(msg.topic, refusal.reason, refusal.detail, payload)
        except Exception:
            log.exception("localbus: could not quarantine; message left with the broker")
            return
        session.ack(msg.mid, msg.qos)
        if refusal.record_id is not None:
            self._queue_confirmation(
                msg.topic, None, SensorRefusal(id=refusal.record_id, reason=refusal.reason)
            )
            self.flush_confirmations()

    # -- confirmations to sensors ------------------------------------------------------------------------
    def _queue_confirmation(
        self, topic: str, record_id: str | None, refused: SensorRefusal | None = None
    ) -> None:
        try:
            sensor, _ = parse_local_sensor_topic(topic)
        except ProtocolError:
            return
        with self._lock:
            if record_id is not None:
                self._confirm[sensor].append(record_id)
            if refused is not None:
                self._refused[sensor].append(refused)

    def flush_confirmations(self) -> None:
        """Tell each sensor which of its readings are committed (called after each group commit)."""
        with self._lock:
            confirm, refused = self._confirm, self._refused
            self._confirm, self._refused = defaultdict(list), defaultdict(list)
        session = self.link.session
        if session is None:
            return  # the sensors resend; the outbox recognises the ids and we confirm then
        for sensor in set(confirm) | set(refused):
            ack = SensorAck(ids=confirm.get(sensor, []), refused=refused.get(sensor, []))
            session.publish(local_ack_topic(sensor), msgspec.json.encode(ack), qos=1)
