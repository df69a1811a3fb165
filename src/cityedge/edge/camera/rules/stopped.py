"""Stopped vehicle: a track that arrived moving and stood still in its lane long enough.

A still spot outlives the track on it (an occlusion makes the tracker start a new id), so
one stopped vehicle is one incident however often its track is handed over.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from cityedge.edge.camera.rules.config import RuleConfig
from cityedge.edge.camera.rules.edges import cut_off
from cityedge.edge.camera.rules.lanes import LaneState
from cityedge.edge.camera.rules.sizes import VehicleSizes
from cityedge.edge.camera.rules.tracks import (
    SIZE_CHANGE,
    VEHICLE_ASPECT,
    Point,
    TrackMemory,
    inside,
    same_size,
)
from cityedge.protocol.vision import Box, Incident, TrackState

__all__ = ["StoppedRule"]


DROVE_KNOWN = 3  # box heights of a track driving it takes to know how tall it drove


@dataclass
class _Spot:
    """Where a vehicle stands still: survives the tracker handing it a new id (occlusion)."""

    lane: str
    position: Point
    box: Box  # the vehicle's box where it stands (the latest still track's)
    since: float
    last: float
    reported: bool = False
    tracks: set[int] = field(default_factory=set)  # the track ids seen standing here
    left: bool = False  # one of them was seen driving off


class StoppedRule:
    def __init__(
        self, config: RuleConfig, frame_size: tuple[int, int] | None = None, sizes: VehicleSizes | None = None
    ) -> None:
        self.config = config
        self.frame_size = frame_size
        self.sizes = sizes
        self._spots: list[_Spot] = []

    def judge(
        self, camera: str, track: TrackState, lane: str, state: LaneState, memory: TrackMemory, t: float
    ) -> Incident | None:
        if cut_off(track.box, self.frame_size, top=False):
            return None  # partly out of the picture: its foot and size are the frame's edge
        still = self._is_still(memory, t)
        if not still:
            if still is False:
                memory.still_since = None
                self._left(track.track_id)
            return None
        if memory.still_since is None:
            memory.still_since = memory.history[0][0]
        if not _looks_like_what_drove(track.box, memory, self._least_height(track.box)):
            # not what drove: a ghost's rim, or a still blob a passing car swept along. What stood
            # here so far was no vehicle: a car merging with it for a moment starts no dwell
            memory.still_since = None
            return None
        spot = self._spot(lane, track.track_id, track.box, t)
        if spot is None:
            if not memory.moved:
                return None  # still since it appeared: a ghost or a parked car, not a vehicle stopping
            spot = _Spot(lane, track.box.foot, track.box, memory.still_since, t)
            self._spots.append(spot)
        spot.tracks.add(track.track_id)
        # a track that appeared on a known spot (the old one was lost to an occlusion) is the
        # same vehicle: the spot keeps the earliest time it was seen still
        spot.since = min(spot.since, memory.still_since)
        if state.queue.queued:
            spot.reported = True  # still in a queue: part of the congestion, not an incident
            return None
        if state.queue.unsettled:
            return None  # a queue may be forming, or dissolving (this one stopped after it): wait and see
        if (
            t - spot.since < self.config.stopped_after_s
            or spot.reported
            or not state.cooled("stopped_vehicle", t, self.config.stopped_cooldown_s)
        ):
            return None
        spot.reported = True
        state.last_incident["stopped_vehicle"] = t
        return Incident(
            type="stopped_vehicle",
            camera=camera,
            lane=lane,
            started_at=spot.since,
            detected_at=t,
            position=track.box.foot,
            track_id=track.track_id,
            details={"dwell_s": round(t - spot.since, 3)},
        )

    def _least_height(self, box: Box) -> float:
        """The least height of a vehicle standing with `box`: `stopped_min_height_px`, and more
        than half as tall as the vehicles that drove where it stands. The rim of a ghost, the
        strip a queue leaves in the motion model, the bottom edge of a car standing in the lane
        above: a sliver a third as tall as the cars there is not one of them."""
        least = self.config.stopped_min_height_px
        typical = self.sizes.typical(box.y2) if self.sizes is not None else None
        return least if typical is None else max(least, typical / SIZE_CHANGE)

    def _is_still(self, memory: TrackMemory, t: float) -> bool | None:
        """Whether the foot moved slower than the threshold over the probe span (None: too early)."""
        t0, p0 = memory.history[0]
        span = t - t0
        if span < 0.75 * self.config.stopped_probe_s:
            return None
        _, p1 = memory.history[-1]
        return math.dist(p0, p1) / span < self.config.stopped_speed_px_s

    def _left(self, track_id: int) -> None:
        """A track that stood at a spot moves again: the vehicle is driving off."""
        for spot in self._spots:
            if track_id in spot.tracks:
                spot.left = True

    def _kept(self, spot: _Spot) -> float:
        """How long a spot is remembered unconfirmed. A vehicle seen driving off is gone once its
        tracks are forgotten; one whose track was lost (traffic in a nearer lane hides it, the
        tracker starts a new id on it each time) is waited for as long as the rule waits to
        report a stop: a new track on it must find its dwell still counting."""
        if spot.left:
            return self.config.forget_after_s
        return max(self.config.forget_after_s, self.config.stopped_after_s)

    def _spot(self, lane: str, track_id: int, box: Box, t: float) -> _Spot | None:
        """The known still spot of a still track with `box` in `lane`, confirmed at `t` (None:
        there is none). A track reported standing at a spot is still at that spot while it
        stands there, also when it is judged in another lane (its box merged with something
        beside it): it is not reported again. (A stop not yet reported is timed in one lane.)
        A still box whose foot lies inside the box of a vehicle standing (or just stood) in the
        same lane is part of that vehicle, or the imprint it leaves in the motion model as it
        drives off: the same stop, not a new one."""
        self._spots = [s for s in self._spots if t - s.last <= self._kept(s)]
        foot = box.foot
        for spot in self._spots:
            if math.dist(spot.position, foot) <= self.config.stopped_spot_px and (
                spot.lane == lane or (spot.reported and track_id in spot.tracks)
            ):
                spot.position, spot.box, spot.last = foot, box, t
                return spot
        for spot in self._spots:
            if spot.lane == lane and inside(foot, (spot.box.x1, spot.box.y1, spot.box.x2, spot.box.y2), 0.0):
                spot.last = t  # a part of the vehicle: where the vehicle stands is unchanged
                return spot
        return None


def _looks_like_what_drove(box: Box, memory: TrackMemory, least_height: float) -> bool:
    """Whether the still box is vehicle-sized and -shaped and about as tall as the track drove
    with (seen driving a few frames only: unknown, those may all have been a merge with its
    shadow or a passing car): a vehicle keeps its size when it stops, a still blob that merged
    with a passing car for a moment does not."""
    width, height = box.x2 - box.x1, box.y2 - box.y1
    if height < least_height or width > VEHICLE_ASPECT * height:
        return False  # a sliver or a thin strip: the rim of a ghost, or a shadow, not a vehicle
    drove = memory.driving_height
    return len(memory.drove) < DROVE_KNOWN or drove is None or same_size(height, drove)
