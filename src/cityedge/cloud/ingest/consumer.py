"""The ingest consumer: MQTT in (paho), records into the store, PUBACK only after the commit.

Two threads. The network thread owns the paho client (connect, loop, acks), so paho is
only ever called from one thread; the worker thread decodes, commits and queues the acks.
Bad messages are recorded, counted and acknowledged (never redelivered forever); a store
failure is retried with backoff and the message stays unacknowledged until it commits.

Reconnects: paho's own reconnect delay is exponential between a min and a max with no
jitter, which makes a fleet of replicas reconnect in lockstep after a broker restart. So
this module runs paho's `loop()` itself and sleeps `full_jitter(attempt)` between attempts.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import ssl
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from prometheus_client import CollectorRegistry, start_http_server

from cityedge.cloud.ingest.config import IngestConfig, TlsFiles
from cityedge.cloud.ingest.decode import IngestRecord, decode_message, rejection_reason
from cityedge.cloud.ingest.metrics import IngestMetrics
from cityedge.cloud.store.records import InsertResult, StoreRejectedError
from cityedge.protocol.errors import ProtocolError
from cityedge.protocol.topics import up_filter
from cityedge.transport import client_tls_context, full_jitter_delay

__all__ = ["IngestConsumer", "IngestStats", "IngestStore", "full_jitter"]

log = logging.getLogger("cityedge.cloud.ingest")

T = TypeVar("T")
_TICK_S = 0.02  # how often the network thread wakes to send queued acks
_UNSUPPORTED_PROTOCOL = 132  # CONNACK reason paho reports when a 3.1.1 broker refuses MQTT 5


class IngestStore(Protocol):
    """What the consumer needs from the store (`RecordStore` is the real one)."""

    def insert(self, records: Sequence[IngestRecord], received_at: datetime) -> InsertResult: ...

    def record_rejection(self, topic: str, reason: str, detail: str, received_at: datetime) -> None: ...


@dataclass(frozen=True)
class IngestStats:
    connected: bool
    subscribed: bool
    protocol: str
    messages: int  # received from the broker (redeliveries included)
    batches: int  # messages whose records were committed
    records: int  # records stored for the first time
    duplicates: int  # records that were already stored
    rejected: dict[str, int]  # messages rejected, by reason
    store_failures: int  # store writes that failed and were retried
    acked: int  # PUBACKs sent
    reconnects: int


@dataclass(frozen=True)
class _Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int  # which connection it came on: an ack is only valid on that one


@dataclass
class _Group:
    """Messages committed together: their records, and the rejections to record."""

    messages: list[_Message]
    accepted: list[tuple[_Message, list[IngestRecord]]] = field(default_factory=list)
    rejections: list[tuple[str, str, str]] = field(default_factory=list)  # topic, reason, detail


class _Stopping(Exception):
    """The consumer is stopping while a write is being retried: leave the messages unacked."""


def full_jitter(attempt: int, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """A delay drawn uniformly from [0, min(cap, base * 2**attempt)] (AWS "full jitter")."""
    return full_jitter_delay(attempt, base, cap, rand())


def tls_context(tls: TlsFiles) -> ssl.SSLContext:
    """TLS 1.2+ with our client certificate; the broker must present one our CA signed."""
    return client_tls_context(tls, "ingest tls")


class IngestConsumer:
    """Consume `ce/v1/+/+/up/+` into a store; `start()`, `stop()`, `stats()`."""

    def __init__(
        self,
        config: IngestConfig,
        store: IngestStore,
        registry: CollectorRegistry | None = None,
        *,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self._store = store
        self.registry = registry if registry is not None else CollectorRegistry()
        self._metrics = IngestMetrics(self.registry)
        self._rand = rand
        self._inbox: queue.SimpleQueue[_Message | None] = queue.SimpleQueue()
        self._acks: queue.SimpleQueue[_Message] = queue.SimpleQueue()
        self._stopping = threading.Event()  # worker: stop retrying, finish
        self._net_stop = threading.Event()  # network: flush acks, disconnect
        self._subscribed = threading.Event()
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._connected = False
        self._protocol = "3.1.1" if config.protocol == "3.1.1" else "5"
        self._generation = 0
        self._attempt = 0
        self._downgrade = False
        self._connack_seen = False
        self._committed_once = False
        self._tls: ssl.SSLContext | None = None
        self._threads: list[threading.Thread] = []
        self._http: Any = None
        self.metrics_port: int | None = None

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> IngestConsumer:
        """Validate the TLS files, start the metrics exporter and the two threads."""
        self._tls = tls_context(self.config.tls) if self.config.tls else None
        if self.config.metrics_port is not None:
            server, _thread = start_http_server(self.config.metrics_port, registry=self.registry)
            self._http = server
            self.metrics_port = int(server.server_port)
        for name, target in (("ingest-network", self._run_network), ("ingest-worker", self._run_worker)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the messages already taken (commit and ack them), then disconnect."""
        self._stopping.set()
        self._inbox.put(None)
        network, worker = self._threads or (None, None)
        if worker is not None:
            worker.join(timeout)
        self._net_stop.set()
        if network is not None:
            network.join(timeout)
        self._threads = []
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def wait_subscribed(self, timeout: float) -> bool:
        """True once the subscription is in place (messages published after it are ours)."""
        return self._subscribed.wait(timeout)

    def stats(self) -> IngestStats:
        with self._lock:
            c = self._counts
            return IngestStats(
                connected=self._connected,
                subscribed=self._subscribed.is_set(),
                protocol=self._protocol,
                messages=c["messages"],
                batches=c["batches"],
                records=c["records"],
                duplicates=c["duplicates"],
                rejected=dict(self._rejected),
                store_failures=c["store_failures"],
                acked=c["acked"],
                reconnects=c["reconnects"],
            )

    def _count(self, **deltas: int) -> None:
        with self._lock:
            self._counts.update(deltas)

    # --- network thread: the only thread that calls paho -------------------------------

    def _run_network(self) -> None:
        while not self._net_stop.is_set():
            client = self._new_client()
            try:
                self._connect(client)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                self._retry_later(f"cannot connect to {self.config.host}:{self.config.port}: {exc}")
                continue
            try:
                self._serve(client)
            except Exception:  # a paho or callback failure must not end the network thread
                log.exception("ingest: network loop failed; reconnecting")
                self._drop(client)
            if self._net_stop.is_set():
                break
            if self._downgrade:
                self._downgrade = False
                continue
            self._retry_later(f"connection to {self.config.host}:{self.config.port} lost")

    def _retry_later(self, why: str) -> None:
        delay = full_jitter(self._attempt, self.config.backoff_base_s, self.config.backoff_cap_s, self._rand)
        self._attempt += 1
        log.warning("ingest: %s; reconnecting in %.2fs (attempt %d)", why, delay, self._attempt)
        self._net_stop.wait(delay)

    def _new_client(self) -> mqtt.Client:
        v5 = self._protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.config.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
            reconnect_on_failure=False,
            manual_ack=True,
        )
        client.enable_logger(logging.getLogger("cityedge.cloud.ingest.paho"))
        if self._tls is not None:
            client.tls_set_context(self._tls)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _connect(self, client: mqtt.Client) -> None:
        self._generation += 1
        self._connack_seen = False
        if self._protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self.config.session_expiry_s
            client.connect(
                self.config.host,
                self.config.port,
                self.config.keepalive_s,
                clean_start=False,
                properties=props,
            )
        else:
            client.connect(self.config.host, self.config.port, self.config.keepalive_s)

    def _serve(self, client: mqtt.Client) -> None:
        generation = self._generation
        connack_deadline = time.monotonic() + self.config.connect_timeout_s
        while not self._net_stop.is_set():
            rc = client.loop(timeout=_TICK_S)
            self._flush_acks(client, generation)
            if rc != mqtt.MQTT_ERR_SUCCESS or self._downgrade:
                self._set_connected(False)
                return
            if not self._connack_seen and time.monotonic() > connack_deadline:
                self._no_connack(client)
                return
        # Stopping: the worker has finished, so every ack it queued is sent before DISCONNECT.
        self._flush_acks(client, generation)
        client.disconnect()
        for _ in range(5):  # until paho has written the DISCONNECT and closed the socket
            if client.socket() is None or client.loop(timeout=_TICK_S) != mqtt.MQTT_ERR_SUCCESS:
                break
        self._set_connected(False)

    def _no_connack(self, client: mqtt.Client) -> None:
        # Some 3.1.1-only brokers (amqtt) never answer an MQTT 5 CONNECT at all, so "auto"
        # also falls back when the CONNACK does not come (and tries 5 again if 3.1.1 fails).
        log.warning(
            "ingest: no CONNACK within %.1fs (MQTT %s)", self.config.connect_timeout_s, self._protocol
        )
        if self.config.protocol == "auto":
            self._protocol = "3.1.1" if self._protocol == "5" else "5"
            self._downgrade = True
        self._drop(client)

    @staticmethod
    def _drop(client: mqtt.Client) -> None:
        client.disconnect()
        sock = client.socket()
        if sock is not None:  # not (or no longer) connected: paho may not close it itself
            sock.close()

    def _flush_acks(self, client: mqtt.Client, generation: int) -> None:
        while True:
            try:
                msg = self._acks.get_nowait()
            except queue.Empty:
                return
            if msg.generation != generation:
                # Taken on an earlier connection: the broker redelivers it on this one, and
                # the store counts the redelivery as a duplicate.
                continue
            if client.ack(msg.mid, msg.qos) == mqtt.MQTT_ERR_SUCCESS:
                self._count(acked=1)

    def _set_connected(self, connected: bool) -> None:
        with self._lock:
            self._connected = connected
        self._metrics.connected.set(1 if connected else 0)
        if not connected:
            self._subscribed.clear()

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, flags: mqtt.ConnectFlags, reason: ReasonCode, _props: Any
    ) -> None:
        self._connack_seen = True
        if reason.is_failure:
            if (
                reason.value == _UNSUPPORTED_PROTOCOL
                and self.config.protocol == "auto"
                and self._protocol == "5"
            ):
                log.info("ingest: the broker does not speak MQTT 5; using MQTT 3.1.1")
                self._protocol = "3.1.1"
                self._downgrade = True
            else:
                log.error("ingest: broker refused the connection: %s", reason)
            return
        with self._lock:
            if self._counts["connections"]:
                self._counts["reconnects"] += 1
                self._metrics.reconnects.inc()
            self._counts["connections"] += 1
        self._attempt = 0
        self._set_connected(True)
        topic = up_filter(share_group=self.config.share_group)
        log.info(
            "ingest: connected (MQTT %s, session present: %s); subscribing to %s",
            self._protocol,
            flags.session_present,
            topic,
        )
        if self._protocol == "5":
            client.subscribe(topic, options=SubscribeOptions(qos=1))
        else:
            client.subscribe(topic, qos=1)

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: list[ReasonCode], _props: Any
    ) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:
            hint = (
                " (set share_group: null for brokers without shared subscriptions)"
                if self.config.share_group
                else ""
            )
            log.error("ingest: subscription refused: %s%s", ", ".join(str(r) for r in failed), hint)
            return
        log.info("ingest: subscribed; consuming")
        self._subscribed.set()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        self._set_connected(False)
        if reason.is_failure:
            log.warning("ingest: disconnected: %s", reason)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if self._stopping.is_set():
            return  # not acked: the broker redelivers it to whoever takes over the session
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = repr(message._topic)
        self._count(messages=1)
        self._inbox.put(_Message(topic, bytes(message.payload), message.mid, message.qos, self._generation))

    # --- worker thread: decode, commit, then hand the acks to the network thread --------

    def _run_worker(self) -> None:
        done = False
        while not done:
            first = self._inbox.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.config.max_group_messages:
                try:
                    nxt = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    done = True
                    break
                batch.append(nxt)
            try:
                self._process(batch)
            except _Stopping:
                return
            except Exception:  # unacked, so the broker redelivers the messages after a reconnect
                log.exception("ingest: processing %d messages failed; left unacknowledged", len(batch))

    def _process(self, batch: list[_Message]) -> None:
        group = self._decode(batch)
        received_at = datetime.now(UTC)
        inserted_any = self._commit_records(group, received_at)
        self._commit_rejections(group, received_at)
        if inserted_any and self.config.fault == "ingest_exit_after_commit" and not self._committed_once:
            sys.stderr.write("ingest: fault ingest_exit_after_commit: exiting after commit, before ack\n")
            sys.stderr.flush()
            os._exit(137)
        self._committed_once = self._committed_once or inserted_any
        for msg in batch:
            self._acks.put(msg)

    def _decode(self, batch: list[_Message]) -> _Group:
        group = _Group(batch)
        for msg in batch:
            try:
                records = decode_message(msg.topic, msg.payload, max_bytes=self.config.max_payload_bytes)
            except ProtocolError as exc:
                self._reject(group, msg, rejection_reason(exc), str(exc))
            except Exception as exc:  # a decoder bug: retrying the same bytes cannot help
                log.exception("ingest: decoding a message on %s failed unexpectedly", msg.topic)
                self._reject(group, msg, "internal", f"unexpected {type(exc).__name__}: {exc}")
            else:
                group.accepted.append((msg, records))
        return group

    def _reject(self, group: _Group, msg: _Message, reason: str, detail: str) -> None:
        log.warning("ingest: rejected message on %s (%s): %s", msg.topic, reason, detail)
        self._metrics.rejected.labels(reason).inc()
        with self._lock:
            self._rejected[reason] += 1
        group.rejections.append((msg.topic, reason, detail))

    def _commit_records(self, group: _Group, received_at: datetime) -> bool:
        records = [r for _msg, recs in group.accepted for r in recs]
        if not records:
            return False
        try:
            self._insert(records, received_at)
        except StoreRejectedError as exc:
            if len(group.accepted) == 1:
                msg = group.accepted[0][0]
                self._reject(group, msg, "store_rejected", str(exc))
                return False
            # One message holds data the database refuses: find it, store the others.
            outcomes = [
                self._commit_records(_Group([m], [(m, recs)], group.rejections), received_at)
                for m, recs in group.accepted
            ]
            return any(outcomes)
        self._count(batches=len(group.accepted))
        self._metrics.batches.inc(len(group.accepted))
        return True

    def _insert(self, records: list[IngestRecord], received_at: datetime) -> None:
        started = time.perf_counter()
        result = self._retry("insert", lambda: self._store.insert(records, received_at))
        self._metrics.insert_seconds.observe(time.perf_counter() - started)
        received = Counter(r.stream for r in records)
        for stream, n in received.items():
            stored = result.inserted_by_stream.get(stream, 0)
            self._metrics.records.labels(stream).inc(stored)
            if n - stored:
                self._metrics.duplicates.labels(stream).inc(n - stored)
        self._count(records=result.inserted, duplicates=result.duplicates)

    def _commit_rejections(self, group: _Group, received_at: datetime) -> None:
        for topic, reason, detail in group.rejections:
            self._retry(
                "record_rejection", partial(self._store.record_rejection, topic, reason, detail, received_at)
            )

    def _retry(self, what: str, write: Callable[[], T]) -> T:
        """Run a store write until it succeeds; StoreRejectedError passes through."""
        attempt = 0
        while True:
            try:
                return write()
            except StoreRejectedError:
                raise
            except Exception as exc:  # the database is down or busy: wait, then the same write
                self._count(store_failures=1)
                self._metrics.store_failures.inc()
                delay = full_jitter(
                    attempt, self.config.store_retry_base_s, self.config.store_retry_cap_s, self._rand
                )
                attempt += 1
                log.warning(
                    "ingest: store %s failed (%s); not acknowledged, retrying in %.2fs", what, exc, delay
                )
                if self._stopping.wait(delay):
                    raise _Stopping from exc
