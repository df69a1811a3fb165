"""Synthetic traffic scene with ground truth: a four-lane arterial seen from a camera mast.

Vehicles of several sizes and colours follow each other (a simple car-following model) at
urban speeds; the scene adds camera noise, lighting changes, shadows, partial occlusion
(a lamp post, a sign, a tree, nearer vehicles) and injected incidents: stopped vehicles,
wrong-way vehicles and congestion. Everything is deterministic from the scenario's seed. It
feeds frames, writes H.264 video (PyAV's wheel ships libx264), and returns the ground truth
and the lane zones that match what it draws.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from cityedge.edge.camera.zones import CameraZones, Lane
from cityedge.protocol.errors import ConfigError

__all__ = [
    "GroundTruthIncident",
    "Injected",
    "Scenario",
    "SceneRun",
    "frames",
    "render",
    "scene_zones",
    "write_ground_truth",
    "write_video",
]

LANE_WIDTH = 3.5
MEDIAN = 4.0  # a planted median between the two directions, as on most arterials
HALF_ROAD = 2 * LANE_WIDTH + MEDIAN / 2
ROAD_LENGTH = 90.0  # metres of lane simulated; about half of it is in view


@dataclass(frozen=True)
class Injected:
    """An incident the scene stages: `at` seconds into the run, in lane `lane`."""

    type: str  # stopped_vehicle | wrong_way | congestion
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


# --- geometry ------------------------------------------------------------------------------


class _Camera:
    """Pinhole camera on a mast: 18 m up, pitched 48 degrees down, 78 degrees wide."""

    def __init__(
        self, size: tuple[int, int], height: float = 18.0, pitch_deg: float = 48.0, hfov_deg: float = 78.0
    ):
        self.w, self.h = size
        self.f = (self.w / 2) / math.tan(math.radians(hfov_deg) / 2)
        p = math.radians(pitch_deg)
        self.pos = np.array([0.0, height, 0.0])
        self.fwd = np.array([0.0, -math.sin(p), math.cos(p)])
        self.down = np.array([0.0, -math.cos(p), -math.sin(p)])

    def project(self, points: NDArray[Any]) -> NDArray[np.float64]:
        d = np.asarray(points, dtype=np.float64) - self.pos
        zc = d @ self.fwd
        return np.stack(
            [self.w / 2 + self.f * d[:, 0] / zc, self.h / 2 + self.f * (d @ self.down) / zc], axis=1
        )

    def depth(self, point: NDArray[Any]) -> float:
        return float((np.asarray(point) - self.pos) @ self.fwd)


class _Road:
    """Four straight lanes; east_* travel +axis on the near side, west_* travel -axis far side."""

    names = ("west_2", "west_1", "east_1", "east_2")

    def __init__(self) -> None:
        a = math.radians(-7.0)
        self.centre = np.array([0.0, 0.0, 16.5])
        self.axis = np.array([math.cos(a), 0.0, math.sin(a)])
        self.normal = np.array([-math.sin(a), 0.0, math.cos(a)])  # points away from the camera
        m = MEDIAN / 2 / LANE_WIDTH
        self.offset = {"west_2": 1.5 + m, "west_1": 0.5 + m, "east_1": -0.5 - m, "east_2": -1.5 - m}

    def sign(self, lane: str) -> float:
        return 1.0 if lane.startswith("east") else -1.0

    def point(self, lane: str, s: float, lateral: float = 0.0) -> NDArray[np.float64]:
        """Ground point `s` metres along the lane's travel direction (0 = upstream end)."""
        along = self.sign(lane) * (s - ROAD_LENGTH / 2)
        return self.at(along, self.offset[lane] * LANE_WIDTH + lateral)

    def at(self, along: float, offset: float) -> NDArray[np.float64]:
        """Ground point `along` metres down the road axis, `offset` metres across (+: far side)."""
        return np.asarray(self.centre + self.axis * along + self.normal * offset, dtype=np.float64)

    def span(self, camera: _Camera, clearance: float = 4.0) -> tuple[float, float]:
        """The stretch of road (along the axis) clearly in front of the camera, all lanes."""
        ok = [
            a
            for a in np.arange(-ROAD_LENGTH / 2, ROAD_LENGTH / 2 + 0.5, 0.5)
            if min(camera.depth(self.at(float(a), o)) for o in (-HALF_ROAD - 4.0, HALF_ROAD + 4.0))
            >= clearance
        ]
        return float(min(ok)), float(max(ok))

    def visible(self, lane: str, camera: _Camera) -> tuple[float, float]:
        """The stretch (s_in, s_out) of a lane whose centre line is in the frame."""
        inside = []
        for s in np.arange(0.0, ROAD_LENGTH, 0.5):
            point = self.point(lane, float(s))
            u, v = camera.project(point[None, :])[0]
            if camera.depth(point) > 4.0 and 0 <= u < camera.w and 0 <= v < camera.h:
                inside.append(float(s))
        return min(inside), max(inside)

    def heading(self, lane: str, wrong_way: bool = False) -> NDArray[np.float64]:
        return self.axis * self.sign(lane) * (-1.0 if wrong_way else 1.0)


