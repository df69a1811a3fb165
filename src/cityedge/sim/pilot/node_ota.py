"""A pilot node's OTA side, inside its node process: the real supervisor around a release.

`NodeOta` provisions the factory release into slot a (as `cityedge ota provision` does),
then runs `cityedge ota supervise`'s own `Supervisor` and `OtaUpdater` in a thread: python-tuf
against the control plane's `/tuf`, A/B slots, the workload restarted from its slot, health
gates on this node's agent metrics, and `down/ota` notices over MQTT. Its install reports go
to `ota_dir/reports`, which the node's agent drains into its outbox (`ota` stream).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import msgspec

__all__ = ["NodeOta"]

log = logging.getLogger(__name__)


class NodeOta:
    def __init__(self, config: dict[str, Any], factory: str) -> None:
        from cityedge.edge.ota.config import OtaConfig

        self.cfg = OtaConfig.model_validate(config)
        self.factory = Path(factory)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.supervisor: Any = None

    def start(self) -> NodeOta:
        from cityedge.edge.ota.slots import SlotStore
        from cityedge.edge.ota.supervisor import Supervisor, build_updater
        from cityedge.edge.ota.updater import provision

        slots = SlotStore(self.cfg.ota_dir)
        if not slots.state_file.exists():
            provision(slots, self.factory, self.cfg.accept_channels[-1])
        self.supervisor = Supervisor(self.cfg, build_updater(self.cfg))
        # the workload is started (and dies with, PR_SET_PDEATHSIG) from this thread
        self._thread = threading.Thread(
            target=self.supervisor.run, args=(self._stop,), name="ota", daemon=True
        )
        self._thread.start()
        return self

    def status(self) -> dict[str, Any]:
        updater = self.supervisor.updater
        state = msgspec.to_builtins(updater.state)
        return {
            **state,
            "workload_starts": updater.workload.starts,
            "workload_alive": updater.workload.alive()[0],
        }

    def stop(self) -> None:
        self._stop.set()
        if self.supervisor is not None:
            self.supervisor.wake()
        if self._thread is not None:
            self._thread.join(30)
            if self._thread.is_alive():
                log.warning("ota: the supervisor did not stop within 30 s (a trial still soaking)")
