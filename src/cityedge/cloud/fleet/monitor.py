"""The fleet monitor: the adapter around the pure status table and alert rules.

Each step reads the heartbeats and wills ingest stored since its cursor (arrival order),
feeds them to `FleetState`, judges silence at `now`, evaluates the alert rules now and
then, and writes node rows, transitions, alert events and the cursor in one transaction.
One monitor per district store (the API process runs it); it picks up where it left off.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec

from cityedge.cloud.clock import utcnow
from cityedge.cloud.fleet.alerts import Alert, AlertChange, diff, evaluate
from cityedge.cloud.fleet.config import AlertThresholds, FleetSection
from cityedge.cloud.fleet.status import FleetState, Heard, NodeHealth, Status, Transition, restored
from cityedge.cloud.store.fleet import FleetStore, HealthRow, NodeRow
from cityedge.protocol.errors import CityEdgeError
from cityedge.protocol.health import WILL_STREAM, Heartbeat, decode_heartbeat

__all__ = ["FleetMonitor", "StepResult"]

log = logging.getLogger(__name__)
CURSOR = "monitor.arrival"
_beat_decoder = msgspec.json.Decoder(Heartbeat)


@dataclass(frozen=True)
class StepResult:
    records: int
    transitions: list[Transition]
    alerts: list[AlertChange]


def thresholds_of(config: FleetSection) -> AlertThresholds:
    """What the alert rules and the cloud doctor judge by: the config's own section."""
    return config.alerts


