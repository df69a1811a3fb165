"""The workload under the supervisor: a real child process started from a slot.

The bundle's manifest names the argv (`{slot}` and `{python}` expanded). The child dies with
its supervisor (PR_SET_PDEATHSIG), so a SIGKILLed supervisor never leaves an old workload
running next to the one its restart boots. `MetricsProbe` reads the workload's Prometheus
endpoint (`cityedge_camera_fps`, `cityedge_uplink_connected`) for the health gates.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from cityedge.edge.ota.health import Sample
from cityedge.protocol.release import Manifest

__all__ = ["MetricsProbe", "ProcessWorkload"]

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ProcessWorkload:
    def __init__(self, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.log_dir = log_dir
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.slot: Path | None = None
        self.starts = 0

    def argv(self, slot: Path, manifest: Manifest) -> list[str]:
        return [
            a.replace("{slot}", str(slot)).replace("{python}", sys.executable) for a in manifest.entrypoint
        ]

    def start(self, slot: Path, manifest: Manifest) -> None:
        self.stop()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / "workload.log", "ab")  # noqa: SIM115 - the child keeps it
        env = {**os.environ, **self.env, "CITYEDGE_SLOT": str(slot), "CITYEDGE_RELEASE": manifest.version}
        self.process = subprocess.Popen(
            self.argv(slot, manifest), cwd=slot, stdout=log, stderr=subprocess.STDOUT, env=env,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
        )  # fmt: skip
        log.close()
        self.slot = slot
        self.starts += 1

    def alive(self) -> tuple[bool, int | None]:
        if self.process is None:
            return False, None
        code = self.process.poll()
        return code is None, code

    def stop(self, timeout_s: float = 10.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class MetricsProbe:
    """One health sample: is the process alive, what do its metrics say."""

    def __init__(self, workload: ProcessWorkload, metrics_url: str, timeout_s: float = 2.0) -> None:
        self.workload = workload
        self.metrics_url = metrics_url
        self.timeout_s = timeout_s

    def sample(self) -> Sample:
        now = time.time()
        alive, code = self.workload.alive()
        if not alive:
            return Sample(now, False, code)
        try:
            text = httpx.get(self.metrics_url, timeout=self.timeout_s).text
        except httpx.HTTPError:
            return Sample(now, True, fps=None)
        fps: dict[str, float] = {}
        uplink: bool | None = None
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "cityedge_camera_fps":
                    fps[s.labels.get("camera", "?")] = s.value
                elif s.name == "cityedge_uplink_connected":
                    uplink = s.value >= 1
        return Sample(now, True, fps=fps, uplink=uplink)
