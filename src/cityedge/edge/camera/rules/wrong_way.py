"""Wrong way: a track that keeps travelling against its lane's direction, far and long enough.

One incident per offending vehicle (a track, and the fragments it hands over to), with a
per-lane storm limit so a lane full of reversed traffic cannot flood the uplink.
"""

from __future__ import annotations

import math

from cityedge.edge.camera.rules.config import RuleConfig
from cityedge.edge.camera.rules.lanes import LaneState
from cityedge.edge.camera.rules.tracks import Point, TrackMemory
from cityedge.protocol.vision import Incident, TrackState

__all__ = ["WrongWayRule"]


class WrongWayRule:
    def __init__(self, config: RuleConfig) -> None:
        self.config = config

    def judge(
        self,
        camera: str,
        track: TrackState,
        lane: str,
        direction: Point | None,
        state: LaneState,
        memory: TrackMemory,
        t: float,
    ) -> Incident | None:
        if direction is None or "wrong_way" in memory.reported:
            return None
        # in a queue, blobs of several cars shrink and grow at their ends, which moves a blob's
        # centre backwards without anyone driving backwards: no wrong-way judgement there
        if state.queue.congested or state.queue.forming or not self._against(direction, track.velocity):
            memory.against = None
            return None
        foot, height = track.box.foot, track.box.y2 - track.box.y1
        if memory.against is None:
            memory.against = (t, foot, height)
            return None
        t0, p0 = self._start(memory, foot, height)
        dx, dy = foot[0] - p0[0], foot[1] - p0[1]
        travel = math.hypot(dx, dy)
        cfg = self.config
        need = min(cfg.wrong_way_min_travel_px, cfg.wrong_way_min_travel_boxes * height)
        if t - t0 < cfg.wrong_way_min_s or travel < need or not self._against(direction, (dx, dy)):
            return None
        memory.reported.add("wrong_way")  # one incident per vehicle, reported or held back
        if not state.storm_allows(t, cfg.wrong_way_storm_max, cfg.wrong_way_storm_window_s):
            state.held_back += 1
            return None
        state.wrong_way_at.append(t)
        held, state.held_back = state.held_back, 0
        cos = (dx * direction[0] + dy * direction[1]) / travel
        return Incident(
            type="wrong_way",
            camera=camera,
            lane=lane,
            started_at=t0,
            detected_at=t,
            position=foot,
            track_id=track.track_id,
            details={"travel_px": round(travel, 1), "cos": round(cos, 3), "held_back": held},
        )

    @staticmethod
    def _start(memory: TrackMemory, foot: Point, height: float) -> tuple[float, Point]:
        """Since when and from where the track has been going the wrong way."""
        assert memory.against is not None
        t0, p0, _ = memory.against
        if memory.before is not None and not 0.7 <= height / max(memory.before[1], 1.0) <= 1.43:
            # the blob merged with or split from a neighbour since the last frame, which moved
            # its foot without driving: that jump is not travel
            (bx, by), _ = memory.before
            p0 = (p0[0] + foot[0] - bx, p0[1] + foot[1] - by)
            memory.against = (t0, p0, height)
        return t0, p0

    def _against(self, direction: Point, motion: Point) -> bool:
        """Motion (a velocity or a displacement) clearly against the lane's direction."""
        norm = math.hypot(*motion)
        if norm < max(self.config.wrong_way_min_speed_px_s, 1e-9):
            return False
        return (motion[0] * direction[0] + motion[1] * direction[1]) / norm <= self.config.wrong_way_max_cos
