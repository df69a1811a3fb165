"""The cloud-side privacy check: a subscription on the cloud broker that inspects every payload it carried.

`inspect_payload` (pure) says why a payload might carry pixels: it is not a cityedge batch of
envelopes, it holds an image or video signature (raw or base64), or a string long enough to
be an encoded picture. `PixelMonitor` is the MQTT client that feeds it everything under `#`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import msgspec

from cityedge.protocol.acks import StoreAck
from cityedge.protocol.codec import decode_batch
from cityedge.protocol.errors import ProtocolError
from cityedge.protocol.release import OtaNotice

__all__ = ["MAX_STRING", "PixelMonitor", "inspect_payload"]

log = logging.getLogger(__name__)

MAX_STRING = 2048  # no metadata field is this long; a 64x64 JPEG thumbnail in base64 is ~2.5 KB
_SIGNATURES = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\x1aE\xdf\xa3": "Matroska/WebM",
    b"\x00\x00\x00\x01": "H.264/H.265 start code",
    b"ftypisom": "MP4",
    b"ftypmp42": "MP4",
    b"GIF8": "GIF",
    b"RIFF": "RIFF (WebP/AVI)",
}
_BASE64 = {
    "/9j/": "JPEG (base64)",
    "iVBORw0KGgo": "PNG (base64)",
    "GkXfo": "Matroska (base64)",
    "AAAAAWdC": "H.264 (base64)",
    "R0lGOD": "GIF (base64)",
    "data:image/": "data URI",
}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def _strict(payload: bytes, kind: type[msgspec.Struct]) -> None:
    """`payload` decodes as `kind` and carries no field `kind` does not have."""
    msgspec.json.decode(payload, type=kind)
    extra = set(msgspec.json.decode(payload, type=dict[str, Any])) - set(kind.__struct_fields__)
    if extra:
        raise msgspec.ValidationError(f"unexpected fields {sorted(extra)}")


def inspect_payload(payload: bytes, topic: str = "") -> list[str]:
    """Why this payload may carry pixels; an empty list when it is plain cityedge metadata.
    The store's acknowledgements to a node (`down/ack`) are seq ranges and OTA notices (`down/ota`)
    name a channel and a version: they must decode as such."""
    found = [f"{name} signature in the payload" for sig, name in _SIGNATURES.items() if sig in payload]
    for suffix, kind, what in (
        ("/down/ack", StoreAck, "a store acknowledgement"),
        ("/down/ota", OtaNotice, "an OTA notice"),
    ):
        if topic.endswith(suffix):
            try:
                _strict(payload, kind)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                return [*found, f"not {what}: {exc}"]
            return found
    try:
        _batch, envelopes = decode_batch(payload, max_bytes=len(payload) + 1)
    except ProtocolError as exc:
        return [*found, f"not a cityedge batch: {exc}"]
    for env in envelopes:
        for text in _strings(env.body) + _strings(env.extra):
            if len(text) > MAX_STRING:
                found.append(f"{env.stream}/{env.kind} {env.id}: a {len(text)}-character string")
            found += [
                f"{env.stream}/{env.kind} {env.id}: {name}" for sig, name in _BASE64.items() if sig in text
            ]
    return found


@dataclass
class MonitorStats:
    messages: int = 0
    bytes: int = 0
    violations: list[str] = field(default_factory=list)


class PixelMonitor:
    """Subscribes to everything (`#`, QoS 1) on the cloud broker and inspects each payload."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.stats = MonitorStats()
        self.subscribed = threading.Event()
        self._lock = threading.Lock()
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *_: self.subscribed.set()
        client.on_message = self._on_message

    def _on_connect(self, client: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            client.subscribe("#", qos=1)

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        payload = bytes(message.payload)
        problems = inspect_payload(payload, message.topic)
        with self._lock:
            self.stats.messages += 1
            self.stats.bytes += len(payload)
            self.stats.violations += [f"{message.topic}: {p}" for p in problems]
        if problems:
            log.error("pixel monitor: %s: %s", message.topic, "; ".join(problems))

    def start(self, host: str, port: int) -> PixelMonitor:
        self.client.connect(host, port)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
