"""The sensor client: publish readings to the node-local broker so that none is ever lost.

Each reading gets a UUIDv7 id and is written to the sensor's own disk before it is sent.
It stays there until the agent confirms it (on `ce/local/v1/acks/{sensor}`, after its
outbox commit), and goes again after `resend_after_s` or on every reconnect otherwise. The
broker's PUBACK means nothing here: a node-local broker holds messages in memory, and a
power cut takes them. The id makes every resend harmless (the outbox and the store both
recognise it). The protocol, for sensors written in other languages, is in docs/sensors.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import paho.mqtt.client as mqtt

from cityedge.protocol.acks import SensorAck
from cityedge.protocol.ids import uuid7
from cityedge.protocol.topics import local_ack_topic, local_sensor_topic
from cityedge.sensor.store import Pending, ReadingStore
from cityedge.transport import LinkHandler, LinkSettings, MqttLink, ProtocolChoice, Session, TlsFiles

__all__ = ["SensorClient", "SensorSettings"]

log = logging.getLogger(__name__)
_ack_decoder = msgspec.json.Decoder(SensorAck)
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class SensorSettings:
    sensor_id: str  # also the MQTT client id and, with TLS, the certificate's CN
    host: str = "127.0.0.1"
    port: int = 1883
    data_dir: Path = Path("sensor-data")
    tls: TlsFiles | None = None
    protocol: ProtocolChoice = "auto"
    resend_after_s: float = 5.0
    resend_batch: int = 500
    backoff_cap_s: float = 10.0


class SensorClient(LinkHandler):
    def __init__(self, settings: SensorSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._clock = clock
        self.store = ReadingStore(settings.data_dir / f"{settings.sensor_id}.db")
        self.confirmed = 0
        self.refused: list[tuple[str, str]] = []  # (id, reason) the agent refused for good
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # One sender at a time, and the resend loop only on a session whose on_connected has
        # sent the backlog: otherwise both pick up a fresh reading before either marks it sent.
        self._send_lock = threading.Lock()
        self._ready: Session | None = None
        self.link = MqttLink(
            LinkSettings(
                name=f"sensor-{settings.sensor_id}", host=settings.host, port=settings.port,
                client_id=settings.sensor_id, protocol=settings.protocol, backoff_base_s=0.2,
                backoff_cap_s=settings.backoff_cap_s, max_inflight=100,
            ),
            self,
            tls=settings.tls,
        )  # fmt: skip

    def start(self) -> SensorClient:
        self.link.start()
        self._thread = threading.Thread(target=self._resend_forever, name="sensor-resend", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        self.link.stop()
        self.store.close()

    def publish(self, stream: str, kind: str, body: dict[str, Any], ts: datetime | None = None) -> str:
        """Keep the reading on disk (durably), then send it; returns its id."""
        return self.publish_many(stream, kind, [body], ts)[0]

    def publish_many(
        self, stream: str, kind: str, bodies: list[dict[str, Any]], ts: datetime | None = None
    ) -> list[str]:
        now = self._clock()
        at = ts or datetime.fromtimestamp(now, UTC)
        topic = local_sensor_topic(self.settings.sensor_id, stream)
        readings = []
        for body in bodies:
            rid = str(uuid7(int(now * 1000)))
            readings.append((rid, topic, _encoder.encode({"id": rid, "kind": kind, "ts": at, "body": body})))
        self.store.add(readings, now)
        self._wake.set()
        return [r[0] for r in readings]

    def unconfirmed(self) -> int:
        return self.store.count()

    # -- link hooks ----------------------------------------------------------------------------
    def on_connected(self, session: Session, session_present: bool) -> None:
        session.subscribe(local_ack_topic(self.settings.sensor_id), qos=1)
        # Whatever was sent before may be lost with the broker's memory: send it all again.
        with self._send_lock:
            self._send(session, self.store.due(self._clock(), self.settings.resend_batch))
            self._ready = session

    def on_message(self, session: Session, msg: mqtt.MQTTMessage) -> None:
        try:
            ack = _ack_decoder.decode(msg.payload)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("sensor %s: a confirmation does not decode: %s", self.settings.sensor_id, exc)
            return
        for refusal in ack.refused:
            sensor = self.settings.sensor_id
            log.error(
                "sensor %s: the node refused reading %s for good: %s", sensor, refusal.id, refusal.reason
            )
            self.refused.append((refusal.id, refusal.reason))
        self.confirmed += self.store.forget([*ack.ids, *(r.id for r in ack.refused)])

    # -- sending -------------------------------------------------------------------------------
    def _resend_forever(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(min(1.0, self.settings.resend_after_s / 2))
            self._wake.clear()
            try:
                self._send_due()
            except Exception:  # keep resending whatever happens; the readings are on disk
                log.exception("sensor %s: resend failed; will try again", self.settings.sensor_id)

    def _send_due(self) -> None:
        with self._send_lock:
            session = self._ready
            if session is None or session is not self.link.session:
                return
            fresh = self.store.due(0.0, self.settings.resend_batch)
            stale = self.store.due(self._clock() - self.settings.resend_after_s, self.settings.resend_batch)
            self._send(session, {r[0]: r for r in [*fresh, *stale]}.values())

    def _send(self, session: Session, readings: Iterable[Pending]) -> None:
        sent = [rid for rid, topic, payload in readings if session.publish(topic, payload, qos=1) is not None]
        if sent:
            self.store.mark_sent(sent, self._clock())
