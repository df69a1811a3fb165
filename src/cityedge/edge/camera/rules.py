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
    """Thresholds of the rules. Pixel speeds and distances (`*_px`, `*_px_s`) suit frames about
    640 px wide: use `scaled(width / 640)` for other sizes. Queue speed is in box heights per
    second and occupancy is a ratio, so neither depends on the frame size or the distance."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_hits: int = Field(3, ge=1, description="track confirmations before any rule looks at it")
    foot_lift: float = Field(
        0.1,
        ge=0,
        le=0.5,
        description="lanes are judged this fraction of the box height above its bottom centre: the"
        " bottom edge of an obliquely seen tall vehicle (or its shadow) lies past its lane line",
    )
    stopped_after_s: float = Field(10.0, gt=0, description="dwell while stationary before an incident")
    stopped_speed_px_s: float = Field(4.0, gt=0, description="mean foot speed under which a vehicle is still")
    stopped_probe_s: float = Field(2.0, gt=0, description="span the stationary speed is measured over")
    stopped_cooldown_s: float = Field(30.0, ge=0)
    stopped_spot_px: float = Field(
        15.0, gt=0, description="a still track this close to a known still spot is the same vehicle"
    )
    stopped_min_travel_px: float = Field(
        20.0, ge=0, description="a vehicle must have arrived moving: still since first seen is not stopping"
    )
    wrong_way_min_travel_px: float = Field(90.0, gt=0)
    wrong_way_min_s: float = Field(0.7, ge=0, description="how long a track must keep going the wrong way")
    wrong_way_min_speed_px_s: float = Field(20.0, ge=0, description="slower is not driving, either way")
    wrong_way_max_cos: float = Field(-0.5, ge=-1, le=0, description="cos(travel, lane direction) at most")
    wrong_way_cooldown_s: float = Field(20.0, ge=0)
    congestion_window_s: float = Field(4.0, gt=0, description="window the occupancy and speed average over")
    congestion_occupancy_on: float = Field(0.35, gt=0, description="boxes' area over the lane's area")
    congestion_occupancy_off: float = Field(0.25, ge=0)
    # queue speeds in box heights per second: a vehicle's box height shrinks with distance as
    # its pixel speed does, so one threshold holds for near and far lanes alike
    congestion_speed_on_hps: float = Field(1.5, gt=0, description="mean speed, box heights per second")
    congestion_speed_off_hps: float = Field(2.5, gt=0)
    congestion_min_vehicles: float = Field(2.0, ge=0, description="mean tracks in the lane over the window")
    congestion_after_s: float = Field(10.0, ge=0, description="the window must say congested this long")
    congestion_grace_s: float = Field(2.0, ge=0, description="lapses this short do not restart the count")
    congestion_clear_s: float = Field(10.0, ge=0, description="... and not congested this long to clear")
    congestion_cooldown_s: float = Field(60.0, ge=0)
    count_window_s: float = Field(60.0, gt=0)
    forget_after_s: float = Field(5.0, gt=0, description="drop a track's memory after this long unseen")

    def scaled(self, factor: float) -> RuleConfig:
        """The same rules for frames `factor` times as wide (pixel thresholds scale)."""
        names = [n for n in type(self).model_fields if n.endswith(("_px", "_px_s"))]
        return self.model_copy(update={n: getattr(self, n) * factor for n in names})


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
    against: tuple[float, Point, float] | None = None  # wrong way since when, from where, box height
    history: deque[tuple[float, Point]] = field(default_factory=deque)
    still_since: float | None = None
    reported: set[str] = field(default_factory=set)
    last_seen: float = 0.0
    velocity: Point = (0.0, 0.0)
    height: float = 0.0  # box height in the latest frame, and the frame before
    before: tuple[Point, float] | None = None
    hits: int = 0
    last_hit: float = 0.0  # when the tracker last matched it to a detection (not coasting)


@dataclass
class _Spot:
    """Where a vehicle stands still: survives the tracker handing it a new id (occlusion)."""

    lane: str
    position: Point
    since: float
    last: float
    reported: bool = False


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
        self._spots: list[_Spot] = []
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
        px_speeds: dict[str, list[float]] = {name: [] for name in self._lanes}
        for track in frame.tracks:
            if track.hits < self.config.min_hits:
                continue
            box = track.box
            lane = self.zones.lane_at((box.foot[0], box.y2 - self.config.foot_lift * (box.y2 - box.y1)))
            memory = self._remember(track, lane, t)
            if lane is None:
                continue
            occupancy[lane.name] += track.box.area / max(lane.area, 1.0)
            px_speeds[lane.name].append(math.hypot(*track.velocity))
            speeds[lane.name].append(px_speeds[lane.name][-1] / max(box.y2 - box.y1, 1.0))
            out.incidents.extend(self._judge_track(frame.camera, track, lane, memory, t))
        for lane in self.zones.lanes:
            self._lanes[lane.name].speeds.extend(px_speeds[lane.name])
            self._judge_lane(frame.camera, lane, t, occupancy[lane.name], speeds[lane.name], out)
        self._forget(t)
        return out

    # --- per track -------------------------------------------------------------------------

    def _remember(self, track: TrackState, lane: Lane | None, t: float) -> _TrackMemory:
        foot = track.box.foot
        memory = self._tracks.get(track.track_id)
        if memory is None:
            memory = self._tracks[track.track_id] = self._handed_over(foot, t)
        if track.hits != memory.hits:
            memory.hits, memory.last_hit = track.hits, t
        memory.velocity = track.velocity
        if memory.history:
            memory.before = (memory.history[-1][1], memory.height)
        memory.height = track.box.y2 - track.box.y1
        memory.last_seen = t
        memory.history.append((t, foot))
        if memory.origin is None:
            memory.origin = foot
        memory.moved = memory.moved or math.dist(memory.origin, foot) >= self.config.stopped_min_travel_px
        while len(memory.history) > 2 and memory.history[1][0] <= t - self.config.stopped_probe_s:
            memory.history.popleft()
        name = lane.name if lane else None
        if name != memory.lane:
            memory.lane, memory.against = name, None
            if name:
                self._lanes[name].entered += 1
        return memory

    def _handed_over(self, foot: Point, t: float) -> _TrackMemory:
        """Memory for a new track. When a track was just lost where this one appears (an
        occlusion made the tracker start afresh), the vehicle is the same: it keeps having
        arrived moving, which the stopped rule requires."""
        near = [
            m
            for m in self._tracks.values()
            if m.history and math.dist(m.history[-1][1], foot) <= 2 * self.config.stopped_spot_px
        ]
        memory = _TrackMemory(moved=any(m.moved for m in near))
        heir = self._fragment_of(foot, t)
        if heir is not None:
            # the tracker split one vehicle's path in two (a merge with a neighbour): carry on
            # judging the same drive, and do not report it twice
            memory.lane, memory.against = heir.lane, heir.against
            memory.reported = set(heir.reported)
        return memory

    def _fragment_of(self, foot: Point, t: float) -> _TrackMemory | None:
        """The track, unmatched for under a second, whose path leads to `foot` now."""
        best, best_d = None, 2 * self.config.stopped_spot_px
        for m in self._tracks.values():
            if not m.history or not 0 < t - m.last_hit <= 1.0:
                continue
            dt = t - m.history[-1][0]
            x, y = m.history[-1][1]
            d = math.dist((x + m.velocity[0] * dt, y + m.velocity[1] * dt), foot)
            if d <= best_d:
                best, best_d = m, d
        return best

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

    # --- stopped vehicle ---------------------------------------------------------------------

    def _is_still(self, memory: _TrackMemory, t: float) -> bool | None:
        """Whether the foot moved slower than the threshold over the probe span (None: too early)."""
        t0, p0 = memory.history[0]
        span = t - t0
        if span < 0.75 * self.config.stopped_probe_s:
            return None
        _, p1 = memory.history[-1]
        return math.dist(p0, p1) / span < self.config.stopped_speed_px_s

    def _spot(self, lane: str, foot: Point, t: float) -> _Spot | None:
        """The known still spot at `foot`, confirmed at `t` (None: there is none)."""
        self._spots = [s for s in self._spots if t - s.last <= self.config.forget_after_s]
        for spot in self._spots:
            if spot.lane == lane and math.dist(spot.position, foot) <= self.config.stopped_spot_px:
                spot.position, spot.last = foot, t
                return spot
        return None

    def _stopped(
        self, camera: str, track: TrackState, lane: Lane, memory: _TrackMemory, t: float
    ) -> Incident | None:
        still = self._is_still(memory, t)
        if not still:
            if still is False:
                memory.still_since = None
            return None
        if memory.still_since is None:
            memory.still_since = memory.history[0][0]
        spot = self._spot(lane.name, track.box.foot, t)
        if spot is None:
            if not memory.moved:
                return None  # still since it appeared: a ghost or a parked car, not a vehicle stopping
            spot = _Spot(lane.name, track.box.foot, memory.still_since, t)
            self._spots.append(spot)
        # a track that appeared on a known spot (the old one was lost to an occlusion) is the
        # same vehicle: the spot keeps the earliest time it was seen still
        spot.since = min(spot.since, memory.still_since)
        state = self._lanes[lane.name]
        if state.congested:
            spot.reported = True  # still in a queue: part of the congestion, not an incident
            return None
        if state.on_since is not None:
            return None  # a queue may be forming: wait and see
        if (
            t - spot.since < self.config.stopped_after_s
            or spot.reported
            or not self._cooled(state, "stopped_vehicle", t, self.config.stopped_cooldown_s)
        ):
            return None
        spot.reported = True
        state.last_incident["stopped_vehicle"] = t
        return Incident(
            type="stopped_vehicle",
            camera=camera,
            lane=lane.name,
            started_at=spot.since,
            detected_at=t,
            position=track.box.foot,
            track_id=track.track_id,
            details={"dwell_s": round(t - spot.since, 3)},
        )

    # --- wrong way ---------------------------------------------------------------------------

    def _wrong_way(
        self, camera: str, track: TrackState, lane: Lane, memory: _TrackMemory, t: float
    ) -> Incident | None:
        if lane.direction is None or "wrong_way" in memory.reported:
            return None
        foot, height = track.box.foot, track.box.y2 - track.box.y1
        queue = self._lanes[lane.name]
        # in a queue, blobs of several cars shrink and grow at their ends, which moves a blob's
        # centre backwards without anyone driving backwards: no wrong-way judgement there
        if queue.congested or queue.on_since is not None or not self._against(lane.direction, track.velocity):
            memory.against = None
            return None
        if memory.against is None:
            memory.against = (t, foot, height)
            return None
        t0, p0, _ = memory.against
        if memory.before is not None and not 0.7 <= height / max(memory.before[1], 1.0) <= 1.43:
            # the blob merged with or split from a neighbour since the last frame, which moved
            # its foot without driving: that jump is not travel
            (bx, by), _ = memory.before
            p0 = (p0[0] + foot[0] - bx, p0[1] + foot[1] - by)
            memory.against = (t0, p0, height)
        dx, dy = foot[0] - p0[0], foot[1] - p0[1]
        travel = math.hypot(dx, dy)
        state = self._lanes[lane.name]
        if (
            t - t0 < self.config.wrong_way_min_s
            or travel < self.config.wrong_way_min_travel_px
            or not self._against(lane.direction, (dx, dy))
            or not self._cooled(state, "wrong_way", t, self.config.wrong_way_cooldown_s)
        ):
            return None
        memory.reported.add("wrong_way")
        state.last_incident["wrong_way"] = t
        cos = (dx * lane.direction[0] + dy * lane.direction[1]) / travel
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

    def _against(self, direction: Point, motion: Point, min_norm: float | None = None) -> bool:
        """Motion (a velocity or a displacement) clearly against the lane's direction."""
        norm = math.hypot(*motion)
        floor = self.config.wrong_way_min_speed_px_s if min_norm is None else min_norm
        if norm < max(floor, 1e-9):
            return False
        return (motion[0] * direction[0] + motion[1] * direction[1]) / norm <= self.config.wrong_way_max_cos

    # --- per lane --------------------------------------------------------------------------

    def _judge_lane(
        self, camera: str, lane: Lane, t: float, occupancy: float, speeds: list[float], out: RuleOutput
    ) -> None:
        state = self._lanes[lane.name]
        window = self._window(state, t, min(occupancy, 1.0), speeds)
        if window is None:
            return
        occ, speed, vehicles = window
        cfg = self.config
        if not state.congested:
            jammed = (
                speed is not None
                and vehicles >= cfg.congestion_min_vehicles
                and occ >= cfg.congestion_occupancy_on
                and speed <= cfg.congestion_speed_on_hps
            )
            if jammed:
                state.on_since = state.on_since if state.on_since is not None else t
                state.off_since = None
            elif state.on_since is not None:
                # a queue flickers around the thresholds as it forms: forgive short lapses
                state.off_since = state.off_since if state.off_since is not None else t
                if t - state.off_since > cfg.congestion_grace_s:
                    state.on_since = state.off_since = None
            if jammed and state.on_since is not None and t - state.on_since >= cfg.congestion_after_s:
                self._turn(camera, lane, state, True, t, occ, speed, out)
            return
        free = speed is None or occ < cfg.congestion_occupancy_off or speed > cfg.congestion_speed_off_hps
        state.off_since = (state.off_since if state.off_since is not None else t) if free else None
        if state.off_since is not None and t - state.off_since >= cfg.congestion_clear_s:
            self._turn(camera, lane, state, False, t, occ, speed, out)

    def _window(
        self, state: _LaneState, t: float, occupancy: float, speeds: list[float]
    ) -> tuple[float, float | None, float] | None:
        """Mean occupancy, mean track speed and mean track count over the window (None until
        the window is full)."""
        state.samples.append((t, occupancy, speeds))
        while state.samples[0][0] < t - self.config.congestion_window_s:
            state.samples.popleft()
        if t - state.samples[0][0] < 0.75 * self.config.congestion_window_s:
            return None
        occ = sum(s[1] for s in state.samples) / len(state.samples)
        all_speeds = [v for s in state.samples for v in s[2]]
        mean = sum(all_speeds) / len(all_speeds) if all_speeds else None
        return occ, mean, len(all_speeds) / len(state.samples)

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
                    details={"occupancy": round(occ, 3), "mean_speed_hps": mean_speed},
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
