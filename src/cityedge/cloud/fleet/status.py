"""Node status from heartbeats and last wills: a pure state table, time passed in.

    online  --(2 heartbeats missed)--> stale --(4 missed)--> offline
    any     --(last will)------------> offline         (the broker saw the connection die)
    any     --(heartbeat)------------> online

"Missed" counts the node's own heartbeat interval (it says it in every heartbeat) plus a
grace for transit and commit. A will that arrived before the node's latest heartbeat is
old news (the node reconnected) and changes nothing, so reading a record twice is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from cityedge.cloud.fleet.config import FleetSection
from cityedge.protocol.errors import TransitionError
from cityedge.protocol.health import Heartbeat

__all__ = ["TRANSITIONS", "FleetState", "Heard", "NodeHealth", "Status", "Transition"]


class Status(StrEnum):
    ONLINE = "online"
    STALE = "stale"
    OFFLINE = "offline"


# (state, event) -> next state; None is a node never seen. Events: heartbeat, will, missed_stale,
# missed_offline. A pair that is not here is a bug in the caller and raises TransitionError.
TRANSITIONS: Final[dict[tuple[Status | None, str], Status]] = {
    (None, "heartbeat"): Status.ONLINE,
    (None, "will"): Status.OFFLINE,
    (Status.ONLINE, "heartbeat"): Status.ONLINE,
    (Status.STALE, "heartbeat"): Status.ONLINE,
    (Status.OFFLINE, "heartbeat"): Status.ONLINE,
    (Status.ONLINE, "will"): Status.OFFLINE,
    (Status.STALE, "will"): Status.OFFLINE,
    (Status.OFFLINE, "will"): Status.OFFLINE,
    (Status.ONLINE, "missed_stale"): Status.STALE,
    (Status.STALE, "missed_stale"): Status.STALE,
    (Status.OFFLINE, "missed_stale"): Status.OFFLINE,
    (Status.ONLINE, "missed_offline"): Status.OFFLINE,
    (Status.STALE, "missed_offline"): Status.OFFLINE,
    (Status.OFFLINE, "missed_offline"): Status.OFFLINE,
}

_REASONS: Final = {
    "heartbeat": "heartbeat received",
    "will": "last will: the connection died without a goodbye",
    "missed_stale": "heartbeats missed",
    "missed_offline": "heartbeats missed",
}


def next_status(state: Status | None, event: str) -> Status:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise TransitionError(f"fleet status: no transition from {state} on {event!r}") from None


@dataclass(frozen=True)
class Transition:
    node: str
    district: str
    before: Status | None
    after: Status
    at: datetime
    reason: str


@dataclass
class Heard:
    """What a node's heartbeats told the cloud. `last_seen` is the store's arrival time of the
    latest to arrive (the cloud's clock), `interval_s` the last interval the node announced;
    `beat`, `ts` (the node's own time) and `record_id` are those of the newest by the node's
    clock, since a drained backlog arrives late but is older. `beat` is None when a stored
    body no longer decodes."""

    last_seen: datetime
    interval_s: float | None
    beat: Heartbeat | None
    ts: datetime | None
    record_id: str | None

    def take(self, arrived: datetime, ts: datetime, beat: Heartbeat, record_id: str) -> bool:
        """Note one heartbeat; True when it is the newest by the node's clock."""
        self.last_seen = arrived
        self.interval_s = beat.interval_s or self.interval_s
        if self.ts is not None and ts < self.ts:
            return False
        self.beat, self.ts, self.record_id = beat, ts, record_id
        return True


@dataclass
class NodeHealth:
    """What the cloud knows of one node; `heard` is None until its first heartbeat (a node
    known only by its last will)."""

    node: str
    district: str
    status: Status
    since: datetime
    reason: str
    heard: Heard | None = None
    drops_seen: list[tuple[datetime, int]] = field(default_factory=list)
    changed: bool = True  # not yet written back

    @property
    def heartbeat(self) -> Heartbeat | None:
        return None if self.heard is None else self.heard.beat

    @property
    def last_seen(self) -> datetime | None:
        return None if self.heard is None else self.heard.last_seen


@dataclass
class FleetState:
    rules: FleetSection = field(default_factory=FleetSection)  # heartbeat_s, *_after_missed, grace_s
    nodes: dict[str, NodeHealth] = field(default_factory=dict)

    def heartbeat(
        self, node: str, district: str, arrived: datetime, ts: datetime, beat: Heartbeat, record_id: str
    ) -> Transition | None:
        known = self.nodes.get(node)
        if known is not None and known.last_seen is not None and arrived < known.last_seen:
            return None  # an older heartbeat read again: nothing new
        health = known or NodeHealth(node, district, Status.ONLINE, arrived, _REASONS["heartbeat"])
        if health.heard is None:
            health.heard = Heard(arrived, None, None, None, None)
        if health.heard.take(arrived, ts, beat, record_id):
            health.drops_seen.append((arrived, beat.dropped))
        health.changed = True
        self.nodes[node] = health
        return self._apply(health, None if known is None else known.status, "heartbeat", arrived)

    def will(self, node: str, district: str, arrived: datetime) -> Transition | None:
        known = self.nodes.get(node)
        if known is not None and known.last_seen is not None and arrived < known.last_seen:
            return None  # the node has spoken since: it reconnected
        if known is None:
            known = NodeHealth(node, district, Status.OFFLINE, arrived, _REASONS["will"])
            self.nodes[node] = known
            return self._apply(known, None, "will", arrived)
        return self._apply(known, known.status, "will", arrived)

    def tick(self, now: datetime) -> list[Transition]:
        """Judge silence: a node whose heartbeats stopped goes stale, then offline."""
        out = []
        for health in self.nodes.values():
            event = self.silence(health, now)
            if event is not None:
                moved = self._apply(health, health.status, event, now)
                if moved is not None:
                    out.append(moved)
        return out

    def silence(self, health: NodeHealth, now: datetime) -> str | None:
        if health.heard is None:
            return None
        r = self.rules
        interval = health.heard.interval_s or r.heartbeat_s
        quiet = (now - health.heard.last_seen).total_seconds() - r.grace_s
        if quiet >= r.offline_after_missed * interval:
            return "missed_offline"
        if quiet >= r.stale_after_missed * interval:
            return "missed_stale"
        return None

    def _apply(
        self, health: NodeHealth, before: Status | None, event: str, at: datetime
    ) -> Transition | None:
        after = next_status(before, event)
        if before == after:
            return None
        reason = _REASONS[event]
        if event.startswith("missed") and health.last_seen is not None:
            quiet = (at - health.last_seen).total_seconds()
            reason = f"no heartbeat for {quiet:.0f} s"
        health.status, health.since, health.reason, health.changed = after, at, reason, True
        return Transition(health.node, health.district, before, after, at, reason)

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for health in self.nodes.values():
            out[health.status.value] += 1
        return out

    def trim_drops(self, now: datetime, window: timedelta) -> None:
        for health in self.nodes.values():
            keep = [d for d in health.drops_seen if now - d[0] <= window]
            health.drops_seen = keep or health.drops_seen[-1:]


def restored(health: NodeHealth) -> NodeHealth:
    """A node read back from the store: nothing to write until it changes."""
    return replace(health, changed=False)
