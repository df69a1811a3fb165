"""Health gates for a release on trial: pure judgement over samples, time passed in.

After `settle_s` (the workload starting up) every sample must show the process alive, each
camera at `min_fps` or better and the uplink connected; a crash fails at once. A trial passes
when `soak_s` more seconds have gone by with only good samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["HealthGates", "Sample", "Verdict", "judge"]


@dataclass(frozen=True)
class HealthGates:
    soak_s: float = 60.0
    settle_s: float = 10.0
    min_fps: float | None = None
    require_uplink: bool = True


@dataclass(frozen=True)
class Sample:
    at: float
    alive: bool
    exit_code: int | None = None
    # None: the workload's metrics could not be read
    fps: dict[str, float] | None = field(default_factory=dict)
    uplink: bool | None = None


@dataclass(frozen=True)
class Verdict:
    result: Literal["pass", "fail", "wait"]
    reason: str = ""
    detail: str = ""


def _problem(gates: HealthGates, s: Sample) -> Verdict | None:
    if s.fps is None:
        return Verdict("fail", "health_unreachable", "the workload's metrics endpoint did not answer")
    if gates.min_fps is not None:
        if not s.fps:
            return Verdict("fail", "camera_fps", "no camera reported a frame rate")
        slow = {cam: fps for cam, fps in s.fps.items() if fps < gates.min_fps}
        if slow:
            worst = min(slow, key=lambda c: slow[c])
            return Verdict(
                "fail",
                "camera_fps",
                f"camera {worst} at {slow[worst]:.1f} fps, expected >= {gates.min_fps:g}",
            )
    if gates.require_uplink and not s.uplink:
        return Verdict("fail", "uplink", "uplink not connected to the cloud broker")
    return None


def judge(gates: HealthGates, started_at: float, samples: list[Sample], now: float) -> Verdict:
    for s in samples:
        if not s.alive:
            return Verdict("fail", "crash", f"workload exited with code {s.exit_code}")
    settled = [s for s in samples if s.at >= started_at + gates.settle_s]
    for s in settled:
        problem = _problem(gates, s)
        if problem is not None:
            return problem
    if settled and now >= started_at + gates.settle_s + gates.soak_s:
        return Verdict("pass")
    return Verdict("wait")
