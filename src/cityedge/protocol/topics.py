"""The MQTT topic tree, built and parsed only here.

ce/v1/{district}/{node}/up/{stream}     edge -> cloud
ce/v1/{district}/{node}/down/{kind}     cloud -> edge (kind `ack`: what the store holds)
ce/local/v1/...                         the node's own broker (sensors, decisions, acks)
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final, Literal

import msgspec

from cityedge.protocol.envelope import NAME_PATTERN
from cityedge.protocol.errors import TopicError
from cityedge.protocol.health import WILL_STREAM

__all__ = [
    "DOWN_KINDS",
    "LOCAL_ROOT",
    "ROOT",
    "Topic",
    "ack_topic",
    "down_topic",
    "local_ack_topic",
    "local_decision_topic",
    "local_sensor_topic",
    "parse_local_sensor_topic",
    "parse_topic",
    "up_filter",
    "up_topic",
    "will_topic",
]

ROOT: Final = "ce/v1"
DOWN_KINDS: Final = frozenset({"cmd", "config", "ota", "ack"})
_NAME = re.compile(NAME_PATTERN)


class Topic(msgspec.Struct, frozen=True):
    district: str
    node: str
    direction: Literal["up", "down"]
    leaf: str


def _check(segment: str, what: str) -> str:
    if not _NAME.match(segment):
        raise TopicError(f"{what} {segment!r} is not a valid topic segment ({NAME_PATTERN})")
    return segment


def up_topic(district: str, node: str, stream: str) -> str:
    return f"{ROOT}/{_check(district, 'district')}/{_check(node, 'node')}/up/{_check(stream, 'stream')}"


def down_topic(district: str, node: str, kind: str) -> str:
    if kind not in DOWN_KINDS:
        raise TopicError(f"down kind {kind!r} is not one of {sorted(DOWN_KINDS)}")
    return f"{ROOT}/{_check(district, 'district')}/{_check(node, 'node')}/down/{kind}"


def ack_topic(district: str, node: str) -> str:
    """Where ingest tells a node, after the database commit, which of its records are stored."""
    return down_topic(district, node, "ack")


def will_topic(district: str, node: str) -> str:
    """Where the broker publishes a node's last will: one of its own `up/` leaves, so the
    broker's ACL (a node writes only its own `up/+`) accepts it and ingest stores it."""
    return up_topic(district, node, WILL_STREAM)


def up_filter(district: str = "+", share_group: str | None = None) -> str:
    """Subscription filter for all up-traffic, optionally as an MQTT 5 shared subscription."""
    base = f"{ROOT}/{district}/+/up/+"
    return f"$share/{share_group}/{base}" if share_group else base


def parse_topic(topic: str) -> Topic:
    parts = topic.split("/")
    if len(parts) != 6 or f"{parts[0]}/{parts[1]}" != ROOT or parts[4] not in ("up", "down"):
        raise TopicError(f"topic {topic!r} is not in the tree {ROOT}/<district>/<node>/up|down/<leaf>")
    district, node, direction, leaf = parts[2], parts[3], parts[4], parts[5]
    _check(district, "district")
    _check(node, "node")
    _check(leaf, "leaf")
    return Topic(district, node, "up" if direction == "up" else "down", leaf)


# The node-local bus (the node's own broker): sensors in, local decisions out.
LOCAL_ROOT: Final = "ce/local/v1"


def local_sensor_topic(sensor: str, stream: str) -> str:
    return f"{LOCAL_ROOT}/sensors/{_check(sensor, 'sensor')}/{_check(stream, 'stream')}"


@lru_cache(maxsize=4096)
def parse_local_sensor_topic(topic: str) -> tuple[str, str]:
    """(sensor, stream) of a local sensor topic (cached: a node sees the same few topics)."""
    parts = topic.split("/")
    if len(parts) != 6 or "/".join(parts[:3]) != LOCAL_ROOT or parts[3] != "sensors":
        raise TopicError(
            f"topic {topic!r} is not a local sensor topic {LOCAL_ROOT}/sensors/<sensor>/<stream>"
        )
    return _check(parts[4], "sensor"), _check(parts[5], "stream")


def local_ack_topic(sensor: str) -> str:
    """Where the agent confirms to one sensor the readings it has committed to the outbox."""
    return f"{LOCAL_ROOT}/acks/{_check(sensor, 'sensor')}"


def local_decision_topic(camera: str) -> str:
    return f"{LOCAL_ROOT}/decisions/{_check(camera, 'camera')}"
