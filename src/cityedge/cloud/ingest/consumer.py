"""The ingest consumer: up-traffic in over one supervised MQTT link, records into the store,
then the store's acknowledgement to each node, then the PUBACK to the broker.

The link's thread only queues what arrives; a worker thread commits it (`worker.py`) and
then publishes, per node, what is stored on `ce/v1/{district}/{node}/down/ack`, and only then
acknowledges the messages to the broker. A crash anywhere in between costs a redelivery and
a resend, which the store recognises by record id.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode
from prometheus_client import CollectorRegistry, start_http_server

from cityedge.cloud.ingest.config import IngestConfig
from cityedge.cloud.ingest.metrics import IngestMetrics
from cityedge.cloud.ingest.worker import Committed, Inbound, IngestStore, IngestWorker, Stopping
from cityedge.protocol.errors import ConfigError
from cityedge.protocol.topics import ack_topic, up_filter
from cityedge.transport import (
    LinkHandler,
    LinkSettings,
    MqttLink,
    Session,
    client_tls_context,
    full_jitter_delay,
)

__all__ = ["IngestConsumer", "IngestStats", "IngestStore"]

log = logging.getLogger("cityedge.cloud.ingest")


@dataclass(frozen=True)
class IngestStats:
    connected: bool
    subscribed: bool
    protocol: str
    messages: int  # received from the broker (redeliveries included)
    batches: int  # messages whose records were committed
    records: int  # records stored for the first time
    duplicates: int  # records that were already stored
    rejected: dict[str, int]  # what was quarantined, by reason (records, or whole messages)
    store_failures: int  # store writes that failed and were retried
    acked: int  # PUBACKs sent
    reconnects: int
    store_acks: int = 0  # acknowledgements published to nodes


@dataclass(frozen=True)
class _Message:
    inbound: Inbound
    mid: int
    qos: int
    session: Session  # an ack is only valid on the connection the message came on


class IngestConsumer(LinkHandler):
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
        self.registry = registry if registry is not None else CollectorRegistry()
        self._metrics = IngestMetrics(self.registry)
        self._rand = rand
        self._inbox: queue.SimpleQueue[_Message | None] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._subscribed = threading.Event()
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._committed_once = False
        self._worker = IngestWorker(
            store, self._metrics, max_payload_bytes=config.max_payload_bytes,
            retry_delay=lambda attempt: full_jitter_delay(
                attempt, config.store_retry_base_s, config.store_retry_cap_s, self._rand()
            ),
            stopping=self._stopping.wait,
        )  # fmt: skip
        self.link = MqttLink(self._settings(), self, tls=config.tls, registry=self.registry, rand=rand)
        self._thread: threading.Thread | None = None
        self._http: Any = None
        self.metrics_port: int | None = None

    def _settings(self) -> LinkSettings:
        c = self.config
        return LinkSettings(
            name="ingest", host=c.host, port=c.port, client_id=c.client_id, protocol=c.protocol,
            keepalive_s=c.keepalive_s, session_expiry_s=c.session_expiry_s, manual_ack=True,
            backoff_base_s=c.backoff_base_s, backoff_cap_s=c.backoff_cap_s,
            connect_timeout_s=c.connect_timeout_s, max_inflight=1000,
        )  # fmt: skip

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> IngestConsumer:
        """Check the TLS files, start the metrics exporter, the link and the worker."""
        if self.config.tls is not None:
            client_tls_context(self.config.tls, "ingest tls")  # a bad file stops the start, named
        if self.config.metrics_port is not None:
            self._start_metrics(self.config.metrics_port)
        self._thread = threading.Thread(target=self._run_worker, name="ingest-worker", daemon=True)
        self._thread.start()
        self.link.start()
        return self

    def _start_metrics(self, port: int) -> None:
        try:
            server, _thread = start_http_server(port, registry=self.registry)
        except OSError as exc:
            raise ConfigError(f"ingest: cannot serve metrics on port {port}: {exc.strerror}") from None
        self._http = server
        self.metrics_port = int(server.server_port)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the messages already taken (commit, acknowledge), then disconnect."""
        self._stopping.set()
        self._inbox.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
        self.link.stop(timeout)
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
                connected=self.link.connected.is_set(), subscribed=self._subscribed.is_set(),
                protocol=self.link.version, messages=c["messages"], batches=c["batches"],
                records=c["records"],
                duplicates=c["duplicates"], rejected=dict(self._rejected),
                store_failures=self._worker.store_failures, acked=c["acked"],
                reconnects=max(0, self.link.connects - 1), store_acks=c["store_acks"],
            )  # fmt: skip

    def _count(self, **deltas: int) -> None:
        with self._lock:
            self._counts.update(deltas)

    # --- link hooks --------------------------------------------------------------------------------
    def on_connected(self, session: Session, session_present: bool) -> None:
        topic = up_filter(share_group=self.config.share_group)
        log.info("ingest: connected (session present: %s); subscribing to %s", session_present, topic)
        session.subscribe(topic, qos=1)

    def on_subscribed(self, session: Session, reasons: list[ReasonCode]) -> None:
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

    def on_disconnected(self, session: Session) -> None:
        self._subscribed.clear()

    def on_message(self, session: Session, msg: mqtt.MQTTMessage) -> None:
        if self._stopping.is_set():
            return  # not acked: the broker redelivers it to whoever takes over the session
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = repr(msg._topic)
        self._count(messages=1)
        self._metrics.messages.inc()
        self._inbox.put(_Message(Inbound(topic, bytes(msg.payload)), msg.mid, msg.qos, session))

    # --- the worker thread -------------------------------------------------------------------------
    def _run_worker(self) -> None:
        done = False
        while not done:
            first = self._inbox.get()
            if first is None:
                return
            group, done = self._gather(first)
            try:
                committed = self._worker.process([m.inbound for m in group])
            except Stopping:
                return
            except Exception:  # unacked, so the broker redelivers the messages after a reconnect
                log.exception("ingest: processing %d messages failed; left unacknowledged", len(group))
                continue
            self._finish(group, committed)

    def _gather(self, first: _Message) -> tuple[list[_Message], bool]:
        group = [first]
        while len(group) < self.config.max_group_messages:
            try:
                nxt = self._inbox.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                return group, True
            group.append(nxt)
        return group, False

    def _finish(self, group: list[_Message], committed: Committed) -> None:
        """Committed: tell the nodes what is stored, then acknowledge the messages."""
        self._count(
            batches=committed.messages_stored, records=committed.inserted, duplicates=committed.duplicates
        )
        self._metrics.batches.inc(committed.messages_stored)
        with self._lock:
            self._rejected.update(committed.quarantined)
        if (
            self.config.fault == "ingest_exit_after_commit"
            and committed.inserted
            and not self._committed_once
        ):
            sys.stderr.write("ingest: fault ingest_exit_after_commit: exiting after commit, before ack\n")
            sys.stderr.flush()
            os._exit(137)
        self._committed_once = self._committed_once or committed.inserted > 0
        session = self.link.session
        if session is not None:
            for (district, node), ack in committed.acks.items():
                if session.publish(ack_topic(district, node), msgspec.json.encode(ack), qos=1) is not None:
                    self._count(store_acks=1)
                    self._metrics.store_acks.inc()
        for m in group:
            if m.session.ack(m.mid, m.qos):
                self._count(acked=1)
