"""What the rules remember of each track: its path, lane, whether it ever moved, and what was
reported about it; a new id that continues a lost track (occlusion, split) inherits it."""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from cityedge.edge.camera.rules.config import RuleConfig
from cityedge.edge.camera.rules.sizes import VehicleSizes
from cityedge.protocol.vision import TrackState

__all__ = [
    "SIZE_CHANGE",
    "VEHICLE_ASPECT",
    "Drive",
    "Point",
    "TrackBook",
    "TrackMemory",
    "inside",
    "same_size",
]

Point = tuple[float, float]
DROVE_FRAMES = 20  # box heights kept of a track driving, for its typical size
SIZE_CHANGE = 2.0  # one vehicle's box keeps its height within this factor; merges and splits do not
GREW = 1.3  # a still box this much taller than its track drove with grew into something below or above it
VEHICLE_ASPECT = 4.0  # a vehicle's box is at most this many heights wide; a ghost's strip or a platoon
# merged by shadows is wider


def same_size(height: float, other: float) -> bool:
    """Whether two box heights are within `SIZE_CHANGE` of each other: one vehicle's box, not a
    blob that merged with a neighbour or lost a part."""
    return 1 / SIZE_CHANGE <= height / other <= SIZE_CHANGE


class Drive(NamedTuple):
    """A track's drive the wrong way: since when, from where (its foot, or where a drive it
    carries on began), and where its box's rear and front lay, how tall it was and whether the
    frame's edge cut it off when this track took it up."""

    since: float
    start: Point
    ends: Point
    height: float
    cut: bool = False


@dataclass
class TrackMemory:
    """What the rules keep of one track (see the module docstring)."""

    lane: str | None = None
    origin: Point | None = None
    moved: bool = False
    against: Drive | None = None
    history: deque[tuple[float, Point]] = field(default_factory=deque)
    still_since: float | None = None
    reported: set[str] = field(default_factory=set)
    last_seen: float = 0.0
    velocity: Point = (0.0, 0.0)
    height: float = 0.0  # box height in the latest frame, and the frame before
    before: tuple[Point, float] | None = None
    hits: int = 0
    last_hit: float = 0.0  # when the tracker last matched it to a detection (not coasting) ...
    matched_at: Point | None = None  # ... and where
    moving_since: float | None = None  # driving speed since then (None: slower now)
    drove: deque[float] = field(default_factory=lambda: deque(maxlen=DROVE_FRAMES))  # box heights driving
    drove_top: float | None = None  # the top of its box when it last drove
    point: Point | None = None  # where its lane is judged, this frame and the one before
    last_point: Point | None = None
    counted: set[str] = field(default_factory=set)  # count lines it crossed
    box: tuple[float, float, float, float] | None = None  # x1, y1, x2, y2 in the latest frame

    @property
    def driving_height(self) -> float | None:
        """The box height it typically drove with (the median of its last heights while driving:
        a moment's merge with a neighbour or a part lost in the dark does not count); None: it
        never drove."""
        return statistics.median(self.drove) if self.drove else None


