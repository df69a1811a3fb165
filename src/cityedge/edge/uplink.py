"""The uplink: drains the outbox to the cloud broker over one supervised MQTT link.

Batches of already-encoded records per publish (QoS 1), an inflight window, a drain rate
limit. The broker's PUBACK is flow control only: the records then wait, in the outbox, for
the store's acknowledgement on `down/ack` (after ingest's database commit), and go again
when it does not come in time. A disconnect puts what was in flight back to pending.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode
from prometheus_client import CollectorRegistry, Counter, Gauge

from cityedge.edge.config import UplinkConfig
from cityedge.edge.health import RttWindow
from cityedge.edge.outbox import Claim, OutboxPort
from cityedge.protocol.acks import StoreAck
from cityedge.protocol.codec import encode_batch
from cityedge.protocol.health import will_payload
from cityedge.protocol.ids import uuid7
from cityedge.protocol.topics import ack_topic, up_topic, will_topic
from cityedge.transport import LinkHandler, LinkSettings, MqttLink, Session, TlsFiles, TokenBucket, Will
from cityedge.transport.backoff import full_jitter_delay

__all__ = ["Uplink", "UplinkStats"]

log = logging.getLogger(__name__)
_ack_decoder = msgspec.json.Decoder(StoreAck)
_CHECK_EVERY_S = 5.0


@dataclass
class UplinkStats:
    connected: bool
    protocol: str | None
    reconnects: int
    batches_sent: int
    records_acked: int  # acknowledged by the cloud store
    inflight_batches: int


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "cityedge_uplink_records_sent", "Records published", ["stream"], registry=registry
        )
        self.pubacked = Counter(
            "cityedge_uplink_records_pubacked",
            "Records the broker acknowledged",
            ["stream"],
            registry=registry,
        )
        self.stored = Counter(
            "cityedge_uplink_records_stored",
            "Records the cloud store acknowledged",
            ["stream"],
            registry=registry,
        )
        self.batches = Counter("cityedge_uplink_batches_sent", "Batches published", registry=registry)
        self.refused = Counter(
            "cityedge_uplink_publish_refused", "Batches the broker refused, by MQTT 5 reason", ["reason"],
            registry=registry,
        )  # fmt: skip
        self.bad_acks = Counter(
            "cityedge_uplink_bad_store_acks", "Store acknowledgements that did not decode", registry=registry
        )
        self.connected = Gauge(
            "cityedge_uplink_connected", "1 while connected to the cloud broker", registry=registry
        )


class Uplink(LinkHandler):
    """Owns the link to the cloud broker and a sender thread."""

    def __init__(
        self,
        config: UplinkConfig,
        node_id: str,
        district: str,
        outbox: OutboxPort,
        *,
        registry: CollectorRegistry | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.node_id = node_id
        self.district = district
        self.outbox = outbox
        self._rand = rand
        registry = registry or CollectorRegistry()
        self._metrics = _Metrics(registry)
        self._tls: TlsFiles | None = config.tls
        self._bucket = TokenBucket(rate=config.drain_records_per_s, burst=config.drain_records_per_s / 4)
        self._window = threading.Condition()
        self._inflight: dict[int, Claim] = {}  # mid -> the batch it carries
        self._early: dict[int, ReasonCode] = {}  # PUBACKs that beat `publish` returning its mid
        self._published_at: dict[int, float] = {}
        self.rtt = RttWindow()  # publish -> PUBACK round trips, for the heartbeat
        self._stop = threading.Event()
        self._swap = threading.Event()
        self._refusals = 0
        self._paused_until = 0.0
        self._warned_waiting = False
        self._last_check = 0.0
        self._thread: threading.Thread | None = None
        self.batches_sent = 0
        self.records_acked = 0
        self.link = MqttLink(self._settings(), self, tls=lambda: self._tls, registry=registry, rand=rand)

    def _settings(self) -> LinkSettings:
        c = self.config
        return LinkSettings(
            name="uplink", host=c.host, port=c.port, client_id=self.node_id, protocol=c.protocol,
            keepalive_s=c.keepalive_s, session_expiry_s=c.session_expiry_s, backoff_base_s=c.backoff_base_s,
            backoff_cap_s=c.backoff_cap_s, max_inflight=c.inflight_window, will=self._will,
        )  # fmt: skip

    def _will(self) -> Will:
        """A last will per connection (a new record id each time): the fleet marks the node
        offline the moment the broker sees the connection die without a DISCONNECT."""
        now = datetime.now(UTC)
        ms = int(now.timestamp() * 1000)
        payload = will_payload(self.node_id, str(uuid7(ms)), now, ms)
        return Will(will_topic(self.district, self.node_id), payload, qos=1)

    # -- public API ------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self.link.connected.is_set()

    @property
    def reconnects(self) -> int:
        return max(0, self.link.connects - 1)

    def start(self) -> Uplink:
        self.link.start()
        self._thread = threading.Thread(target=self._send_forever, name="uplink-sender", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._window:
            self._window.notify_all()
        if self._thread:
            self._thread.join(timeout)
        self.link.stop(timeout)

    def notify(self) -> None:
        """Kept for producers written before the outbox owned the wake-up; nothing to do."""

    def swap_credentials(self, certfile: Path, keyfile: Path) -> None:
        """Use a renewed certificate: let in-flight batches finish, reconnect with the new identity."""
        assert self._tls is not None, "swap_credentials needs a TLS uplink"
        self._tls = TlsFiles(cafile=self._tls.cafile, certfile=certfile, keyfile=keyfile)
        self._swap.set()

    def stats(self) -> UplinkStats:
        with self._window:
            inflight = len(self._inflight)
        return UplinkStats(
            self.connected, self.link.version if self.connected else None, self.reconnects,
            self.batches_sent, self.records_acked, inflight,
        )  # fmt: skip

    # -- link hooks (the link's threads) ---------------------------------------------------------------
    def on_connected(self, session: Session, session_present: bool) -> None:
        self._metrics.connected.set(1)
        session.subscribe(ack_topic(self.district, self.node_id), qos=1)
        with self._window:
            self._window.notify_all()

    def on_disconnected(self, session: Session) -> None:
        self._metrics.connected.set(0)
        with self._window:
            self._inflight.clear()
            self._early.clear()
            self._published_at.clear()
            self._window.notify_all()
        released = self.outbox.release_all()
        if released:
            log.info("uplink: %d in-flight records back to pending", released)

    def on_published(self, session: Session, mid: int, reason: ReasonCode) -> None:
        # paho calls this holding its own message lock: never publish from here.
        with self._window:
            claim = self._inflight.pop(mid, None)
            if claim is None:
                self._early[mid] = reason
                return
            self._window.notify_all()
            sent_at = self._published_at.pop(mid, None)
        if sent_at is not None:
            now = time.monotonic()
            self.rtt.observe(now, now - sent_at)
        self._settle(claim, reason)

    def on_message(self, session: Session, msg: mqtt.MQTTMessage) -> None:
        try:
            ack = _ack_decoder.decode(msg.payload)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self._metrics.bad_acks.inc()
            log.warning("uplink: a store acknowledgement on %s does not decode: %s", msg.topic, exc)
            return
        if ack.node != self.node_id:
            return
        for stream_ack in ack.streams:
            gone = self.outbox.stored(stream_ack)
            self.records_acked += gone
            self._metrics.stored.labels(stream_ack.stream).inc(gone)

    def _settle(self, claim: Claim, reason: ReasonCode) -> None:
        if reason.is_failure:
            self._refused(claim, reason)
            return
        if self._refusals:
            log.info(
                "uplink: the broker accepts %s again", up_topic(self.district, self.node_id, claim.stream)
            )
            self._refusals = 0
        self.outbox.sent(claim.stream, claim.seqs)
        self._metrics.pubacked.labels(claim.stream).inc(len(claim.records))

    def _refused(self, claim: Claim, reason: ReasonCode) -> None:
        """The broker refused the publish (MQTT 5): say so once, with a hint, and back off."""
        self._metrics.refused.labels(str(reason)).inc()
        self.outbox.release(claim.stream, claim.seqs)
        if self._refusals == 0:
            topic = up_topic(self.district, self.node_id, claim.stream)
            hint = (
                f"the broker's ACL lets a node publish only under its own district and id: check that "
                f"node_id {self.node_id!r} and district {self.district!r} in the node config match the "
                f"certificate's CN and the broker's district"
                if reason.value == 0x87
                else "the records stay in the outbox and go again"
            )
            log.error(
                "uplink: the broker refused %d records on %s: %s; %s", len(claim.records), topic, reason, hint
            )
        self._refusals += 1
        wait = full_jitter_delay(
            self._refusals, self.config.backoff_base_s, self.config.backoff_cap_s, self._rand()
        )
        self._paused_until = time.monotonic() + max(wait, self.config.backoff_base_s)

    # -- sending (the sender thread) ---------------------------------------------------------------------
    def _send_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self._send_step()
            except Exception:  # never let the sender die; the outbox keeps the records
                log.exception("uplink: sender step failed; carrying on")
                self._stop.wait(0.5)

    def _send_step(self) -> None:
        session = self.link.session
        self._check_waiting()
        if session is None or not session.alive or time.monotonic() < self._paused_until:
            self._stop.wait(0.05)
            return
        if self._swap.is_set():
            self._finish_swap()
            return
        with self._window:
            if len(self._inflight) >= self.config.inflight_window:
                self._window.wait(0.05)
                return
        if not self.outbox.wait_for_work(0.2):
            return
        if self.config.linger_ms:
            time.sleep(self.config.linger_ms / 1000.0)
        claim = self.outbox.claim(self.config.batch_max_records, self.config.batch_max_bytes)
        if claim is None:
            return
        wait = self._bucket.take(len(claim.records), time.monotonic())
        if wait > 0:
            time.sleep(wait)
        self._publish(session, claim)

    def _publish(self, session: Session, claim: Claim) -> None:
        payload = encode_batch(
            self.node_id, claim.stream, [r.payload for r in claim.records], self.outbox.epoch
        )
        sent_at = time.monotonic()
        mid = session.publish(up_topic(self.district, self.node_id, claim.stream), payload, qos=1)
        if mid is None:
            self.outbox.release(claim.stream, claim.seqs)
            self.link.reconnect()
            return
        with self._window:
            early = self._early.pop(mid, None)
            if early is None:
                self._inflight[mid] = claim
                self._published_at[mid] = sent_at
        if early is not None:
            self._settle(claim, early)
        self.batches_sent += 1
        self._metrics.batches.inc()
        self._metrics.sent.labels(claim.stream).inc(len(claim.records))

    def _finish_swap(self) -> None:
        deadline = time.monotonic() + 5.0
        with self._window:
            while self._inflight and time.monotonic() < deadline:
                self._window.wait(0.05)
        self._swap.clear()
        log.info("uplink: reconnecting with the renewed certificate")
        self.link.reconnect()

    def _check_waiting(self) -> None:
        """Records the broker took but the store never acknowledged point at ingest being away,
        or (over MQTT 3.1.1, where a refused publish is silent) at an ACL refusal."""
        now = time.monotonic()
        if now - self._last_check < _CHECK_EVERY_S:
            return
        self._last_check = now
        stats = self.outbox.stats()
        ages = [s.oldest_sent_age_s for s in stats.streams.values() if s.oldest_sent_age_s is not None]
        resent = sum(s.resent for s in stats.streams.values())
        waiting = bool(ages) and max(ages) > self.config.store_ack_timeout_s
        if waiting and not self._warned_waiting:
            log.warning(
                "uplink: %d records the broker took have waited %.0f s for the cloud store's acknowledgement "
                "(%d sent again so far): is ingest running, and may node %r publish in district %r on this "
                "broker?",
                stats.total_sent, max(ages), resent, self.node_id, self.district,
            )  # fmt: skip
        elif not waiting and self._warned_waiting:
            log.info("uplink: the cloud store acknowledges records again")
        self._warned_waiting = waiting
