"""The scene's vocabulary: a scenario, the incidents it stages, and the ground truth a run records."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from cityedge.edge.camera.zones import CameraZones

__all__ = ["GroundTruthIncident", "Injected", "Scenario", "SceneRun"]


@dataclass(frozen=True)
class Injected:
    """An incident the scene stages: `at` seconds into the run, in lane `lane`. `parked` is no
    incident but a ghost maker: a vehicle standing in the lane from before the run starts (so
    the motion model learns it as background) that drives off at `at`."""

    type: str  # stopped_vehicle | wrong_way | congestion | parked
    lane: str
    at: float
    duration: float = 20.0


@dataclass(frozen=True)
class Scenario:
    name: str
    seed: int
    seconds: float
    fps: float = 10.0
    size: tuple[int, int] = (640, 360)
    arrivals_per_lane_s: float = 0.12
    noise_sigma: float = 2.0
    light: tuple[float, float] = (1.0, 1.0)  # exposure gain at start and end (dusk: falls)
    cloud_at: float | None = None  # a passing cloud dims the scene around this time
    exposure_steps: tuple[tuple[float, float], ...] = ()  # (at, gain factor): auto-exposure jumps
    shadow_length: float = 0.6
    incidents: tuple[Injected, ...] = ()
    start_time: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z: timestamps look like real ones
    camera: str = "cam-sim"


@dataclass
class GroundTruthIncident:
    type: str
    lane: str
    start: float  # absolute time (s since epoch) the incident truly began
    end: float
    position: tuple[float, float]  # foot point in frame pixels at start
    track: int | None = None  # the simulated vehicle's id (congestion involves many)


@dataclass
class SceneRun:
    """What a run of a scenario produced besides the frames."""

    scenario: Scenario
    zones: CameraZones
    incidents: list[GroundTruthIncident] = field(default_factory=list)
    vehicles_spawned: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.name,
            "seed": self.scenario.seed,
            "fps": self.scenario.fps,
            "size": list(self.scenario.size),
            "start_time": self.scenario.start_time,
            "seconds": self.scenario.seconds,
            "vehicles_spawned": self.vehicles_spawned,
            "incidents": [asdict(i) for i in self.incidents],
            "zones": self.zones.model_dump(mode="json"),
        }