class TrackBook:
    """The memories of the tracks seen lately, by track id."""

    def __init__(self, config: RuleConfig, sizes: VehicleSizes | None = None) -> None:
        self.config = config
        self.sizes = sizes
        self._tracks: dict[int, TrackMemory] = {}
        self._present: set[int] = set()
        self._moving_boxes: deque[tuple[float, tuple[float, float, float, float]]] = deque()

    def frame(self, tracks: list[TrackState], t: float) -> None:
        """The tracks of the frame about to be remembered. Those the tracker matched to a
        detection now are not lost; the others (gone, or coasting on a guess) may be. The
        boxes of the moving tracks as they were are kept: a blob that splits off one is a
        vehicle that was moving inside it (the rules see a track only once it is confirmed, a
        few frames after the split, so the boxes of the last second are kept)."""
        while self._moving_boxes and self._moving_boxes[0][0] < t - 1.0:
            self._moving_boxes.popleft()
        self._present = {
            t.track_id
            for t in tracks
            if t.track_id not in self._tracks or t.hits != self._tracks[t.track_id].hits
        }
        self._moving_boxes.extend((t, m.box) for m in self._tracks.values() if m.moved and m.box is not None)

    @property
    def matched(self) -> set[int]:
        """The tracks of this frame the tracker matched to a detection (or new)."""
        return self._present

    def stood(self, track: TrackState) -> TrackMemory | None:
        """The memory of a track that drove and stands still now (None: it is moving, or never
        drove)."""
        memory = self._tracks.get(track.track_id)
        if memory is None or memory.drove_top is None:
            return None
        return memory if math.hypot(*track.velocity) < self.config.wrong_way_min_speed_px_s else None

    def judged_at(self, track: TrackState) -> Point:
        """The point a track's lane is judged at: its foot, lifted by `foot_lift` of its height.

        A vehicle that stopped and whose box then grew downward, its top where it was when it
        drove, merged with something still below it (a ghost's rim, a shadow, a car standing in
        the next lane): its foot is where its top and the height it drove with put it."""
        box = track.box
        bottom, height = box.y2, box.y2 - box.y1
        memory = self.stood(track)
        if memory is not None:
            assert memory.drove_top is not None  # (stood: it drove)
            drove = memory.driving_height
            assert drove is not None  # drove_top is set with the first height it drove with
            if height > GREW * drove and abs(box.y1 - memory.drove_top) <= (GREW - 1) * drove:
                bottom, height = box.y1 + drove, drove
        return (box.foot[0], bottom - self.config.foot_lift * height)

    def remember(
        self, track: TrackState, point: Point, lane: str | None, t: float, entered: Callable[[str], None]
    ) -> TrackMemory:
        """Update the track's memory with this frame (`point`: where its lane is judged);
        `entered(lane)` when it changed lanes."""
        foot = track.box.foot
        memory = self._tracks.get(track.track_id)
        if memory is None:
            memory = self._tracks[track.track_id] = self._handed_over(foot, t)
        memory.last_point, memory.point = memory.point, point
        if track.hits != memory.hits:
            memory.hits, memory.last_hit, memory.matched_at = track.hits, t, foot
        memory.velocity = track.velocity
        if memory.history:
            memory.before = (memory.history[-1][1], memory.height)
        memory.height = track.box.y2 - track.box.y1
        memory.box = (track.box.x1, track.box.y1, track.box.x2, track.box.y2)
        memory.last_seen = t
        memory.history.append((t, foot))
        if memory.origin is None:
            memory.origin = foot
        self._drive(memory, track, t)
        while len(memory.history) > 2 and memory.history[1][0] <= t - self.config.stopped_probe_s:
            memory.history.popleft()
        if lane != memory.lane:
            # a drive or a stop is judged in one lane: in a new lane both start afresh
            memory.lane, memory.against, memory.still_since = lane, None, None
            if lane:
                entered(lane)
        return memory

    def _drive(self, memory: TrackMemory, track: TrackState, t: float) -> None:
        """Follow the track's driving. Kept at driving speed for `stopped_arrival_s`, it is
        driving: the box height it drives with is kept, and once away from where it was first
        seen it has arrived moving. A ghost or a parked car never drives; a blob that merged
        with a passing car for a moment jumps, but does not keep moving."""
        if math.hypot(*track.velocity) < self.config.wrong_way_min_speed_px_s:
            memory.moving_since = None
            return
        if memory.moving_since is None:
            memory.moving_since = t
        if t - memory.moving_since < self.config.stopped_arrival_s:
            return
        memory.drove.append(memory.height)
        memory.drove_top = track.box.y1
        if self.sizes is not None:
            self.sizes.drove(track.track_id, track.box)
        assert memory.origin is not None
        if math.dist(memory.origin, track.box.foot) >= self.config.stopped_min_travel_px:
            memory.moved = True

    def _handed_over(self, foot: Point, t: float) -> TrackMemory:
        """Memory for a new track. When a track was just lost where this one appears (an
        occlusion made the tracker start afresh), the vehicle is the same: it keeps having
        arrived moving, which the stopped rule requires."""
        near = [
            m
            for tid, m in self._tracks.items()
            if tid not in self._present
            and m.matched_at is not None
            # where it was last seen, not where the tracker guessed it went since: a vehicle
            # lost while it braked to a halt is found again short of the guess
            and math.dist(m.matched_at, foot) <= 2 * self.config.stopped_spot_px
        ]
        if near:
            drove = [m for m in near if m.moved]
            memory = TrackMemory(moved=bool(drove))
            if drove:
                memory.drove.extend(drove[0].drove)
        else:
            # no track was lost here: split off a merged blob that was moving (two vehicles
            # side by side that part) or new to the picture. A ghost never splits off moving:
            # it was a still track of its own, lost right here, so it counts as `near`.
            # (The blob's foot, and so its lane, is the nearer vehicle's: any lane will do.)
            # (How tall it drove is not known: the moving box was both vehicles.)
            memory = TrackMemory(moved=any(inside(foot, box) for _, box in self._moving_boxes))
        heir = self._fragment_of(foot, t)
        if heir is not None:
            # the tracker split one vehicle's path in two (a merge with a neighbour): carry on
            # judging the same drive, and do not report it twice
            memory.lane, memory.against = heir.lane, heir.against
            memory.reported = set(heir.reported)
            memory.counted = set(heir.counted)
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
        if self.sizes is not None:
            self.sizes.forget(stale)


def inside(point: Point, box: tuple[float, float, float, float], slack: float = 4.0) -> bool:
    """Whether `point` lies in `box` (x1, y1, x2, y2) grown by `slack` pixels on every side."""
    x1, y1, x2, y2 = box
    return x1 - slack <= point[0] <= x2 + slack and y1 - slack <= point[1] <= y2 + slack
