"""The rule engine of one camera: per frame, each confirmed track is placed in its lane,
counted at the count lines it crosses and judged by the track rules (stopped, wrong way);
then each lane by congestion; counts close per window. Pixel thresholds are scaled to the
zones' frame width once, here."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from cityedge.edge.camera.rules.config import RuleConfig
from cityedge.edge.camera.rules.congestion import Turn
from cityedge.edge.camera.rules.counts import Counter
from cityedge.edge.camera.rules.lanes import LaneState
from cityedge.edge.camera.rules.sizes import VehicleSizes
from cityedge.edge.camera.rules.stopped import StoppedRule
from cityedge.edge.camera.rules.tracks import VEHICLE_ASPECT, Point, TrackBook
from cityedge.edge.camera.rules.wrong_way import WrongWayRule
from cityedge.edge.camera.zones import CameraZones, Lane
from cityedge.protocol.errors import ConfigError
from cityedge.protocol.vision import CongestionChange, FrameTracks, Incident, LaneCount, TrackState

__all__ = ["RuleEngine", "RuleOutput"]

STOOD_LIFT = 0.3  # a vehicle standing still is judged this share of its box height above its bottom


@dataclass(frozen=True)
class RuleOutput:
    incidents: list[Incident] = field(default_factory=list)
    counts: list[LaneCount] = field(default_factory=list)
    congestion: list[CongestionChange] = field(default_factory=list)


class RuleEngine:
    """Feed it each frame's tracks in capture order; it keeps the little state the rules need."""

    def __init__(self, zones: CameraZones, config: RuleConfig | None = None) -> None:
        self.zones = zones
        self.config = (config or RuleConfig()).for_width(zones.frame_size[0])
        sizes = VehicleSizes(zones.frame_size)
        self._tracks = TrackBook(self.config, sizes)
        self._stopped = StoppedRule(self.config, zones.frame_size, sizes)
        self._wrong_way = WrongWayRule(self.config, zones.frame_size)
        self._lanes = {lane.name: LaneState() for lane in zones.lanes}
        self._counts = Counter(zones, self.config.count_window_s)

    def step(self, frame: FrameTracks) -> RuleOutput:
        if frame.camera != self.zones.camera:
            raise ConfigError(f"rules of camera {self.zones.camera!r} got a frame of camera {frame.camera!r}")
        t = frame.captured_at
        out = RuleOutput()
        out.counts.extend(self._counts.close(t))
        occupancy: dict[str, float] = {name: 0.0 for name in self._lanes}
        speeds: dict[str, list[float]] = {name: [] for name in self._lanes}
        confirmed = [track for track in frame.tracks if track.hits >= self.config.min_hits]
        self._tracks.frame(confirmed, t)
        self._wrong_way.frame(t, self._tracks.matched)
        for track in confirmed:
            lane, vehicles = self._queue_lane(track, self._judge(frame.camera, track, t, out))
            if lane is not None:
                box = track.box
                occupancy[lane.name] += box.area / max(lane.area, 1.0)
                speeds[lane.name].extend([math.hypot(*track.velocity) / max(box.y2 - box.y1, 1.0)] * vehicles)
        for lane in self.zones.lanes:
            state = self._lanes[lane.name]
            turn = state.queue.step(t, min(occupancy[lane.name], 1.0), speeds[lane.name], self.config)
            if turn is not None:
                self._turned(frame.camera, lane, state, turn, out)
        self._tracks.forget(t)
        return out

    def _judge(self, camera: str, track: TrackState, t: float, out: RuleOutput) -> Lane | None:
        """Place one track in its lane, count its crossings, run the track rules; its lane."""
        point = self._tracks.judged_at(track)
        lane = self._stood_in(track, self.zones.lane_at(point))
        name = lane.name if lane else None
        memory = self._tracks.remember(track, point, name, t, self._counts.entered)
        speed = math.hypot(*track.velocity)
        if memory.last_point is not None and (memory.moved or memory.moving_since is not None):
            self._counts.crossing(memory, name, memory.last_point, point, speed)
        if lane is None:
            return None
        state = self._lanes[lane.name]
        self._counts.moved(lane.name, speed)
        for incident in (
            self._stopped.judge(camera, track, lane.name, state, memory, t),
            self._wrong_way.judge(
                camera, track, lane.name, lane.direction, state, memory, t, self._behind(track, lane)
            ),
        ):
            if incident is not None:
                out.incidents.append(incident)
        return lane

    def _stood_in(self, track: TrackState, lane: Lane | None) -> Lane | None:
        """The lane of a track (`lane`: where its point is judged). A vehicle that drove and
        stands still now is judged higher up its box, `STOOD_LIFT` of its height: a car pulling
        over onto the lane line, or its shadow, puts its foot past the line into a lane it never
        drove in."""
        if self._tracks.stood(track) is None:
            return lane
        box = track.box
        return self.zones.lane_at((box.foot[0], box.y2 - STOOD_LIFT * (box.y2 - box.y1))) or lane

    def _behind(self, track: TrackState, lane: Lane) -> LaneState | None:
        """The state of the lane holding the track's box centre, if not `lane` (the lane of its
        foot): a box that reaches that far up into the lane behind holds vehicles of both."""
        box = track.box
        centre = self.zones.lane_at(((box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2))
        return self._lanes[centre.name] if centre is not None and centre.name != lane.name else None

    def _queue_lane(self, track: TrackState, foot_lane: Lane | None) -> tuple[Lane | None, int]:
        """The lane a track weighs on for congestion, and how many vehicles it stands for.

        A vehicle weighs on the lane of its foot. A box wider than any vehicle is a platoon that
        low sun or dusk merged through the cars' shadows: its foot is the tip of a shadow in the
        next lane, so it weighs on the lane holding its centre, and as (at least) two vehicles."""
        box = track.box
        if box.x2 - box.x1 <= VEHICLE_ASPECT * (box.y2 - box.y1):
            return foot_lane, 1
        centre = self.zones.lane_at(((box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2))
        return centre or foot_lane, 2

    def _turned(self, camera: str, lane: Lane, state: LaneState, turn: Turn, out: RuleOutput) -> None:
        w = turn.window
        mean_speed = round(w.speed, 2) if w.speed is not None else 0.0
        out.congestion.append(
            CongestionChange(camera, lane.name, turn.congested, turn.at, round(w.occupancy, 3), mean_speed)
        )
        if turn.started is None or not state.cooled("congestion", turn.at, self.config.congestion_cooldown_s):
            return
        state.last_incident["congestion"] = turn.at
        out.incidents.append(
            Incident(
                type="congestion",
                camera=camera,
                lane=lane.name,
                started_at=turn.started,
                detected_at=turn.at,
                position=_centroid(lane),
                details={"occupancy": round(w.occupancy, 3), "mean_speed_hps": mean_speed},
            )
        )


def _centroid(lane: Lane) -> Point:
    xs = [p[0] for p in lane.polygon]
    ys = [p[1] for p in lane.polygon]
    return (sum(xs) / len(xs), sum(ys) / len(ys))
