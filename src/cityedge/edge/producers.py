"""Background producers on the node: the heartbeat and synthetic telemetry/incidents.

The synthetic producer stands in for sensors and cameras in pilots and tests: telemetry
at a steady rate, incidents now and then, each body carrying a counter so a test can
tell exactly what was made.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cityedge.edge.config import SyntheticConfig
from cityedge.edge.records import RecordSink

__all__ = ["HeartbeatProducer", "SyntheticProducer"]

log = logging.getLogger(__name__)


class _Periodic:
    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._guarded, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _guarded(self) -> None:
        try:
            self.run()
        except Exception:
            log.exception("%s stopped on an error", self._thread.name)

    def run(self) -> None:
        raise NotImplementedError


class HeartbeatProducer(_Periodic):
    def __init__(self, interval_s: float, sink: RecordSink, body: Callable[[], dict[str, Any]]) -> None:
        super().__init__("heartbeat")
        self.interval_s = interval_s
        self.sink = sink
        self.body = body

    def run(self) -> None:
        while True:
            self.sink.emit("heartbeat", "heartbeat", self.body(), datetime.now(UTC))
            if self._stop.wait(self.interval_s):
                return


class SyntheticProducer(_Periodic):
    """Telemetry at `telemetry_per_s` and incidents at `incidents_per_min`, paced by the clock."""

    def __init__(self, config: SyntheticConfig, sink: RecordSink, rng: random.Random | None = None) -> None:
        super().__init__("synthetic")
        self.config = config
        self.sink = sink
        self.rng = rng or random.Random()
        self.made = 0

    def run(self) -> None:
        cfg = self.config
        rate = cfg.telemetry_per_s + cfg.incidents_per_min / 60.0
        if rate <= 0:
            return
        start = time.monotonic()
        while not self._stop.is_set() and (cfg.limit is None or self.made < cfg.limit):
            due = start + self.made / rate
            delay = due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            try:
                self._emit_one(rate)
            except TimeoutError:
                # The commit is queued and still happens (the group committer is slow, e.g. a
                # disk stalled by other I/O): the record is made; a retry would be a second one.
                log.warning("synthetic: record %d waited over the commit timeout; still queued", self.made)
            except Exception as exc:
                # Not committed: the same reading goes again (a fresh id), as a sensor would.
                log.warning("synthetic: record %d not committed (%s); trying again in 1 s", self.made, exc)
                if self._stop.wait(1.0):
                    return
                continue
            self.made += 1

    def _emit_one(self, rate: float) -> None:
        now = datetime.now(UTC)
        incident_share = (self.config.incidents_per_min / 60.0) / rate
        if self.rng.random() < incident_share:
            kind = self.rng.choice(["stopped_vehicle", "wrong_way", "congestion"])
            body = {"n": self.made, "type": kind, "camera": "cam-1", "lane": "northbound-1"}
            self.sink.emit("events", f"incident.{kind}", body, now)
        else:
            body = {"n": self.made, "sensor": "air-1", "pm25": round(self.rng.uniform(3, 40), 1)}
            self.sink.emit("telemetry", "reading", body, now)
