"""Keep the CRL fresh: re-publish it before brokers would refuse everyone, then reload them.

`check` is one step (testable with a clock); `start` runs it on a daemon thread every
`every_s` seconds until `stop`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from cityedge.cloud.registry.service import Registry
from cityedge.protocol.errors import CityEdgeError

__all__ = ["CrlRefresher"]

log = logging.getLogger(__name__)


class CrlRefresher:
    def __init__(
        self,
        registry: Registry,
        clock: Callable[[], datetime],
        *,
        every_s: float = 300.0,
        reload: Callable[[], None] | None = None,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.every_s = every_s
        self.reload = reload
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        """Re-publish a CRL past half its validity (and reload the brokers); True when it did."""
        if not self.registry.refresh_crl(self.clock()):
            return False
        log.info("re-published the CRL %s", self.registry.layout.crl)
        if self.reload is not None:
            # A broker keeps the CRL it loaded; without a reload it would lapse there.
            try:
                self.reload()
            except CityEdgeError as exc:
                log.error("the CRL was re-published but the broker was not reloaded: %s", exc)
        return True

    def start(self) -> CrlRefresher:
        self._thread = threading.Thread(target=self._run, name="crl-refresh", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.check()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