def _zones(camera: _Camera, road: _Road, name: str) -> CameraZones:
    frame = np.array([[0, 0], [camera.w, 0], [camera.w, camera.h], [0, camera.h]], dtype=np.float32)
    lanes = []
    a0, a1 = road.span(camera)
    for lane in road.names:
        lo, hi = (road.offset[lane] - 0.5) * LANE_WIDTH, (road.offset[lane] + 0.5) * LANE_WIDTH
        quad = [road.at(a0, lo), road.at(a1, lo), road.at(a1, hi), road.at(a0, hi)]
        poly = camera.project(np.array(quad)).astype(np.float32)
        _, clipped = cv2.intersectConvexConvex(poly, frame)
        mid = camera.project(
            np.array([road.point(lane, ROAD_LENGTH / 2), road.point(lane, ROAD_LENGTH / 2 + 1)])
        )
        direction = mid[1] - mid[0]
        lanes.append(
            Lane(
                name=lane,
                polygon=[(round(float(x), 1), round(float(y), 1)) for x, y in clipped.reshape(-1, 2)],
                direction=(float(direction[0]), float(direction[1])),
                kind="road",
            )
        )
    return CameraZones(camera=name, frame_size=(camera.w, camera.h), lanes=lanes)


# --- vehicles --------------------------------------------------------------------------------

_TYPES = (  # name, length, width, height, desired speed (m/s), weight
    ("car", 4.4, 1.8, 1.45, 12.5, 0.55),
    ("suv", 4.8, 1.95, 1.8, 12.0, 0.2),
    ("van", 5.4, 2.0, 2.3, 11.0, 0.12),
    ("truck", 8.5, 2.5, 3.2, 10.0, 0.07),
    ("bus", 12.0, 2.55, 3.1, 10.0, 0.06),
)
_COLOURS = (  # BGR, realistic car paint
    (235, 235, 235), (30, 30, 32), (190, 192, 196), (60, 60, 210), (150, 80, 30),
    (40, 90, 40), (40, 200, 230), (200, 200, 170), (90, 40, 110), (20, 60, 140),
)  # fmt: skip


@dataclass
class _Vehicle:
    id: int
    lane: str
    kind: str
    length: float
    width: float
    height: float
    colour: tuple[int, int, int]
    desired: float
    s: float
    v: float
    wrong_way: bool = False
    stop_at: float | None = None  # stop once at this s, for stop_for seconds
    stop_for: float = 0.0
    stopped_since: float | None = None
    done_stopping: bool = False


