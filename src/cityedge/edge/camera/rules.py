"""Incident rules for one camera: stopped vehicle, wrong way, congestion, and lane counts.

Pure: the engine takes the tracks of one frame (with its capture time) and returns what
happened; no clock, no I/O, no image code. Each incident type has a cooldown so one
incident is one event.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from cityedge.edge.camera.zones import CameraZones, Lane
from cityedge.protocol.errors import ConfigError
from cityedge.protocol.vision import CongestionChange, FrameTracks, Incident, LaneCount, TrackState

__all__ = ["RuleConfig", "RuleEngine", "RuleOutput"]

Point = tuple[float, float]


class RuleConfig(BaseModel):
    """Thresholds of the rules. Speeds and distances are in pixels of the camera's frames."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_hits: int = Field(3, ge=1, description="track confirmations before any rule looks at it")
    stopped_after_s: float = Field(10.0, gt=0, description="dwell while stationary before an incident")
    stopped_speed_px_s: float = Field(4.0, gt=0, description="mean foot speed under which a vehicle is still")
    stopped_probe_s: float = Field(2.0, gt=0, description="span the stationary speed is measured over")
    stopped_cooldown_s: float = Field(60.0, ge=0)
    stopped_min_travel_px: float = Field(
        20.0, ge=0, description="a vehicle must have arrived moving: still since first seen is not stopping"
    )
    wrong_way_min_travel_px: float = Field(30.0, gt=0)
    wrong_way_min_s: float = Field(1.0, ge=0, description="minimum time in the lane before judging")
    wrong_way_max_cos: float = Field(-0.5, ge=-1, le=0, description="cos(travel, lane direction) at most")
    wrong_way_cooldown_s: float = Field(20.0, ge=0)
    congestion_window_s: float = Field(4.0, gt=0, description="window the occupancy and speed average over")
    congestion_occupancy_on: float = Field(0.30, gt=0)
    congestion_occupancy_off: float = Field(0.15, ge=0)
    congestion_speed_on_px_s: float = Field(15.0, gt=0)
    congestion_speed_off_px_s: float = Field(30.0, gt=0)
    congestion_after_s: float = Field(10.0, ge=0, description="the window must say congested this long")
    congestion_clear_s: float = Field(10.0, ge=0, description="... and not congested this long to clear")
    congestion_cooldown_s: float = Field(60.0, ge=0)
    count_window_s: float = Field(60.0, gt=0)
    forget_after_s: float = Field(5.0, gt=0, description="drop a track's memory after this long unseen")


@dataclass(frozen=True)
class RuleOutput:
    incidents: list[Incident] = field(default_factory=list)
    counts: list[LaneCount] = field(default_factory=list)
    congestion: list[CongestionChange] = field(default_factory=list)


@dataclass
class _TrackMemory:
    lane: str | None = None
    origin: Point | None = None
    moved: bool = False
    lane_anchor: tuple[float, Point] | None = None
    history: deque[tuple[float, Point]] = field(default_factory=deque)
    still_since: float | None = None
    reported: set[str] = field(default_factory=set)
    last_seen: float = 0.0


@dataclass
class _LaneState:
    samples: deque[tuple[float, float, list[float]]] = field(default_factory=deque)
    on_since: float | None = None
    off_since: float | None = None
    congested: bool = False
    last_incident: dict[str, float] = field(default_factory=dict)
    entered: int = 0
    speeds: list[float] = field(default_factory=list)


