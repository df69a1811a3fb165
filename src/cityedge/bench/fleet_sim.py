"""Simulated nodes for `cityedge bench fleet`, speaking the real protocol: one-record batches of
real envelopes (heartbeats with a realistic body, incidents) on each node's own
`ce/v1/{district}/{node}/up/{stream}`, the store's acknowledgements on its `down/ack`.

Shared test identity: most simulated nodes are multiplexed over a few MQTT connections to a
bench broker without the per-node ACL (plain TCP, anonymous). The nodes whose death is timed
("victims") each have a connection of their own with their own last will, in a child process
that the bench SIGKILLs, exactly as an agent dies.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cityedge.protocol import encode_batch, encode_envelope, new_record, up_topic, uuid7
from cityedge.protocol.acks import StoreAck
from cityedge.protocol.health import CameraHealth, Heartbeat, LinkHealth, StreamBacklog, will_payload
from cityedge.protocol.topics import will_topic

__all__ = ["DISTRICT", "AckListener", "Multiplexer", "Schedule", "node_name", "run_victims"]

DISTRICT: Final = "bench"
_ack_decoder = msgspec.json.Decoder(StoreAck)


def node_name(i: int) -> str:
    return f"sim-{i:05d}"


def _beat(i: int, uptime: float, interval: float) -> dict[str, Any]:
    beat = Heartbeat(
        interval_s=interval,
        versions={"agent": "0.1.0", "model": "motion-1"},
        uptime_s=round(uptime, 1),
        outbox={
            s: StreamBacklog(pending=i % 3, oldest_age_s=0.4) for s in ("events", "telemetry", "heartbeat")
        },
        cameras={
            "cam-1": CameraHealth(
                fps=10.0, fps_target=10.0, p50_ms=18.0, p95_ms=31.0, p99_ms=44.0, source="playing"
            )
        },
        cert_days_left=61.5,
        disk_free_bytes=40_000_000_000,
        disk_total_bytes=64_000_000_000,
        cpu_percent=23.0,
        memory_percent=41.0,
        link=LinkHealth(connected=True, rtt_ms=12.0, rtt_p95_ms=20.0, jitter_ms=1.5),
        at=datetime.now(UTC),
    )
    body: dict[str, Any] = msgspec.to_builtins(beat)
    return body


def payload(node: str, stream: str, seq: int, body: dict[str, Any], kind: str) -> bytes:
    env = new_record(node, stream, kind, body, seq=seq, ver={"agent": "0.1.0"})
    return encode_batch(node, stream, [encode_envelope(env)], f"epoch-{node}")


def _client(client_id: str, port: int, will: tuple[str, bytes] | None = None) -> mqtt.Client:
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=True
    )
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    if will is not None:
        c.will_set(will[0], will[1], qos=1)
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    return c


@dataclass
class Schedule:
    """When each node's next heartbeat and incident are due (monotonic), spread evenly."""

    nodes: list[str]
    interval_s: float
    incident_every_s: float
    start: float
    seqs: dict[tuple[str, str], int] = field(default_factory=dict)

    def due(self, now: float, silenced: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
        """(node, stream) pairs whose time came since the previous call."""
        out = []
        for stream, every in (("heartbeat", self.interval_s), ("events", self.incident_every_s)):
            out += self._due(stream, every, now, silenced)
        return out

    def _due(self, stream: str, every: float, now: float, silenced: frozenset[str]) -> list[tuple[str, str]]:
        n = len(self.nodes)
        step = every / n
        done = self.seqs.get(("", stream), 0)  # slots handed out so far, over all nodes
        until = int((now - self.start) / step) + 1
        out = []
        for slot in range(done, until):
            node = self.nodes[slot % n]
            if node not in silenced:
                out.append((node, stream))
        self.seqs[("", stream)] = max(done, until)
        return out

    def next_seq(self, node: str, stream: str) -> int:
        seq = self.seqs.get((node, stream), 0) + 1
        self.seqs[(node, stream)] = seq
        return seq


class Multiplexer:
    """Many simulated nodes over `connections` MQTT connections (the shared bench identity)."""

    def __init__(self, port: int, connections: int, interval_s: float) -> None:
        self.clients = [_client(f"bench-mux-{k}", port) for k in range(connections)]
        self.interval_s = interval_s
        self.sent_at: dict[tuple[str, str, int], float] = {}
        self.published = 0
        self._bodies: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._rng = random.Random(7)

    def publish(self, node: str, index: int, stream: str, seq: int, uptime: float) -> None:
        if stream == "heartbeat":
            # one body per node, made once: the simulator must not take the CPU it measures
            body = self._bodies.get(index) or self._bodies.setdefault(
                index, _beat(index, uptime, self.interval_s)
            )
            kind = "heartbeat"
        else:
            kind = self._rng.choice(("stopped_vehicle", "wrong_way", "congestion"))
            body, kind = {"type": kind, "camera": "cam-1", "lane": "northbound-1"}, f"incident.{kind}"
        data = payload(node, stream, seq, body, kind)
        with self._lock:
            self.sent_at[(node, stream, seq)] = time.monotonic()
        self.clients[index % len(self.clients)].publish(up_topic(DISTRICT, node, stream), data, qos=1)
        self.published += 1

    def close(self) -> None:
        for c in self.clients:
            c.disconnect()
            c.loop_stop()


class AckListener:
    """The store's acknowledgements for every simulated node: publish -> store commit -> ack back."""

    def __init__(self, port: int, sent_at: dict[tuple[str, str, int], float], lock: threading.Lock) -> None:
        self.sent_at = sent_at
        self.lock = lock
        self.lags: list[tuple[float, float]] = []  # (when acked, lag in s)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-acks", clean_session=True)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(f"ce/v1/{DISTRICT}/+/down/ack", qos=1)
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        ack = _ack_decoder.decode(msg.payload)
        with self.lock:
            for s in ack.streams:
                for first, last in s.ranges:
                    for seq in range(first, last + 1):
                        sent = self.sent_at.pop((ack.node, s.stream, seq), None)
                        if sent is not None:
                            self.lags.append((now, now - sent))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def run_victims(port: int, names: list[str], interval_s: float, ready: Any) -> None:
    """Child process: each victim on its own connection with its own last will, heartbeating
    until the bench SIGKILLs the process (the broker then publishes every will)."""
    clients = {}
    for name in names:
        now = datetime.now(UTC)
        ms = int(now.timestamp() * 1000)
        will = (will_topic(DISTRICT, name), will_payload(name, str(uuid7(ms)), now, ms))
        clients[name] = _client(name, port, will)
    ready.set()
    seq, started = 0, time.monotonic()
    while True:
        seq += 1
        for i, (name, client) in enumerate(clients.items()):
            data = payload(
                name, "heartbeat", seq, _beat(i, time.monotonic() - started, interval_s), "heartbeat"
            )
            client.publish(up_topic(DISTRICT, name, "heartbeat"), data, qos=1)
        time.sleep(interval_s)
