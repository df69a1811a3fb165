"""A district PKI and a locked-down Mosquitto for identity tests, plus a tiny MQTT probe client.

The broker is configured exactly as `cityedge broker config` renders it (deploy.mosquitto.broker_profile).
"""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cityedge.deploy.mosquitto import BrokerInputs, Role, broker_profile, write_broker_files
from cityedge.pki import CaLayout, CertificateAuthority, IssuedIdentity, init_ca
from cityedge.sim.brokers import MosquittoProcess, free_port
from tests.support.services import require_mosquitto

DISTRICT = "d1"


@dataclass
class District:
    """Offline root + issuing CA under `tmp`, and certificates issued from it."""

    tmp: Path
    layout: CaLayout = field(init=False)
    ca: CertificateAuthority = field(init=False)

    def __post_init__(self) -> None:
        _, self.layout = init_ca(self.tmp / "offline", self.tmp / "ca", name="test", now=datetime.now(UTC))
        self.ca = self.layout.load()
        self.certs = self.tmp / "certs"

    def identity(
        self, name: str, lifetime: timedelta = timedelta(days=1), now: datetime | None = None
    ) -> IssuedIdentity:
        chain = self.layout.chain.read_bytes()
        return self.ca.issue_to_directory(
            name, self.certs, now=now or datetime.now(UTC), lifetime=lifetime, chain=chain
        )


@dataclass
class LockedBroker:
    district: District
    process: MosquittoProcess

    @property
    def port(self) -> int:
        return self.process.port


def start_locked_broker(
    district: District, workdir: Path, role: Role = "cloud", node: str | None = None
) -> LockedBroker:
    require_mosquitto()
    server = district.ca.issue_to_directory(
        "broker",
        workdir / "tls",
        now=datetime.now(UTC),
        server_auth=True,
        extra_sans=("localhost", "127.0.0.1"),
        chain=district.layout.chain.read_bytes(),
    )
    files = BrokerInputs(district.layout.chain, server.cert_path, server.key_path, district.layout.crl)
    cfg = broker_profile(workdir, files, port=free_port())
    write_broker_files(cfg, role, DISTRICT, node=node)
    return LockedBroker(district, MosquittoProcess(cfg, workdir).start())


class Probe:
    """One MQTT 5 client over TLS that records what happened to it."""

    def __init__(
        self,
        port: int,
        cafile: Path,
        cert: Path | None,
        key: Path | None,
        client_id: str = "",
        context: ssl.SSLContext | None = None,
    ) -> None:
        self.connected = threading.Event()
        self.refused = threading.Event()
        self.disconnected = threading.Event()
        self.messages: list[tuple[str, bytes]] = []
        self.got = threading.Condition()
        self.puback: dict[int, int] = {}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if context is None:
            context = ssl.create_default_context(cafile=str(cafile))
            if cert is not None and key is not None:
                context.load_cert_chain(str(cert), str(key))
        self._sockets: list[ssl.SSLSocket] = []
        self.client.tls_set_context(_tracking(context, self._sockets))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_: self.disconnected.set()
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        try:
            self.client.connect("127.0.0.1", port, keepalive=30)
        except (OSError, ssl.SSLError):
            self.refused.set()
            self._close_sockets()
            return
        self.client.loop_start()

    @classmethod
    def of(cls, broker: LockedBroker, ident: IssuedIdentity, client_id: str = "") -> Probe:
        return cls(broker.port, ident.ca_path, ident.cert_path, ident.key_path, client_id)

    def _on_connect(self, _c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        (self.refused if rc.is_failure else self.connected).set()

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        with self.got:
            self.messages.append((msg.topic, msg.payload))
            self.got.notify_all()

    def _on_publish(self, _c: Any, _u: Any, mid: int, rc: Any, _p: Any) -> None:
        self.puback[mid] = rc.value

    def wait_outcome(self, timeout: float = 10.0) -> bool:
        """True when connected, False when refused or cut during the handshake."""
        for _ in range(int(timeout * 20)):
            if self.connected.is_set():
                return True
            if self.refused.is_set() or self.disconnected.is_set():
                return False
            self.connected.wait(0.05)
        raise AssertionError("the broker neither accepted nor refused the connection")

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(10), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: bytes) -> int:
        """Publish at QoS 1 and return the PUBACK reason code (0 = accepted, 135 = not authorized)."""
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        return self.puback.get(info.mid, -1)

    def wait_for(self, payload: bytes, timeout: float = 10.0) -> list[tuple[str, bytes]]:
        with self.got:
            self.got.wait_for(lambda: any(p == payload for _, p in self.messages), timeout)
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self._close_sockets()

    def _close_sockets(self) -> None:
        # paho leaves the socket of a refused TLS handshake open (it raises before owning it).
        for sock in self._sockets:
            sock.close()


def _tracking(context: ssl.SSLContext, opened: list[ssl.SSLSocket]) -> ssl.SSLContext:
    class Tracked(ssl.SSLSocket):
        @classmethod
        def _create(cls, *args: Any, **kwargs: Any) -> Any:
            sock = super()._create(*args, **kwargs)  # type: ignore[misc]
            opened.append(sock)
            return sock

    context.sslsocket_class = Tracked
    return context