class RuleEngine:
    """Feed it each frame's tracks in capture order; it keeps the little state the rules need."""

    def __init__(self, zones: CameraZones, config: RuleConfig | None = None) -> None:
        self.zones = zones
        self.config = config or RuleConfig()
        self._tracks: dict[int, _TrackMemory] = {}
        self._lanes = {lane.name: _LaneState() for lane in zones.lanes}
        self._window_start: float | None = None

    def step(self, frame: FrameTracks) -> RuleOutput:
        if frame.camera != self.zones.camera:
            raise ConfigError(f"rules of camera {self.zones.camera!r} got a frame of camera {frame.camera!r}")
        t = frame.captured_at
        out = RuleOutput()
        out.counts.extend(self._close_count_window(t))
        occupancy: dict[str, float] = {name: 0.0 for name in self._lanes}
        speeds: dict[str, list[float]] = {name: [] for name in self._lanes}
        for track in frame.tracks:
            if track.hits < self.config.min_hits:
                continue
            lane = self.zones.lane_at(track.box.foot)
            memory = self._remember(track, lane, t)
            if lane is None:
                continue
            occupancy[lane.name] += track.box.area / max(lane.area, 1.0)
            speeds[lane.name].append(math.hypot(*track.velocity))
            out.incidents.extend(self._judge_track(frame.camera, track, lane, memory, t))
        for lane in self.zones.lanes:
            self._judge_lane(frame.camera, lane, t, occupancy[lane.name], speeds[lane.name], out)
        self._forget(t)
        return out

    # --- per track -------------------------------------------------------------------------

    def _remember(self, track: TrackState, lane: Lane | None, t: float) -> _TrackMemory:
        memory = self._tracks.setdefault(track.track_id, _TrackMemory())
        foot = track.box.foot
        memory.last_seen = t
        memory.history.append((t, foot))
        if memory.origin is None:
            memory.origin = foot
        memory.moved = memory.moved or math.dist(memory.origin, foot) >= self.config.stopped_min_travel_px
        while len(memory.history) > 2 and memory.history[1][0] <= t - self.config.stopped_probe_s:
            memory.history.popleft()
        name = lane.name if lane else None
        if name != memory.lane:
            memory.lane = name
            memory.lane_anchor = (t, foot) if name else None
            if name:
                state = self._lanes[name]
                state.entered += 1
        return memory

    def _judge_track(
        self, camera: str, track: TrackState, lane: Lane, memory: _TrackMemory, t: float
    ) -> list[Incident]:
        found = []
        stopped = self._stopped(camera, track, lane, memory, t)
        if stopped:
            found.append(stopped)
        wrong = self._wrong_way(camera, track, lane, memory, t)
        if wrong:
            found.append(wrong)
        return found

    def _is_still(self, memory: _TrackMemory, t: float) -> bool | None:
        """Whether the foot moved slower than the threshold over the probe span (None: too early)."""
        t0, p0 = memory.history[0]
        span = t - t0
        if span < 0.75 * self.config.stopped_probe_s:
            return None
        _, p1 = memory.history[-1]
        return math.dist(p0, p1) / span < self.config.stopped_speed_px_s

    def _stopped(
        self, camera: str, track: TrackState, lane: Lane, memory: _TrackMemory, t: float
    ) -> Incident | None:
        still = self._is_still(memory, t)
        if still is None:
            return None
        if not still:
            memory.still_since = None
            return None
        if memory.still_since is None:
            memory.still_since = memory.history[0][0]
        state = self._lanes[lane.name]
        if (
            not memory.moved  # a still blob since it appeared: a ghost or a parked car, not a stop
            or t - memory.still_since < self.config.stopped_after_s
            or "stopped_vehicle" in memory.reported
            or state.congested
            or state.on_since is not None  # a queue forming: still vehicles are congestion, not incidents
            or not self._cooled(state, "stopped_vehicle", t, self.config.stopped_cooldown_s)
        ):
            return None
        memory.reported.add("stopped_vehicle")
        state.last_incident["stopped_vehicle"] = t
        return Incident(
            type="stopped_vehicle",
            camera=camera,
            lane=lane.name,
            started_at=memory.still_since,
            detected_at=t,
            position=track.box.foot,
            track_id=track.track_id,
            details={"dwell_s": round(t - memory.still_since, 3)},
        )

    def _wrong_way(
        self, camera: str, track: TrackState, lane: Lane, memory: _TrackMemory, t: float
    ) -> Incident | None:
        if lane.direction is None or memory.lane_anchor is None or "wrong_way" in memory.reported:
            return None
        t0, p0 = memory.lane_anchor
        foot = track.box.foot
        dx, dy = foot[0] - p0[0], foot[1] - p0[1]
        travel = math.hypot(dx, dy)
        if t - t0 < self.config.wrong_way_min_s or travel < self.config.wrong_way_min_travel_px:
            return None
        cos = (dx * lane.direction[0] + dy * lane.direction[1]) / travel
        state = self._lanes[lane.name]
        if cos > self.config.wrong_way_max_cos or not self._cooled(
            state, "wrong_way", t, self.config.wrong_way_cooldown_s
        ):
            return None
        memory.reported.add("wrong_way")
        state.last_incident["wrong_way"] = t
        return Incident(
            type="wrong_way",
            camera=camera,
            lane=lane.name,
            started_at=t0,
            detected_at=t,
            position=foot,
            track_id=track.track_id,
            details={"travel_px": round(travel, 1), "cos": round(cos, 3)},
        )

    # --- per lane --------------------------------------------------------------------------

    def _judge_lane(
        self, camera: str, lane: Lane, t: float, occupancy: float, speeds: list[float], out: RuleOutput
    ) -> None:
        state = self._lanes[lane.name]
        state.speeds.extend(speeds)
        window = self._window(state, t, min(occupancy, 1.0), speeds)
        if window is None:
            return
        occ, speed = window
        cfg = self.config
        if not state.congested:
            jammed = (
                speed is not None
                and occ >= cfg.congestion_occupancy_on
                and speed <= cfg.congestion_speed_on_px_s
            )
            state.on_since = (state.on_since if state.on_since is not None else t) if jammed else None
            if state.on_since is not None and t - state.on_since >= cfg.congestion_after_s:
                self._turn(camera, lane, state, True, t, occ, speed, out)
            return
        free = speed is None or occ < cfg.congestion_occupancy_off or speed > cfg.congestion_speed_off_px_s
        state.off_since = (state.off_since if state.off_since is not None else t) if free else None
        if state.off_since is not None and t - state.off_since >= cfg.congestion_clear_s:
            self._turn(camera, lane, state, False, t, occ, speed, out)

    def _window(
        self, state: _LaneState, t: float, occupancy: float, speeds: list[float]
    ) -> tuple[float, float | None] | None:
        """Mean occupancy and mean track speed over the window (None until the window is full)."""
        state.samples.append((t, occupancy, speeds))
        while state.samples[0][0] < t - self.config.congestion_window_s:
            state.samples.popleft()
        if t - state.samples[0][0] < 0.75 * self.config.congestion_window_s:
            return None
        occ = sum(s[1] for s in state.samples) / len(state.samples)
        all_speeds = [v for s in state.samples for v in s[2]]
        return occ, (sum(all_speeds) / len(all_speeds) if all_speeds else None)

    def _turn(
        self,
        camera: str,
        lane: Lane,
        state: _LaneState,
        congested: bool,
        t: float,
        occ: float,
        speed: float | None,
        out: RuleOutput,
    ) -> None:
        mean_speed = round(speed, 2) if speed is not None else 0.0
        out.congestion.append(CongestionChange(camera, lane.name, congested, t, round(occ, 3), mean_speed))
        started = state.on_since if congested else None
        state.congested, state.on_since, state.off_since = congested, None, None
        if not congested or started is None:
            return
        if self._cooled(state, "congestion", t, self.config.congestion_cooldown_s):
            state.last_incident["congestion"] = t
            out.incidents.append(
                Incident(
                    type="congestion",
                    camera=camera,
                    lane=lane.name,
                    started_at=started,
                    detected_at=t,
                    position=_centroid(lane),
                    details={"occupancy": round(occ, 3), "mean_speed_px_s": mean_speed},
                )
            )

    @staticmethod
    def _cooled(state: _LaneState, kind: str, t: float, cooldown: float) -> bool:
        last = state.last_incident.get(kind)
        return last is None or t - last >= cooldown

    # --- counts and housekeeping -------------------------------------------------------------

    def _close_count_window(self, t: float) -> list[LaneCount]:
        size = self.config.count_window_s
        start = math.floor(t / size) * size
        if self._window_start is None:
            self._window_start = start
            return []
        if start <= self._window_start:
            return []
        counts = []
        for name, state in self._lanes.items():
            mean = sum(state.speeds) / len(state.speeds) if state.speeds else None
            counts.append(
                LaneCount(
                    camera=self.zones.camera,
                    lane=name,
                    window_start=self._window_start,
                    window_end=self._window_start + size,
                    count=state.entered,
                    mean_speed_px_s=round(mean, 2) if mean is not None else None,
                )
            )
            state.entered, state.speeds = 0, []
        self._window_start = start
        return counts

    def _forget(self, t: float) -> None:
        stale = [tid for tid, m in self._tracks.items() if t - m.last_seen > self.config.forget_after_s]
        for tid in stale:
            del self._tracks[tid]


def _centroid(lane: Lane) -> Point:
    xs = [p[0] for p in lane.polygon]
    ys = [p[1] for p in lane.polygon]
    return (sum(xs) / len(xs), sum(ys) / len(ys))
