"""Vehicles on the road: car following, spawning, and the staged incidents (stops, wrong way, jams)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cityedge.protocol.errors import ConfigError
from cityedge.sim.scene.geometry import ROAD_LENGTH, Camera, Road
from cityedge.sim.scene.model import Scenario

__all__ = ["Traffic", "Vehicle"]

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
class Vehicle:
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


class Traffic:
    """Lanes of vehicles with car following, spawning, and the staged incidents."""

    def __init__(self, scenario: Scenario, road: Road, camera: Camera, rng: np.random.Generator):
        self.sc, self.road, self.rng = scenario, road, rng
        self.view = {lane: road.visible(lane, camera) for lane in road.names}
        self.vehicles: list[Vehicle] = []
        self.next_id = 1
        self.next_arrival = {
            lane: float(rng.exponential(1 / scenario.arrivals_per_lane_s)) for lane in road.names
        }
        self.blocked: dict[str, list[tuple[float, float]]] = {lane: [] for lane in road.names}
        self.jams: dict[str, list[tuple[float, float]]] = {lane: [] for lane in road.names}
        self.pending = sorted((i for i in scenario.incidents if i.type != "parked"), key=lambda i: i.at)
        for inc in scenario.incidents:
            if inc.lane not in road.names:
                raise ConfigError(f"scenario {scenario.name}: incident lane {inc.lane!r} not in {road.names}")
            if inc.type == "wrong_way":
                self.blocked[inc.lane].append((inc.at - 14.0, inc.at + 12.0))
            elif inc.type == "stopped_vehicle":
                # nobody follows it in: a queue behind a stopped car would be congestion
                self.blocked[inc.lane].append((inc.at - 1.0, inc.at + inc.duration + 8.0))
            elif inc.type == "congestion":
                self.jams[inc.lane].append((inc.at, inc.at + inc.duration))
            elif inc.type == "parked":
                # the lane stays empty behind it, or its followers would queue
                self.blocked[inc.lane].append((-60.0, inc.at + 3.0))
                self._park(inc.lane, inc.at)
            else:
                raise ConfigError(f"scenario {scenario.name}: unknown incident type {inc.type!r}")

    def _park(self, lane: str, leaves: float) -> None:
        """A vehicle standing mid-view since long before the run, driving off at `leaves`."""
        s_in, s_out = self.view[lane]
        v = self._new(lane, s=s_in + float(self.rng.uniform(0.3, 0.7)) * (s_out - s_in), v=0.0)
        v.stop_at, v.stopped_since, v.stop_for = v.s, -100.0, leaves + 100.0

    def _new(self, lane: str, *, s: float = 0.0, v: float | None = None) -> Vehicle:
        weights = np.array([t[5] for t in _TYPES])
        kind, length, width, height, speed, _ = _TYPES[
            int(self.rng.choice(len(_TYPES), p=weights / weights.sum()))
        ]
        colour = _COLOURS[int(self.rng.integers(len(_COLOURS)))]
        desired = float(np.clip(self.rng.normal(speed, 1.2), 8.0, 15.0))
        vehicle = Vehicle(
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

    def step(self, t: float, dt: float) -> list[Vehicle]:
        """Advance to `t`; returns vehicles staged for incidents that started now."""
        staged = self._stage(t)
        for lane in self.road.names:
            self._spawn(lane, t)
        for lane in self.road.names:
            self._follow(lane, t, dt)
        self.vehicles = [v for v in self.vehicles if -15.0 <= v.s <= ROAD_LENGTH + 15.0]
        return staged

    def _stage(self, t: float) -> list[Vehicle]:
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
        leader: Vehicle | None = None
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

    def _target_speed(self, v: Vehicle, t: float) -> float:
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
