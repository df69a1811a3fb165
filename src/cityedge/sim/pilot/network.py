"""Each node's link to the cloud: an impairment proxy per node and the outage schedule that cuts it.

The spec's profile (or a node's override) sets latency, jitter, loss and rate on the proxy;
a driver thread cuts every node's link at the scheduled times and records when each outage
really began and ended (wall time), which is what the judge excludes and measures drain from.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from cityedge.protocol.spec_model import LinkProfile, Outage
from cityedge.sim.proxy import Impairment, TcpProxy

__all__ = ["NodeLink", "OutageDriver", "OutageWindow", "impairment_of"]

log = logging.getLogger(__name__)


def impairment_of(profile: LinkProfile) -> Impairment:
    return Impairment(profile.latency_ms, profile.jitter_ms, profile.loss, profile.rate_kbit_s)


@dataclass(frozen=True)
class OutageWindow:
    node: str
    start: float  # wall time the link went down
    end: float  # wall time it came back


@dataclass
class NodeLink:
    node: str
    profile: LinkProfile
    proxy: TcpProxy

    @classmethod
    def start(cls, node: str, profile: LinkProfile, broker_port: int, seed: int) -> NodeLink:
        proxy = TcpProxy(broker_port, impairment=impairment_of(profile), seed=seed).start()
        return cls(node, profile, proxy)


@dataclass
class OutageDriver:
    """Cuts and restores every link on the schedule, relative to `start_at` (wall time)."""

    links: list[NodeLink]
    schedule: tuple[Outage, ...]
    start_at: float
    windows: list[OutageWindow] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> OutageDriver:
        self._thread = threading.Thread(target=self._run, name="outages", daemon=True)
        self._thread.start()
        return self

    def down(self) -> bool:
        return any(not link.proxy.up for link in self.links)

    def _wait_until(self, at: float) -> bool:
        return not self._stop.wait(max(0.0, at - time.time()))

    def _run(self) -> None:
        for outage in self.schedule:
            if not self._wait_until(self.start_at + outage.at_s):
                return
            began = time.time()
            for link in self.links:
                link.proxy.cut()
            log.info("pilot: links cut for %.1f s", outage.for_s)
            self._wait_until(self.start_at + outage.at_s + outage.for_s)
            for link in self.links:
                link.proxy.restore()
            ended = time.time()
            self.windows += [OutageWindow(link.node, began, ended) for link in self.links]
            log.info("pilot: links restored")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        for link in self.links:
            link.proxy.restore()