class _Traffic:
    """Lanes of vehicles with car following, spawning, and the staged incidents."""

    def __init__(self, scenario: Scenario, road: _Road, camera: _Camera, rng: np.random.Generator):
        self.sc, self.road, self.rng = scenario, road, rng
        self.view = {lane: road.visible(lane, camera) for lane in road.names}
        self.vehicles: list[_Vehicle] = []
        self.next_id = 1
        self.next_arrival = {
            lane: float(rng.exponential(1 / scenario.arrivals_per_lane_s)) for lane in road.names
        }
        self.blocked: dict[str, list[tuple[float, float]]] = {lane: [] for lane in road.names}
        self.jams: dict[str, list[tuple[float, float]]] = {lane: [] for lane in road.names}
        self.pending = sorted(scenario.incidents, key=lambda i: i.at)
        for inc in self.pending:
            if inc.lane not in road.names:
                raise ConfigError(f"scenario {scenario.name}: incident lane {inc.lane!r} not in {road.names}")
            if inc.type == "wrong_way":
                self.blocked[inc.lane].append((inc.at - 14.0, inc.at + 12.0))
            elif inc.type == "stopped_vehicle":
                # nobody follows it in: a queue behind a stopped car would be congestion
                self.blocked[inc.lane].append((inc.at - 1.0, inc.at + inc.duration + 8.0))
            elif inc.type == "congestion":
                self.jams[inc.lane].append((inc.at, inc.at + inc.duration))
            else:
                raise ConfigError(f"scenario {scenario.name}: unknown incident type {inc.type!r}")

    def _new(self, lane: str, *, s: float = 0.0, v: float | None = None) -> _Vehicle:
        weights = np.array([t[5] for t in _TYPES])
        kind, length, width, height, speed, _ = _TYPES[
            int(self.rng.choice(len(_TYPES), p=weights / weights.sum()))
        ]
        colour = _COLOURS[int(self.rng.integers(len(_COLOURS)))]
        desired = float(np.clip(self.rng.normal(speed, 1.2), 8.0, 15.0))
        vehicle = _Vehicle(
            self.next_id,
            lane,
            kind,
            length,
            width,
            height,
            colour,
            desired,
            s,
            v if v is not None else desired,
        )
        self.next_id += 1
        self.vehicles.append(vehicle)
        return vehicle

    def _in(self, windows: list[tuple[float, float]], t: float) -> bool:
        return any(a <= t < b for a, b in windows)

    def jammed(self, lane: str, t: float) -> bool:
        return self._in(self.jams[lane], t)

    def step(self, t: float, dt: float) -> list[_Vehicle]:
        """Advance to `t`; returns vehicles staged for incidents that started now."""
        staged = self._stage(t)
        for lane in self.road.names:
            self._spawn(lane, t)
        for lane in self.road.names:
            self._follow(lane, t, dt)
        self.vehicles = [v for v in self.vehicles if -15.0 <= v.s <= ROAD_LENGTH + 15.0]
        return staged

    def _stage(self, t: float) -> list[_Vehicle]:
        staged = []
        while self.pending and self.pending[0].at <= t:
            inc = self.pending.pop(0)
            if inc.type == "stopped_vehicle":
                v = self._new(inc.lane, s=-8.0)
                v.kind, v.length, v.width, v.height = "car", 4.4, 1.8, 1.45
                s_in, s_out = self.view[inc.lane]
                v.stop_at = s_in + float(self.rng.uniform(0.4, 0.65)) * (s_out - s_in)
                v.stop_for = inc.duration
                staged.append(v)
            elif inc.type == "wrong_way":
                v = self._new(inc.lane, s=ROAD_LENGTH + 8.0)
                v.kind, v.length, v.width, v.height = "car", 4.4, 1.8, 1.45
                v.wrong_way = True
                staged.append(v)
        return staged

    def _spawn(self, lane: str, t: float) -> None:
        jam = self.jammed(lane, t)
        if jam and self.next_arrival[lane] > t + 1.5:
            self.next_arrival[lane] = t  # demand jumps when the bottleneck appears
        if self._in(self.blocked[lane], t) or t < self.next_arrival[lane]:
            return
        last = min(
            ((v.s - v.length / 2, v.v) for v in self.vehicles if v.lane == lane and not v.wrong_way),
            default=(1e9, 0.0),
        )
        if last[0] < 10.0:
            return  # the entry is occupied; the arrival waits
        self._new(lane, v=min(last[1] + 3.0, 12.0) if last[0] < 40.0 else None)
        # demand upstream of a bottleneck is what builds the queue
        rate = max(self.sc.arrivals_per_lane_s, 0.7 if jam else 0.0)
        self.next_arrival[lane] = t + float(self.rng.exponential(1 / rate))

    def _follow(self, lane: str, t: float, dt: float) -> None:
        lane_vs = sorted((v for v in self.vehicles if v.lane == lane), key=lambda v: -v.s)
        leader: _Vehicle | None = None
        for v in lane_vs:
            if v.wrong_way:
                v.s -= v.desired * dt
                continue
            target = self._target_speed(v, t)
            if leader is not None:
                gap = leader.s - leader.length / 2 - (v.s + v.length / 2)
                target = min(target, max(0.0, (gap - 2.0) / 1.1))
            accel = 2.0 if target > v.v else -5.0
            v.v = max(0.0, min(target, v.v + accel * dt) if accel > 0 else max(target, v.v + accel * dt))
            v.s += v.v * dt
            leader = v

    def _target_speed(self, v: _Vehicle, t: float) -> float:
        if v.stop_at is not None and not v.done_stopping:
            if v.stopped_since is not None:
                if t - v.stopped_since >= v.stop_for:
                    v.done_stopping = True
                return 0.0 if not v.done_stopping else v.desired
            remaining = v.stop_at - v.s
            if remaining <= 0.05:
                v.stopped_since, v.v = t, 0.0
                return 0.0
            return min(v.desired, math.sqrt(2 * 3.0 * remaining))
        if self.jammed(v.lane, t) and v.s >= self.view[v.lane][1] - 4.0:
            # a bottleneck downstream: its traffic creeps in stop-and-go waves and the queue
            # grows back upstream through the car-following of everyone behind
            return 1.2 + 1.2 * math.sin(2 * math.pi * (t / 7.0 + v.id * 0.37))
        return v.desired


