"""`cityedge ota supervise`: the node's long-running updater around its workload.

Boots the committed slot (or finishes an interrupted attempt), then checks for a release
every `check_interval_s` and whenever a `down/ota` notice arrives. The workload is a real
child process restarted on every switch and rollback. Reports go to a spool that the agent
drains into its outbox (`ota` stream).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from cityedge.edge.ota.client import HttpsFetcher, ReleaseClient
from cityedge.edge.ota.config import OtaConfig
from cityedge.edge.ota.health import HealthGates
from cityedge.edge.ota.listener import OtaListener
from cityedge.edge.ota.machine import State
from cityedge.edge.ota.slots import SlotStore
from cityedge.edge.ota.spool import SpoolSink
from cityedge.edge.ota.updater import OtaUpdater, UpdaterSettings
from cityedge.edge.ota.workload import MetricsProbe, ProcessWorkload
from cityedge.protocol.errors import CityEdgeError
from cityedge.protocol.release import OtaNotice

__all__ = ["Supervisor", "build_updater"]

log = logging.getLogger(__name__)


def build_updater(cfg: OtaConfig, on_persist: Callable[[str, State], None] | None = None) -> OtaUpdater:
    ota = cfg.ota_dir
    client = ReleaseClient(cfg.repository_url, cfg.trusted_root, ota / "tuf", HttpsFetcher(cfg.cafile))
    workload = ProcessWorkload(ota / "logs", env=dict(cfg.workload_env))
    probe = MetricsProbe(workload, cfg.health.metrics_url)
    h = cfg.health
    gates = HealthGates(
        soak_s=h.soak_s, settle_s=h.settle_s, min_fps=h.min_fps, require_uplink=h.require_uplink
    )
    settings = UpdaterSettings(cfg.hardware, tuple(cfg.accept_channels), gates, poll_s=h.poll_s)
    sink = SpoolSink(ota / "reports")
    return OtaUpdater(settings, client, SlotStore(ota), workload, probe, sink, on_persist=on_persist)


class Supervisor:
    def __init__(self, cfg: OtaConfig, updater: OtaUpdater) -> None:
        self.cfg = cfg
        self.updater = updater
        self.notices: queue.Queue[OtaNotice | None] = queue.Queue()
        self.listener: OtaListener | None = None
        if cfg.notify is not None:
            self.listener = OtaListener(cfg.notify, cfg.district, cfg.node_id, self.notices)

    def run(self, stop: threading.Event) -> None:
        self.updater.boot()
        if self.listener is not None:
            self.listener.start()
        try:
            while not stop.is_set():
                try:
                    notice = self.notices.get(timeout=self.cfg.check_interval_s)
                except queue.Empty:
                    notice = None  # the schedule
                if stop.is_set():
                    break
                self._check(notice)
        finally:
            if self.listener is not None:
                self.listener.stop()
            self.updater.workload.stop()

    def _check(self, notice: OtaNotice | None) -> None:
        try:
            state = self.updater.check(notice)
            log.info("ota: running %s from slot %s", state.committed_version, state.committed_slot)
        except CityEdgeError as exc:
            log.error("ota: check failed: %s", exc)

    def wake(self) -> None:
        self.notices.put(None)
