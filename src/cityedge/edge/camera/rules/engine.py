"""The rule engine of one camera: per frame, each confirmed track is placed in its lane and
judged by the track rules (stopped, wrong way); then each lane by congestion; counts close
per window. Each incident type has a cooldown so one incident is one event."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from cityedge.edge.camera.rules.config import RuleConfig
from cityedge.edge.camera.rules.congestion import Turn
from cityedge.edge.camera.rules.counts import CountWindow
from cityedge.edge.camera.rules.lanes import LaneState
from cityedge.edge.camera.rules.stopped import StoppedRule
from cityedge.edge.camera.rules.tracks import Point, TrackBook
from cityedge.edge.camera.rules.wrong_way import WrongWayRule
from cityedge.edge.camera.zones import CameraZones, Lane
from cityedge.protocol.errors import ConfigError
from cityedge.protocol.vision import CongestionChange, FrameTracks, Incident, LaneCount

__all__ = ["RuleEngine", "RuleOutput"]


@dataclass(frozen=True)
class RuleOutput:
    incidents: list[Incident] = field(default_factory=list)
    counts: list[LaneCount] = field(default_factory=list)
    congestion: list[CongestionChange] = field(default_factory=list)


class RuleEngine:
    """Feed it each frame's tracks in capture order; it keeps the little state the rules need."""

    def __init__(self, zones: CameraZones, config: RuleConfig | None = None) -> None:
        self.zones = zones
        self.config = config or RuleConfig()
        self._tracks = TrackBook(self.config)
        self._stopped = StoppedRule(self.config)
        self._wrong_way = WrongWayRule(self.config)
        self._lanes = {lane.name: LaneState() for lane in zones.lanes}
        self._counts = CountWindow(zones.camera, self.config.count_window_s)

    def step(self, frame: FrameTracks) -> RuleOutput:
        if frame.camera != self.zones.camera:
            raise ConfigError(f"rules of camera {self.zones.camera!r} got a frame of camera {frame.camera!r}")
        t = frame.captured_at
        out = RuleOutput()
        out.counts.extend(self._counts.close(t, self._lanes))
        occupancy: dict[str, float] = {name: 0.0 for name in self._lanes}
        speeds: dict[str, list[float]] = {name: [] for name in self._lanes}
        for track in frame.tracks:
            if track.hits < self.config.min_hits:
                continue
            box = track.box
            lane = self.zones.lane_at((box.foot[0], box.y2 - self.config.foot_lift * (box.y2 - box.y1)))
            memory = self._tracks.remember(track, lane.name if lane else None, t, self._entered)
            if lane is None:
                continue
            state = self._lanes[lane.name]
            occupancy[lane.name] += box.area / max(lane.area, 1.0)
            state.speeds.append(math.hypot(*track.velocity))
            speeds[lane.name].append(state.speeds[-1] / max(box.y2 - box.y1, 1.0))
            for incident in (
                self._stopped.judge(frame.camera, track, lane.name, state, memory, t),
                self._wrong_way.judge(frame.camera, track, lane.name, lane.direction, state, memory, t),
            ):
                if incident is not None:
                    out.incidents.append(incident)
        for lane in self.zones.lanes:
            state = self._lanes[lane.name]
            turn = state.queue.step(t, min(occupancy[lane.name], 1.0), speeds[lane.name], self.config)
            if turn is not None:
                self._turned(frame.camera, lane, state, turn, out)
        self._tracks.forget(t)
        return out

    def _entered(self, lane: str) -> None:
        self._lanes[lane].entered += 1

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