# --- rendering -------------------------------------------------------------------------------


class _Painter:
    """Draws the static background once, then vehicles, shadows, occluders, light and noise."""

    def __init__(self, scenario: Scenario, camera: _Camera, road: _Road, rng: np.random.Generator):
        self.sc, self.cam, self.road = scenario, camera, road
        self.background = self._background(rng)
        self.rng = rng
        self.noise: dict[float, list[NDArray[np.int16]]] = {}
        # low sun along the road, slightly from the camera's side: shadows stretch along the
        # lane (a shadow across lanes would put a far vehicle's blob foot in a near lane)
        self.sun = (road.axis * 0.8 + road.normal * 0.15) * scenario.shadow_length

    def _background(self, rng: np.random.Generator) -> NDArray[np.uint8]:
        w, h = self.cam.w, self.cam.h
        img = np.empty((h, w, 3), dtype=np.uint8)
        img[:] = (70, 110, 85)  # verge grass
        coarse = rng.normal(0, 6, (h // 4 + 1, w // 4 + 1)).astype(np.float32)
        grain = np.asarray(cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR), dtype=np.float32)
        cv2.fillPoly(img, [self._strip(-HALF_ROAD - 3.0, HALF_ROAD + 3.0)], (150, 152, 155))  # sidewalks
        cv2.fillPoly(img, [self._strip(-HALF_ROAD, HALF_ROAD)], (92, 94, 96))  # asphalt
        cv2.fillPoly(img, [self._strip(-MEDIAN / 2, MEDIAN / 2)], (160, 160, 158))  # median kerb
        cv2.fillPoly(img, [self._strip(-MEDIAN / 2 + 0.3, MEDIAN / 2 - 0.3)], (70, 112, 80))  # median grass
        img = np.clip(img.astype(np.float32) + grain[..., None], 0, 255).astype(np.uint8)
        self._markings(img)
        return img

    def _strip(
        self, lo: float, hi: float, a0: float | None = None, a1: float | None = None
    ) -> NDArray[np.int32]:
        """Image polygon of the ground strip between offsets lo..hi, along a0..a1."""
        span = self.road.span(self.cam)
        a0 = span[0] if a0 is None else max(a0, span[0])
        a1 = span[1] if a1 is None else min(a1, span[1])
        pts = [self.road.at(a0, lo), self.road.at(a1, lo), self.road.at(a1, hi), self.road.at(a0, hi)]
        return self.cam.project(np.array(pts)).astype(np.int32)

    def _markings(self, img: NDArray[np.uint8]) -> None:
        # lane lines dashed (3 m paint, 6 m gap)
        a0, a1 = self.road.span(self.cam)
        for lat in (-LANE_WIDTH - MEDIAN / 2, LANE_WIDTH + MEDIAN / 2):
            for a in np.arange(a0, a1 - 3.0, 9.0):
                cv2.fillPoly(
                    img, [self._strip(lat - 0.08, lat + 0.08, float(a), float(a) + 3.0)], (200, 200, 196)
                )

    def _corners(self, v: _Vehicle) -> NDArray[np.float64]:
        """Projected corners, 4 each: footprint, waist (0.9 m), roof, shadow (frame pixels)."""
        centre = self.road.point(v.lane, v.s)
        head = self.road.heading(v.lane, v.wrong_way)
        side = np.array([-head[2], 0.0, head[0]])
        signs = np.array([(1, 1), (1, -1), (-1, -1), (-1, 1)], dtype=np.float64)
        ground = (
            centre + np.outer(signs[:, 0] * v.length / 2, head) + np.outer(signs[:, 1] * v.width / 2, side)
        )
        up = np.array([0.0, 1.0, 0.0])
        waist = ground + up * min(0.9, 0.6 * v.height)
        if v.kind in ("car", "suv"):  # a cabin shorter than the body, set back a little
            roof = centre + (ground - centre) * np.array([0.55, 1.0, 0.55]) + up * v.height - head * 0.3
        else:
            roof = ground + up * v.height
        shadow = ground + self.sun * v.height
        return self.cam.project(np.vstack([ground, waist, roof, shadow]))

    def draw(
        self, vehicles: list[_Vehicle], t: float
    ) -> tuple[NDArray[np.uint8], dict[int, tuple[float, float, float, float]]]:
        img = self.background.copy()
        # nearly level with the camera's foot: outside the frame, and a pinhole would flip it
        depth = {v.id: self.cam.depth(self.road.point(v.lane, v.s)) for v in vehicles}
        order = sorted((v for v in vehicles if depth[v.id] > 6.0), key=lambda v: -depth[v.id])
        points = {v.id: self._corners(v) for v in order}
        shade = np.zeros(img.shape[:2], dtype=np.uint8)
        for v in order:
            p = points[v.id]
            cv2.fillConvexPoly(shade, cv2.convexHull(np.vstack([p[0:4], p[12:16]]).astype(np.int32)), (1,))
        dark = shade > 0
        img[dark] = (img[dark] * 0.55).astype(np.uint8)
        boxes = {}
        for v in order:
            p = points[v.id].astype(np.int32)
            ground, waist, roof = p[0:4], p[4:8], p[8:12]
            body = cv2.convexHull(np.vstack([ground, waist]))
            cv2.fillConvexPoly(img, body, tuple(int(c * 0.72) for c in v.colour), lineType=cv2.LINE_AA)
            glass = cv2.convexHull(np.vstack([waist, roof]))
            cv2.fillConvexPoly(img, glass, (48, 46, 44), lineType=cv2.LINE_AA)  # tinted glass
            cv2.fillConvexPoly(img, roof, v.colour, lineType=cv2.LINE_AA)
            x, y, w, h = cv2.boundingRect(np.vstack([ground, roof]))
            boxes[v.id] = (float(x), float(y), float(x + w), float(y + h))
        self._occluders(img)
        return self._expose(img, t), boxes

    def _occluders(self, img: NDArray[np.uint8]) -> None:
        scale = self.cam.w / 640
        base, top = self.cam.project(np.array([[-3.0, 0.0, 22.5], [-3.0, 9.0, 22.5]])).astype(np.int32)
        cv2.line(img, tuple(base), tuple(top), (55, 58, 60), max(2, round(5 * scale)), cv2.LINE_AA)
        sign = self.cam.project(
            np.array([[-3.0, 6.0, 22.5], [-1.2, 6.0, 22.5], [-1.2, 4.8, 22.5], [-3.0, 4.8, 22.5]])
        )
        cv2.fillConvexPoly(img, sign.astype(np.int32), (120, 70, 20), lineType=cv2.LINE_AA)
        trunk_base, trunk_top = self.cam.project(np.array([[12.0, 0.0, 19.0], [12.0, 4.0, 19.0]])).astype(
            np.int32
        )
        cv2.line(
            img, tuple(trunk_base), tuple(trunk_top), (30, 45, 60), max(2, round(6 * scale)), cv2.LINE_AA
        )
        crown = self.cam.project(np.array([[12.0, 5.5, 19.0]]))[0].astype(np.int32)
        cv2.ellipse(
            img,
            tuple(crown),
            (round(48 * scale), round(34 * scale)),
            0,
            0,
            360,
            (40, 85, 45),
            -1,
            cv2.LINE_AA,
        )

    def _expose(self, img: NDArray[np.uint8], t: float) -> NDArray[np.uint8]:
        sc = self.sc
        start, end = sc.light
        gain = start + (end - start) * min(1.0, t / max(sc.seconds, 1e-9))
        if sc.cloud_at is not None:
            gain *= 1.0 - 0.25 * math.exp(-(((t - sc.cloud_at) / 4.0) ** 2))
        sigma = sc.noise_sigma / max(gain, 0.3) ** 0.5  # low light is noisier
        out = cv2.convertScaleAbs(img, alpha=gain) if abs(gain - 1.0) > 1e-3 else img
        noise = self._noise(sigma)[int(self.rng.integers(12))]
        return np.asarray(cv2.add(out, noise, dtype=cv2.CV_8U), dtype=np.uint8)

    def _noise(self, sigma: float) -> list[NDArray[np.int16]]:
        """A pool of sensor-noise fields per noise level (0.5 steps): drawing a fresh Gaussian
        field every frame would cost more than all of the perception it tests."""
        level = round(sigma * 2) / 2
        if level not in self.noise:
            shape = (self.cam.h, self.cam.w, 3)
            self.noise[level] = [self.rng.normal(0, level, shape).round().astype(np.int16) for _ in range(12)]
        return self.noise[level]


# --- the run ---------------------------------------------------------------------------------


class _Truth:
    """Builds the ground-truth incidents from what the scene really did."""

    def __init__(self, zones: CameraZones, start_time: float, view: dict[str, tuple[float, float]]):
        self.zones, self.t0, self.view = zones, start_time, view
        self.open: dict[tuple[str, str, int | None], GroundTruthIncident] = {}
        self.done: list[GroundTruthIncident] = []
        self.staged: dict[int, str] = {}
        self.jam_state: dict[str, tuple[float | None, float | None]] = {}

    def vehicle(self, v: _Vehicle, box: tuple[float, float, float, float] | None, t: float) -> None:
        kind = self.staged.get(v.id)
        if kind is None or box is None:
            return
        foot = ((box[0] + box[2]) / 2, box[3])
        key = (kind, v.lane, v.id)
        active = (kind == "wrong_way" and self.zones.lane_at(foot) is not None) or (
            kind == "stopped_vehicle" and v.stopped_since is not None and not v.done_stopping
        )
        # a staged vehicle is one incident from first to last active frame (clipping at the
        # frame edge may hide its foot for a moment)
        if active and key not in self.open:
            start = v.stopped_since if kind == "stopped_vehicle" and v.stopped_since is not None else t
            self.open[key] = GroundTruthIncident(kind, v.lane, self.t0 + start, self.t0 + t, foot, v.id)
        elif active:
            self.open[key].end = self.t0 + t

    def lane(
        self,
        lane: str,
        vehicles: list[_Vehicle],
        boxes: dict[int, tuple[float, float, float, float]],
        t: float,
    ) -> None:
        """A lane is truly congested while its in-view vehicles crawl (< 3 m/s) and cover
        at least 40 % of its length; the episode starts when both first hold."""
        seen = [v for v in vehicles if v.lane == lane and v.id in boxes and not v.wrong_way]
        seen = [
            v for v in seen if self.zones.lane_at(((boxes[v.id][0] + boxes[v.id][2]) / 2, boxes[v.id][3]))
        ]
        covered = sum(v.length + 2.0 for v in seen) / (self.view[lane][1] - self.view[lane][0])
        speed = sum(v.v for v in seen) / len(seen) if seen else None
        key = ("congestion", lane, None)
        jammed = speed is not None and speed < 3.0 and covered >= 0.4
        free = speed is None or speed > 5.0 or covered < 0.2
        if jammed and key not in self.open:
            poly = next(ln for ln in self.zones.lanes if ln.name == lane).polygon
            centre = (sum(p[0] for p in poly) / len(poly), sum(p[1] for p in poly) / len(poly))
            self.open[key] = GroundTruthIncident("congestion", lane, self.t0 + t, self.t0 + t, centre)
        elif key in self.open and not free:
            self.open[key].end = self.t0 + t
        elif key in self.open:
            self.done.append(self.open.pop(key))

    def finish(self) -> list[GroundTruthIncident]:
        return sorted(self.done + list(self.open.values()), key=lambda i: (i.start, i.type, i.lane))


def render(
    scenario: Scenario,
) -> Iterator[tuple[int, float, NDArray[np.uint8], dict[int, tuple[float, float, float, float]]]]:
    """Frames with the true box of every vehicle in view; see `frames` for the plain feed."""
    run = SceneRun(scenario, zones=scene_zones(scenario))
    yield from _render(scenario, run)


def _render(
    scenario: Scenario, run: SceneRun
) -> Iterator[tuple[int, float, NDArray[np.uint8], dict[int, tuple[float, float, float, float]]]]:
    rng = np.random.default_rng(scenario.seed)
    camera, road = _Camera(scenario.size), _Road()
    traffic, painter = _Traffic(scenario, road, camera, rng), _Painter(scenario, camera, road, rng)
    truth = _Truth(run.zones, scenario.start_time, traffic.view)
    dt = 1.0 / scenario.fps
    # a short pre-roll so the road already carries traffic when the camera starts
    for k in range(int(20 * scenario.fps)):
        traffic.step(-20.0 + k * dt, dt)
    total = round(scenario.seconds * scenario.fps)
    for index in range(total):
        t = index * dt
        for v in traffic.step(t, dt):
            truth.staged[v.id] = "stopped_vehicle" if v.stop_at is not None else "wrong_way"
        image, boxes = painter.draw(traffic.vehicles, t)
        clipped = {vid: _clip(b, scenario.size) for vid, b in boxes.items()}
        visible = {vid: b for vid, b in clipped.items() if b is not None}
        for v in traffic.vehicles:
            truth.vehicle(v, visible.get(v.id), t)
        for lane in road.names:
            truth.lane(lane, traffic.vehicles, visible, t)
        run.incidents = truth.finish()
        run.vehicles_spawned = traffic.next_id - 1
        yield index, scenario.start_time + t, image, visible


def _clip(
    box: tuple[float, float, float, float], size: tuple[int, int]
) -> tuple[float, float, float, float] | None:
    x1, y1, x2, y2 = (
        max(0.0, box[0]),
        max(0.0, box[1]),
        min(float(size[0]), box[2]),
        min(float(size[1]), box[3]),
    )
    return (x1, y1, x2, y2) if x2 - x1 >= 2 and y2 - y1 >= 2 else None


def scene_zones(scenario: Scenario) -> CameraZones:
    """The lanes exactly as the scene draws them, for frames of the scenario's size."""
    return _zones(_Camera(scenario.size), _Road(), scenario.camera)


def frames(scenario: Scenario, run: SceneRun | None = None) -> Iterator[tuple[int, float, NDArray[np.uint8]]]:
    """(frame_index, capture time, BGR frame); `run` collects the ground truth as it goes."""
    run = run or SceneRun(scenario, zones=scene_zones(scenario))
    for index, t, image, _ in _render(scenario, run):
        yield index, t, image


def write_ground_truth(run: SceneRun, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(run.to_json(), indent=1))
    tmp.replace(path)


def write_video(
    scenario: Scenario,
    path: Path,
    size: tuple[int, int] = (1280, 720),
    fps: float = 10.0,
    seconds: float | None = None,
    *,
    codec: str = "libx264",
) -> SceneRun:
    """Render the scenario into an H.264 file (yuv420p) plus `<path>.truth.json` beside it."""
    import av

    sc = replace(scenario, size=size, fps=fps, seconds=seconds if seconds is not None else scenario.seconds)
    run = SceneRun(sc, zones=scene_zones(sc))
    tmp = path.with_name(path.name + ".part")
    with av.open(str(tmp), mode="w", format=path.suffix.lstrip(".") or "mp4") as container:
        stream = container.add_stream(codec, rate=round(fps))
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23", "g": str(round(fps * 2))}
        for _, _, image in frames(sc, run):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)
    write_ground_truth(run, path.with_name(path.name + ".truth.json"))
    return run
