"""One supervised MQTT connection: the only network loop the uplink, the local bus, ingest
and the sensor client use.

A link owns one paho client at a time and a supervisor thread that connects (persistent
session, MQTT 5 or 3.1.1, mutual TLS), backs off with full jitter between attempts, and
starts over when the connection drops or paho's network thread dies. Every callback into
the owner is guarded: an exception is logged and counted, never allowed to end a thread.
Each state change (connected, unreachable, refused and why, TLS failure and why) is logged
once, not on every retry.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode
from prometheus_client import CollectorRegistry

from cityedge.protocol.errors import ConfigError
from cityedge.transport.backoff import full_jitter_delay
from cityedge.transport.mqtt import MqttVersion, connect_persistent, make_client, next_version
from cityedge.transport.session import LinkHandler, LinkMetrics, LinkSettings, Session
from cityedge.transport.tls import TlsFiles, classify_tls_failure, client_tls_context

__all__ = ["MqttLink", "TlsSource"]

log = logging.getLogger(__name__)
_UNSUPPORTED_PROTOCOL = 132  # CONNACK reason a 3.1.1-only broker gives an MQTT 5 CONNECT
TlsSource = TlsFiles | Callable[[], TlsFiles | None] | None


class MqttLink:
    def __init__(
        self,
        settings: LinkSettings,
        handler: LinkHandler,
        *,
        tls: TlsSource = None,
        registry: CollectorRegistry | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.handler = handler
        self._tls = tls
        self._rand = rand
        self._metrics = LinkMetrics.of(registry or CollectorRegistry())
        self.version: MqttVersion = "3.1.1" if settings.protocol == "3.1.1" else "5"
        self.connected = threading.Event()
        self.session: Session | None = None
        self.callback_errors = 0
        self.connects = 0
        self.attempts = 0
        self._stop = threading.Event()
        self._drop = threading.Event()  # the current connection must end (lost, or asked for)
        self._hold_s = 0.0
        self._connack = threading.Event()
        self._connack_reason: ReasonCode | None = None
        self._session_present = False
        self._last_error = ""
        self._reported: tuple[str, str] | None = None
        self._paho_log = logging.getLogger(f"cityedge.transport.paho.{settings.name}")
        self._paho_log.setLevel(logging.WARNING)
        self._paho_log.propagate = False
        self._paho_log.handlers = [_LastError(self._note_error)]
        self._connected_once = False
        self._generation = 0
        self._thread: threading.Thread | None = None

    # -- public -----------------------------------------------------------------------------------
    def start(self) -> MqttLink:
        self._thread = threading.Thread(
            target=self._supervise, name=f"link-{self.settings.name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._drop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def reconnect(self, after_s: float = 0.0) -> None:
        """End the current connection and connect again `after_s` later (e.g. new credentials,
        or a local bus that must let its broker redeliver once there is room)."""
        self._hold_s = max(self._hold_s, after_s)
        self._reported = None  # new credentials or a deliberate pause: whatever comes next is news
        self._drop.set()

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    # -- the supervisor thread --------------------------------------------------------------------
    def _supervise(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                got_connected = self._one_connection()
            except Exception:  # never let the supervisor die: the owner's records are safe on disk
                log.exception("%s: unexpected error in the connection loop", self.settings.name)
                got_connected = False
            if self._stop.is_set():
                break
            attempt = 0 if got_connected else attempt + 1
            delay = full_jitter_delay(
                attempt, self.settings.backoff_base_s, self.settings.backoff_cap_s, self._rand()
            )
            delay, self._hold_s = max(delay, self._hold_s), 0.0
            self._stop.wait(delay)

    def _one_connection(self) -> bool:
        """Connect, serve until the connection ends; True when it got connected."""
        s = self.settings
        self.attempts += 1
        self._drop.clear()
        self._connack.clear()
        self._connack_reason, self._last_error = None, ""
        try:
            client, session = self._new_client()
        except ConfigError as exc:
            self._report("tls_files", logging.ERROR, f"{s.name}: {exc}")
            return False
        try:
            connect_persistent(client, s.host, s.port, s.keepalive_s, self.version, s.session_expiry_s,
                               persistent=s.persistent)  # fmt: skip
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            self._connect_failed(str(exc))
            _close(client)
            return False
        _no_delay(client)
        client.loop_start()
        try:
            return self._serve(client, session)
        finally:
            self._teardown(client, session)

    def _new_client(self) -> tuple[mqtt.Client, Session]:
        """A client with every callback bound before it connects: a broker resends a session's
        unacknowledged messages right after CONNACK, and a message that finds no callback is
        silently left unacknowledged until the next connection."""
        s = self.settings
        client = make_client(s.client_id, self.version, persistent=s.persistent, manual_ack=s.manual_ack)
        files = self._tls() if callable(self._tls) else self._tls
        if files is not None:
            client.tls_set_context(client_tls_context(files, f"{s.name} tls"))
        client.max_inflight_messages_set(s.max_inflight)
        will = s.will() if callable(s.will) else s.will  # a callable makes one per connection
        if will is not None:
            client.will_set(will.topic, will.payload, will.qos, will.retain)
        client.on_connect = self._guard("on_connect", self._on_connect)
        client.on_disconnect = self._guard("on_disconnect", self._on_disconnect)
        # Not `on_log`: paho formats every packet's debug line for it. A logger is asked
        # whether the level is wanted first, so only warnings and errors cost anything.
        client.enable_logger(self._paho_log)
        self._generation += 1
        session = Session(client, self._generation, self.version)
        client.on_message = self._guard(
            "on_message", lambda _c, _u, msg: self.handler.on_message(session, msg)
        )
        client.on_publish = self._guard(
            "on_publish", lambda _c, _u, mid, reason, _p: self.handler.on_published(session, mid, reason)
        )
        client.on_subscribe = self._guard(
            "on_subscribe", lambda _c, _u, _mid, reasons, _p: self.handler.on_subscribed(session, reasons)
        )
        return client, session

    def _serve(self, client: mqtt.Client, session: Session) -> bool:
        s = self.settings
        if not self._connack.wait(s.connect_timeout_s) or self._connack_reason is None:
            self._no_connack()
            return False
        if self._connack_reason.is_failure:
            self._refused(self._connack_reason)
            return False
        self._connected_once = True
        self.connects += 1
        self.session = session
        self.connected.set()
        self._metrics.connected.labels(s.name).set(1)
        self._metrics.connects.labels(s.name).inc()
        self._report(
            "connected", logging.INFO, f"{s.name}: connected to {s.host}:{s.port} (MQTT {self.version})"
        )
        self._call("on_connected", self.handler.on_connected, session, self._session_present)
        while not self._drop.wait(0.25):
            if not _paho_alive(client):
                log.error("%s: paho's network thread died; reconnecting", s.name)
                break
        return True

    def _teardown(self, client: mqtt.Client, session: Session) -> None:
        connected = self.session is session
        self.session = None
        self.connected.clear()
        self._metrics.connected.labels(self.settings.name).set(0)
        session.alive = False
        try:
            client.disconnect()
        except Exception:
            log.debug("%s: disconnect raised", self.settings.name, exc_info=True)
        client.loop_stop()
        _close(client)
        if connected:
            self._call("on_disconnected", self.handler.on_disconnected, session)
        if connected and not self._stop.is_set():
            why = f": {self._last_error}" if self._last_error else ""
            self._report("lost", logging.WARNING, f"{self.settings.name}: connection lost{why}")

    # -- paho callbacks (paho's thread) --------------------------------------------------------------
    def _on_connect(self, _c: mqtt.Client, _u: Any, flags: Any, reason: ReasonCode, _p: Any) -> None:
        self._session_present = bool(getattr(flags, "session_present", False))
        self._connack_reason = reason
        self._connack.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason is not None and getattr(reason, "is_failure", False) and not self._last_error:
            self._last_error = str(reason)
        self._connack.set()
        self._drop.set()

    def _note_error(self, text: str) -> None:
        # Keep the most telling error of this attempt: a TLS refusal (revoked, expired, ...)
        # is not to be overwritten by the "not connected" that paho logs after it.
        if not self._last_error or classify_tls_failure(self._last_error) is None:
            self._last_error = text

    # -- outcomes --------------------------------------------------------------------------------------
    def _connect_failed(self, error: str) -> None:
        s = self.settings
        self._metrics.failures.labels(s.name, "unreachable").inc()
        if self._tls_refused(error):
            return
        self._report(
            "unreachable",
            logging.WARNING,
            f"{s.name}: cannot connect to {s.host}:{s.port}: {error}; retrying with backoff",
        )

    def _no_connack(self) -> None:
        """The broker answered nothing, or hung up before CONNACK (often a TLS refusal under
        TLS 1.3, where the client hears of it only after its handshake)."""
        s, error = self.settings, self._last_error
        if error and self._tls_refused(error):
            return
        self._metrics.failures.labels(s.name, "no_connack").inc()
        if self._reported and self._reported[0].startswith("tls:"):
            # The same refusal, only heard less clearly this time (a reset before the alert
            # could be read): not news, and not a reason to try another protocol version.
            # It stays the state until something else is heard (or new credentials come).
            return
        previous = self.version
        self.version = next_version(s.protocol, self.version, self._connected_once)
        switch = f"; trying MQTT {self.version}" if self.version != previous else ""
        self._report(
            "no_connack",
            logging.WARNING,
            f"{s.name}: no CONNACK from {s.host}:{s.port} (MQTT {previous}){switch}"
            + (f": {error}" if error else ""),
        )

    def _tls_refused(self, error: str) -> bool:
        """Name a TLS refusal (revoked, expired, unknown CA, ...) with what to do; False if
        `error` is no TLS refusal."""
        tls = classify_tls_failure(error)
        if tls is None:
            return False
        s = self.settings
        self._metrics.failures.labels(s.name, f"tls_{tls[0]}").inc()
        self._report(
            f"tls:{tls[0]}",
            logging.ERROR,
            f"{s.name}: {s.host}:{s.port} refused the TLS session: {tls[1]} ({error})",
        )
        return True

    def _refused(self, reason: ReasonCode) -> None:
        s = self.settings
        self._metrics.failures.labels(s.name, "refused").inc()
        if reason.value == _UNSUPPORTED_PROTOCOL and s.protocol == "auto" and self.version == "5":
            self.version = "3.1.1"
            self._report(
                "downgrade", logging.INFO, f"{s.name}: {s.host}:{s.port} does not speak MQTT 5; using 3.1.1"
            )
            return
        self._report(
            f"refused:{reason}",
            logging.ERROR,
            f"{s.name}: {s.host}:{s.port} refused the connection of {s.client_id!r}: {reason}",
        )

    # -- helpers -------------------------------------------------------------------------------------
    def _report(self, key: str, level: int, message: str) -> None:
        """Log when the state changes; the same state again is a retry, logged at debug."""
        state = (key, message if key.startswith("refused") else key)
        log.log(level if state != self._reported else logging.DEBUG, "%s", message)
        self._reported = state

    def _guard(self, name: str, fn: Callable[..., None]) -> Callable[..., None]:
        def guarded(*args: Any) -> None:
            self._call(name, fn, *args)

        return guarded

    def _call(self, name: str, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except BaseException as exc:  # RecursionError and friends too: this thread must live
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            self.callback_errors += 1
            self._metrics.callback_errors.labels(self.settings.name, name).inc()
            log.exception("%s: %s callback failed; the link carries on", self.settings.name, name)


class _LastError(logging.Handler):
    """Hands paho's warnings and errors to the link, which names the cause of a failure."""

    def __init__(self, note: Callable[[str], None]) -> None:
        super().__init__(logging.WARNING)
        self._note = note

    def emit(self, record: logging.LogRecord) -> None:
        self._note(record.getMessage())


def _no_delay(client: mqtt.Client) -> None:
    """Small MQTT packets go out at once. With the store's acknowledgements flowing back on the
    same connection, Nagle's algorithm held a publish behind the PUBACK of an acknowledgement
    until the broker's delayed ACK (up to 40 ms on Linux): paho leaves Nagle on."""
    sock = client.socket()
    if isinstance(sock, socket.socket):  # ssl.SSLSocket is one too; paho's WebSocket wrapper is not
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _paho_alive(client: mqtt.Client) -> bool:
    thread = getattr(client, "_thread", None)  # paho's loop_start thread (no public accessor)
    return thread is None or thread.is_alive()


def _close(client: mqtt.Client) -> None:
    sock = client.socket()
    if sock is not None:  # paho may not close a socket whose TLS handshake failed
        with contextlib.suppress(OSError, ssl.SSLError):
            sock.close()
