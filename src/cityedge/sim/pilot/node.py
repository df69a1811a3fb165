"""One edge node per process, as on separate machines: it enrolls, runs its `EdgeAgent`, answers the pilot.

The child enrolls over HTTPS with its one-time token (its key is made in its own process and
directory), starts the agent with its cameras, and then serves a few requests on a pipe:
`status` (for the live view), `stop_producers`, `measure` (per-frame latencies, frame
counts, outbox ledger, retention check) and `stop`. Separate processes also keep the nodes'
camera threads from sharing one interpreter lock with the cloud side of the pilot.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from cityedge.protocol.errors import CityEdgeError

__all__ = ["NodeProcess"]

log = logging.getLogger(__name__)


def _enroll(enrollment: dict[str, Any]) -> None:
    from cityedge.edge.identity import CredentialStore, enroll

    enroll(
        enrollment["api_url"],
        enrollment["token"],
        enrollment["serial"],
        enrollment["device_id"],
        CredentialStore(Path(enrollment["credentials_dir"])),
        Path(enrollment["cafile"]),
    )


def _status(agent: Any) -> dict[str, Any]:
    stats = agent.outbox.stats()
    cams = agent.cameras.stats(time.time() - 5.0) if agent.cameras else []
    return {
        "backlog": stats.total_records,  # everything the cloud store has not acknowledged yet
        "committed": sum(s.last_seq for s in stats.streams.values()),
        "events": stats.streams["events"].last_seq if "events" in stats.streams else 0,
        "fps": sum(c.fps for c in cams),
        "p99_ms": max((c.p99_ms or 0.0 for c in cams), default=0.0),
        "uplink": agent.uplink.connected,
    }


def _measure(agent: Any, node: str, start: float, end: float) -> dict[str, Any]:
    from cityedge.sim.pilot.measure import collect_camera, collect_node, retention_check

    cameras = [collect_camera(w, node, start, end) for w in agent.cameras.workers] if agent.cameras else []
    ledger = collect_node(agent, node)
    ledger.retention = retention_check(agent, agent.config.data_dir)
    return {"cameras": cameras, "ledger": ledger}


def _serve(agent: Any, node: str, conn: Any, ota: Any) -> None:
    while True:
        request, args = conn.recv()
        if request == "ota_status":
            conn.send(("ok", ota.status() if ota is not None else None))
        elif request == "status":
            conn.send(("ok", _status(agent)))
        elif request == "stop_producers":
            agent.stop_producers()
            conn.send(("ok", None))
        elif request == "measure":
            conn.send(("ok", _measure(agent, node, *args)))
        elif request == "stop":
            _stop(agent, ota)
            conn.send(("ok", None))
            return


def _stop(agent: Any, ota: Any) -> None:
    if ota is not None:
        ota.stop()
    agent.stop()


def _one_thread_per_camera() -> None:
    """Each camera has its own thread already: numeric libraries' own thread pools on top of
    that only add hand-offs and spinning on a small box, so they get one thread each."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    import cv2

    cv2.setNumThreads(1)


def _main(
    node: str, enrollment: dict[str, Any], config: dict[str, Any], conn: Any, log_path: str,
    ota_setup: dict[str, Any] | None,
) -> None:  # fmt: skip
    """Child process: log to the pilot's log file, enroll, run the agent (and the OTA
    supervisor when the pilot rolls out a release), answer the pilot."""
    logging.basicConfig(
        filename=log_path,
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s [{node}] %(name)s: %(message)s",
    )
    _one_thread_per_camera()
    try:
        from cityedge.edge.app import EdgeAgent
        from cityedge.edge.config import EdgeConfig

        _enroll(enrollment)
        agent = EdgeAgent(EdgeConfig.model_validate(config)).start()
        ota = None
        if ota_setup is not None:
            from cityedge.sim.pilot.node_ota import NodeOta

            ota = NodeOta(ota_setup["config"], ota_setup["factory"]).start()
        conn.send(("ok", "started"))
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
        return
    try:
        _serve(agent, node, conn, ota)
    except (EOFError, OSError):  # the pilot went away: stop cleanly all the same
        _stop(agent, ota)


class NodeProcess:
    """The pilot's handle on one node process; thread-safe (the live view polls it too)."""

    def __init__(
        self, node: str, enrollment: dict[str, Any], config: dict[str, Any], log_path: Path,
        ota: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        ctx = multiprocessing.get_context("spawn")
        self.node = node
        self._conn, child = ctx.Pipe()
        self._lock = threading.Lock()
        self.proc = ctx.Process(
            target=_main, args=(node, enrollment, config, child, str(log_path), ota), name=node, daemon=True
        )

    def start(self, timeout: float = 60.0) -> NodeProcess:
        self.proc.start()
        self._wait(timeout, "start")
        return self

    def _wait(self, timeout: float, what: str) -> Any:
        if not self._conn.poll(timeout):
            raise CityEdgeError(f"{self.node}: no answer to {what} within {timeout:g} s")
        status, value = self._conn.recv()
        if status != "ok":
            raise CityEdgeError(f"{self.node}: {what} failed: {value}")
        return value

    def call(self, request: str, *args: Any, timeout: float = 60.0) -> Any:
        with self._lock:
            if not self.proc.is_alive():
                raise CityEdgeError(f"{self.node}: the node process has exited ({self.proc.exitcode})")
            self._conn.send((request, args))
            return self._wait(timeout, request)

    def status(self) -> dict[str, Any]:
        return dict(self.call("status", timeout=10.0))

    def stop(self) -> None:
        try:
            if self.proc.is_alive():
                self.call("stop", timeout=30.0)
        except CityEdgeError as exc:
            log.warning("%s", exc)
        finally:
            self.proc.join(10)
            if self.proc.is_alive():
                self.proc.terminate()
                self.proc.join(5)
