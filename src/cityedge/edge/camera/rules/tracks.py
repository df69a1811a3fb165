"""What the rules remember of each track: its path, lane, whether it ever moved, and what was
reported about it; a new id that continues a lost track (occlusion, split) inherits it."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from cityedge.edge.camera.rules.config import RuleConfig
from cityedge.protocol.vision import TrackState

__all__ = ["Point", "TrackBook", "TrackMemory"]

Point = tuple[float, float]


@dataclass
class TrackMemory:
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


class TrackBook:
    """The memories of the tracks seen lately, by track id."""

    def __init__(self, config: RuleConfig) -> None:
        self.config = config
        self._tracks: dict[int, TrackMemory] = {}

    def remember(
        self, track: TrackState, lane: str | None, t: float, entered: Callable[[str], None]
    ) -> TrackMemory:
        """Update the track's memory with this frame; `entered(lane)` when it changed lanes."""
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
        if lane != memory.lane:
            memory.lane, memory.against = lane, None
            if lane:
                entered(lane)
        return memory

    def _handed_over(self, foot: Point, t: float) -> TrackMemory:
        """Memory for a new track. When a track was just lost where this one appears (an
        occlusion made the tracker start afresh), the vehicle is the same: it keeps having
        arrived moving, which the stopped rule requires."""
        near = [
            m
            for m in self._tracks.values()
            if m.history and math.dist(m.history[-1][1], foot) <= 2 * self.config.stopped_spot_px
        ]
        memory = TrackMemory(moved=any(m.moved for m in near))
        heir = self._fragment_of(foot, t)
        if heir is not None:
            # the tracker split one vehicle's path in two (a merge with a neighbour): carry on
            # judging the same drive, and do not report it twice
            memory.lane, memory.against = heir.lane, heir.against
            memory.reported = set(heir.reported)
        return memory

    def _fragment_of(self, foot: Point, t: float) -> TrackMemory | None:
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

    def forget(self, t: float) -> None:
        stale = [tid for tid, m in self._tracks.items() if t - m.last_seen > self.config.forget_after_s]
        for tid in stale:
            del self._tracks[tid]