class FleetMonitor:
    def __init__(
        self,
        store: FleetStore,
        config: FleetSection | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        crl_stale: Callable[[datetime], bool | None] | None = None,
    ) -> None:
        self.store = store
        self.config = config or FleetSection()
        self.clock = clock
        self.crl_stale = crl_stale
        self.state = FleetState(self.config)
        self.thresholds = thresholds_of(self.config)
        self.firing: dict[tuple[str, str, str], Alert] = {}
        self._json: dict[str, str] = {}  # node -> its latest heartbeat body as stored
        self.cursor = 0
        self.bad_heartbeats = 0
        self._last_alerts = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loaded = False

    # -- lifecycle ---------------------------------------------------------------------------------
    def load(self) -> FleetMonitor:
        """Pick up the stored state: node rows, firing alerts and the cursor. A first run starts
        from the newest record (the fleet shows up within one heartbeat interval)."""
        with self._lock:
            for row in self.store.nodes():
                self.state.nodes[row.node] = restored(_health_of(row))
            for event in self.store.firing_alerts():
                alert = Alert(
                    event["alert"],
                    event["node"],
                    event["subject"],
                    event["severity"],
                    event["summary"],
                    event["value"],
                )
                self.firing[alert.key] = alert
            saved = self.store.cursor(CURSOR)
            self.cursor = saved if saved is not None else self._first_cursor()
            self._loaded = True
        return self

    def _first_cursor(self) -> int:
        # Look back over the recent heartbeats so a fresh control plane knows the fleet at once.
        return max(0, self.store.last_arrival() - 50_000)

    def start(self) -> FleetMonitor:
        if not self._loaded:
            self.load()
        self._thread = threading.Thread(target=self._run, name="fleet-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.step()
            except Exception:  # the store may be busy or down: try again next round
                log.exception("fleet monitor: step failed; retrying")
            self._stop.wait(max(0.05, self.config.poll_s - (time.monotonic() - started)))

    # -- one step ------------------------------------------------------------------------------------
    def step(self, now: datetime | None = None) -> StepResult:
        if not self._loaded:
            self.load()
        with self._lock:
            moved: list[Transition] = []
            n = 0
            while True:
                page = self.store.health_records(self.cursor)
                for rec in page:
                    moved.extend(self._observe(rec))
                n += len(page)
                if page:
                    self.cursor = page[-1].arrival
                if len(page) < 5000:
                    break
            at = now or self.clock()
            moved.extend(self.state.tick(at))
            changes = self._alerts(at)
            self._save(moved, changes)
            return StepResult(n, moved, changes)

    def _observe(self, rec: HealthRow) -> list[Transition]:
        if rec.stream == WILL_STREAM:
            t = self.state.will(rec.node, rec.district, rec.received_at)
            return [t] if t is not None else []
        try:
            beat = _beat_decoder.decode(rec.body_json)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.bad_heartbeats += 1
            log.warning("fleet monitor: heartbeat %s of %s does not decode: %s", rec.id, rec.node, exc)
            return []
        t = self.state.heartbeat(rec.node, rec.district, rec.received_at, rec.ts, beat, rec.id)
        health = self.state.nodes[rec.node]
        if health.heard is not None and health.heard.record_id == rec.id:
            self._json[rec.node] = rec.body_json
        return [t] if t is not None else []

    def _alerts(self, at: datetime) -> list[AlertChange]:
        now_s = time.monotonic()
        if now_s - self._last_alerts < self.config.alerts_every_s:
            return []
        self._last_alerts = now_s
        self.state.trim_drops(at, timedelta(seconds=self.thresholds.drops_window_s))
        crl = self.crl_stale(at) if self.crl_stale is not None else None
        firing = evaluate(self.state.nodes.values(), at, self.thresholds, crl_stale=crl)
        changes = diff(self.firing, firing, at)
        self.firing = {a.key: a for a in firing}
        return changes

    def _save(self, moved: list[Transition], changes: list[AlertChange]) -> None:
        changed = [h for h in self.state.nodes.values() if h.changed]
        self.store.save(
            [_node_row(h, self._json.get(h.node)) for h in changed],
            [
                {
                    "node": t.node,
                    "district": t.district,
                    "before": t.before,
                    "after": t.after,
                    "at": t.at,
                    "reason": t.reason,
                }
                for t in moved
            ],
            [
                {
                    "alert": c.alert.name,
                    "node": c.alert.node,
                    "subject": c.alert.subject,
                    "severity": c.alert.severity,
                    "state": c.state,
                    "at": c.at,
                    "summary": c.alert.summary,
                    "value": c.alert.value,
                }
                for c in changes
            ],
            (CURSOR, self.cursor),
        )
        for h in changed:
            h.changed = False
        for t in moved:
            log.info("fleet: %s %s -> %s (%s)", t.node, t.before, t.after, t.reason)

    # -- views for metrics and the API ---------------------------------------------------------------
    def snapshot(self) -> list[NodeHealth]:
        with self._lock:
            return list(self.state.nodes.values())

    def firing_alerts(self) -> list[Alert]:
        with self._lock:
            return list(self.firing.values())

    def status_of(self, node: str) -> Status | None:
        with self._lock:
            health = self.state.nodes.get(node)
            return None if health is None else health.status


def _node_row(h: NodeHealth, body_json: str | None) -> dict[str, Any]:
    heard = h.heard
    return {
        "node": h.node,
        "district": h.district,
        "status": h.status.value,
        "since": h.since,
        "reason": h.reason,
        "last_seen": h.last_seen,
        "interval_s": heard.interval_s if heard else None,
        "heartbeat_id": heard.record_id if heard else None,
        "heartbeat_ts": heard.ts if heard else None,
        "heartbeat": body_json if body_json is not None else _encoded(h.heartbeat),
    }


def _encoded(beat: Heartbeat | None) -> str | None:
    return None if beat is None else msgspec.json.encode(beat).decode()


def _health_of(row: NodeRow) -> NodeHealth:
    beat = None
    if row.heartbeat is not None:
        try:
            beat = decode_heartbeat(row.heartbeat)
        except CityEdgeError:
            beat = None
    heard = None
    if row.last_seen is not None:
        heard = Heard(row.last_seen, row.interval_s, beat, row.heartbeat_ts, row.heartbeat_id)
    return NodeHealth(row.node, row.district, Status(row.status), row.since, row.reason, heard)
