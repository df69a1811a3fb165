"""The uplink: drains the outbox to the cloud broker over MQTT with mutual TLS.

Batches of already-encoded records per publish (QoS 1), an inflight window, a drain rate
limit, and reconnects with exponential backoff and full jitter. A record leaves the outbox
only when the broker's PUBACK for its batch arrives; on any disconnect the in-flight records
go back to pending and are sent again (ingest is idempotent by record id).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from prometheus_client import CollectorRegistry, Counter, Gauge

from cityedge.edge.backoff import TokenBucket, full_jitter_delay
from cityedge.edge.config import TlsFiles, UplinkConfig
from cityedge.edge.mqtt import Protocol, connect_persistent, make_client, next_protocol, tls_context
from cityedge.edge.outbox import Outbox
from cityedge.protocol.codec import encode_batch
from cityedge.protocol.errors import ConfigError
from cityedge.protocol.topics import up_topic

__all__ = ["Uplink", "UplinkStats"]

log = logging.getLogger(__name__)


@dataclass
class UplinkStats:
    connected: bool
    protocol: str | None
    reconnects: int
    batches_sent: int
    records_acked: int
    inflight_batches: int


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "cityedge_uplink_records_sent", "Records published", ["stream"], registry=registry
        )
        self.acked = Counter(
            "cityedge_uplink_records_acked",
            "Records acknowledged by the broker",
            ["stream"],
            registry=registry,
        )
        self.batches = Counter("cityedge_uplink_batches_sent", "Batches published", registry=registry)
        self.reconnects = Counter(
            "cityedge_uplink_reconnects", "Connection attempts after the first", registry=registry
        )
        self.refused = Counter(
            "cityedge_uplink_publish_refused",
            "Batches the broker refused (MQTT 5 reason code)",
            registry=registry,
        )
        self.connected = Gauge(
            "cityedge_uplink_connected", "1 while connected to the cloud broker", registry=registry
        )


class Uplink:
    """Owns one MQTT connection to the cloud broker at a time, in its own thread."""

    def __init__(
        self,
        config: UplinkConfig,
        node_id: str,
        district: str,
        outbox: Outbox,
        *,
        registry: CollectorRegistry | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.node_id = node_id
        self.district = district
        self.outbox = outbox
        self._rand = rand
        self._metrics = _Metrics(registry or CollectorRegistry())
        self._tls: TlsFiles | None = config.tls
        self._bucket = TokenBucket(rate=config.drain_records_per_s, burst=config.drain_records_per_s / 4)
        self._lock = threading.Lock()
        self._window = threading.Condition(self._lock)
        self._inflight: dict[int, tuple[str, list[str]]] = {}
        self._early: dict[int, Any] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._disconnected = threading.Event()
        self._connack = threading.Event()
        self._connack_ok = False
        self._swap_requested = threading.Event()
        self._thread: threading.Thread | None = None
        self._protocol: Protocol = "3.1.1" if config.protocol == "3.1.1" else "5"
        self._connected_once = False
        self.reconnects = 0
        self._failures = 0
        self.batches_sent = 0
        self.records_acked = 0
        self.connected = False

    # -- public API ------------------------------------------------------------------------------
    def start(self) -> Uplink:
        self._thread = threading.Thread(target=self._run, name="uplink", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)

    def notify(self) -> None:
        """Producers call this after an outbox commit so the sender wakes at once."""
        self._wake.set()

    def swap_credentials(self, certfile: Path, keyfile: Path) -> None:
        """Use a renewed certificate: drain in-flight batches, reconnect with the new identity."""
        assert self._tls is not None, "swap_credentials needs a TLS uplink"
        self._tls = TlsFiles(cafile=self._tls.cafile, certfile=certfile, keyfile=keyfile)
        self._swap_requested.set()
        self._wake.set()

    def stats(self) -> UplinkStats:
        with self._lock:
            inflight = len(self._inflight)
        return UplinkStats(
            self.connected,
            self._protocol if self.connected else None,
            self.reconnects,
            self.batches_sent,
            self.records_acked,
            inflight,
        )

    # -- connection lifecycle ------------------------------------------------------------------
    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            if attempt or self._connected_once:
                self.reconnects += 1
                self._metrics.reconnects.inc()
            try:
                ok = self._session()
            except Exception:  # never let the uplink thread die; the outbox keeps the records
                log.exception("uplink: unexpected error; reconnecting")
                ok = False
            if self._stop.is_set():
                break
            if self._swap_requested.is_set():
                self._swap_requested.clear()
                attempt = 0
                continue
            attempt = 0 if ok else attempt + 1
            delay = full_jitter_delay(
                attempt, self.config.backoff_base_s, self.config.backoff_cap_s, self._rand()
            )
            self._stop.wait(delay)

    def _session(self) -> bool:
        """One connection: connect, send until it drops. True if it got connected."""
        try:
            client = self._new_client()
        except (OSError, ValueError, ConfigError) as exc:
            # an unreadable or bad certificate/key/CA file: keep retrying (an operator or the
            # renewer may fix it) rather than let the uplink thread die
            log.error("uplink: cannot set up TLS: %s", exc)
            return False
        got_connected = reached_broker = False
        try:
            cfg = self.config
            connect_persistent(
                client, cfg.host, cfg.port, cfg.keepalive_s, self._protocol, cfg.session_expiry_s
            )
            reached_broker = True
            client.loop_start()
            if self._connack.wait(10.0) and self._connack_ok:
                got_connected = True
                self._on_connected()
                self._send_loop(client)
        except (OSError, ValueError) as exc:
            # the first failure of an outage is a warning; the retries that follow are not news
            level = logging.WARNING if self._failures == 0 else logging.DEBUG
            log.log(level, "uplink: cannot connect to %s:%s: %s", self.config.host, self.config.port, exc)
        finally:
            self._teardown(client)
        self._failures = 0 if got_connected else self._failures + 1
        if reached_broker and not got_connected:
            # The broker answered but refused this protocol version (or hung up): try the other.
            self._protocol = next_protocol(self.config.protocol, self._protocol, self._connected_once)
        return got_connected

    def _new_client(self) -> mqtt.Client:
        self._connack.clear()
        self._disconnected.clear()
        self._connack_ok = False
        client = make_client(self.node_id, self._protocol, persistent=True)
        if self._tls is not None:
            client.tls_set_context(tls_context(self._tls.cafile, self._tls.certfile, self._tls.keyfile))
        client.max_inflight_messages_set(self.config.inflight_window)
        client.max_queued_messages_set(self.config.inflight_window)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def _on_connected(self) -> None:
        if self._failures:
            log.info("uplink: link back after %d failed attempts", self._failures)
        self._connected_once = True
        self.connected = True
        self._metrics.connected.set(1)
        log.info(
            "uplink: connected to %s:%s with MQTT %s", self.config.host, self.config.port, self._protocol
        )

    def _teardown(self, client: mqtt.Client) -> None:
        was = self.connected
        self.connected = False
        self._metrics.connected.set(0)
        try:
            client.disconnect()
        except Exception:
            log.debug("uplink: disconnect raised", exc_info=True)
        client.loop_stop()
        sock = client.socket()
        if sock is not None:
            sock.close()
        with self._lock:
            self._inflight.clear()
            self._early.clear()
        released = self.outbox.release_all()
        if was:
            log.warning("uplink: disconnected; %d in-flight records back to pending", released)

    # -- paho callbacks (network thread) --------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._connack_ok = not reason.is_failure
        if reason.is_failure:
            log.warning("uplink: broker refused connection: %s", reason)
        self._connack.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._disconnected.set()
        self._connack.set()
        self._wake.set()
        with self._window:
            self._window.notify_all()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        # paho calls this holding its own message lock, so never publish while holding ours:
        # a PUBACK may arrive before `_publish` has recorded the mid; it is parked in `_early`.
        with self._window:
            entry = self._inflight.pop(mid, None)
            if entry is None:
                self._early[mid] = reason
                return
            self._window.notify_all()
        self._settle(entry, reason)

    def _settle(self, entry: tuple[str, list[str]], reason: Any) -> None:
        stream, ids = entry
        if reason.is_failure:
            self._metrics.refused.inc()
            log.error("uplink: broker refused a batch of %d %s records: %s", len(ids), stream, reason)
            self.outbox.release(ids)
            return
        self.outbox.ack(ids)
        self.records_acked += len(ids)
        self._metrics.acked.labels(stream).inc(len(ids))

    # -- sending --------------------------------------------------------------------------------
    def _send_loop(self, client: mqtt.Client) -> None:
        cfg = self.config
        while not (self._stop.is_set() or self._disconnected.is_set()):
            if self._swap_requested.is_set():
                self._drain_inflight(timeout=5.0)
                return
            with self._window:
                if len(self._inflight) >= cfg.inflight_window:
                    self._window.wait(0.05)
                    continue
            claimed = self.outbox.claim(cfg.batch_max_records, cfg.batch_max_bytes)
            if claimed is None:
                if self._wake.wait(0.2):
                    self._wake.clear()
                    if cfg.linger_ms:
                        time.sleep(cfg.linger_ms / 1000.0)
                continue
            stream, records = claimed
            wait = self._bucket.take(len(records), time.monotonic())
            if wait > 0:
                time.sleep(wait)
            if not self._publish(client, stream, records):
                return

    def _publish(self, client: mqtt.Client, stream: str, records: list[Any]) -> bool:
        ids = [r.record_id for r in records]
        payload = encode_batch(self.node_id, stream, [r.payload for r in records])
        topic = up_topic(self.district, self.node_id, stream)
        info = client.publish(topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self.outbox.release(ids)
            log.warning("uplink: publish failed (%s); reconnecting", mqtt.error_string(info.rc))
            return False
        with self._window:
            early = self._early.pop(info.mid, None)
            if early is None:
                self._inflight[info.mid] = (stream, ids)
        if early is not None:
            self._settle((stream, ids), early)
        self.batches_sent += 1
        self._metrics.batches.inc()
        self._metrics.sent.labels(stream).inc(len(ids))
        return True

    def _drain_inflight(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._window:
            while self._inflight and time.monotonic() < deadline and not self._disconnected.is_set():
                self._window.wait(0.05)
