"""Frames of tracks for the rule tests: three lanes on a 1000 x 400 frame, vehicles as
functions of time (10 fps), and `run` to feed them through a RuleEngine."""

from __future__ import annotations

from collections.abc import Callable

from cityedge.edge.camera.rules import RuleConfig, RuleEngine, RuleOutput
from cityedge.edge.camera.zones import CameraZones, Lane
from cityedge.protocol.vision import Box, FrameTracks, TrackState

__all__ = [
    "FPS",
    "T0",
    "ZONES",
    "Vehicle",
    "drives",
    "ghost",
    "incidents",
    "queue",
    "run",
    "sized",
    "stops",
    "track",
]

T0 = 1_767_225_600.0  # a minute boundary
FPS = 10
ZONES = CameraZones(
    camera="cam",
    frame_size=(1000, 400),
    lanes=[
        Lane(name="east", polygon=[(0, 100), (1000, 100), (1000, 200), (0, 200)], direction=(1, 0)),
        Lane(name="west", polygon=[(0, 200), (1000, 200), (1000, 300), (0, 300)], direction=(-1, 0)),
        Lane(name="lot", polygon=[(0, 300), (1000, 300), (1000, 400), (0, 400)]),
    ],
)

# a vehicle: (track id, foot x, foot y, velocity x[, hits, width, height]) at time t (seconds
# from T0), or None when unseen; the tracker finds each vehicle every frame, so hits grow
Vehicle = Callable[[float], tuple[float, ...] | None]


def track(
    tid: int, x: float, y: float, vx: float, hits: int = 10, w: float = 60, h: float = 30
) -> TrackState:
    return TrackState(tid, "motion", Box(x - w / 2, y - h, x + w / 2, y), (vx, 0.0), T0, hits)


def _hits(t: float) -> int:
    return 10 + round(t * FPS)


def drives(tid: int, y: float, x0: float, vx: float, until: float = 1e9) -> Vehicle:
    return lambda t: (tid, x0 + vx * t, y, vx, _hits(t)) if t < until else None


def stops(tid: int, y: float, x0: float, vx: float, at: float, leaves: float = 1e9) -> Vehicle:
    def where(t: float) -> tuple[int, float, float, float, int]:
        if t < at:
            return (tid, x0 + vx * t, y, vx, _hits(t))
        if t < leaves:
            return (tid, x0 + vx * at, y, 0.0, _hits(t))
        return (tid, x0 + vx * (at + t - leaves), y, vx, _hits(t))

    return where


def sized(vehicle: Vehicle, w: float, h: float) -> Vehicle:
    """The same vehicle with a box `w` x `h` pixels."""

    def where(t: float) -> tuple[float, ...] | None:
        v = vehicle(t)
        return None if v is None else (*v[:5], w, h)

    return where


def ghost(tid: int, y: float, x: float) -> Vehicle:
    return lambda t: (tid, x, y, 0.0, _hits(t))


def run(vehicles: list[Vehicle], seconds: float, config: RuleConfig | None = None) -> list[RuleOutput]:
    engine = RuleEngine(ZONES, config or RuleConfig())
    outputs = []
    for k in range(round(seconds * FPS)):
        t = k / FPS
        tracks = [track(*v) for v in (f(t) for f in vehicles) if v is not None]  # type: ignore[arg-type]
        outputs.append(engine.step(FrameTracks("cam", k, T0 + t, tracks)))
    return outputs


def incidents(outputs: list[RuleOutput]) -> list[tuple[str, str]]:
    return [(i.type, i.lane) for o in outputs for i in o.incidents]


def queue(first: int, lane_y: float, count: int, speed: float, start: float, end: float) -> list[Vehicle]:
    """`count` big boxes nose to tail creeping at `speed` px/s between start and end."""

    def member(k: int) -> Vehicle:
        def where(t: float) -> tuple[float, ...] | None:
            if not start <= t < end:
                return None
            return (first + k, 400 + 160 * k + speed * t, lane_y, speed, 10, 150, 90)

        return where

    return [member(k) for k in range(count)]
