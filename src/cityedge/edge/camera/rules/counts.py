"""Counts per fixed window of capture time, closed into `LaneCount` records.

With count lines a vehicle is counted when its track crosses a line (once per line, with the
direction it crossed in), for the line's lane or the lane it is in; without them each lane
counts the tracks that entered it, which merged blobs and shadows can inflate.
"""

from __future__ import annotations

import math
from collections import defaultdict

from cityedge.edge.camera.countline import Crossing
from cityedge.edge.camera.rules.tracks import Point, TrackMemory
from cityedge.edge.camera.zones import CameraZones
from cityedge.protocol.vision import LaneCount

__all__ = ["Counter"]

_Key = tuple[str, str | None, str | None]  # lane, line, direction


class Counter:
    def __init__(self, zones: CameraZones, window_s: float) -> None:
        self.zones, self.size = zones, window_s
        self._start: float | None = None
        self._speeds: dict[_Key, list[float]] = defaultdict(list)
        self._counts: dict[_Key, int] = defaultdict(int)
        self._keys = self._standing_keys()

    def _standing_keys(self) -> list[_Key]:
        """The records every window carries, zero or not."""
        if not self.zones.count_lines:
            return [(lane.name, None, None) for lane in self.zones.lanes]
        keys: list[_Key] = []
        for line in self.zones.count_lines:
            lanes = [line.lane] if line.lane else _lanes_under(self.zones, line.points)
            keys += [(lane, line.name, d) for lane in lanes for d in ("forward", "backward")]
        return keys

    def entered(self, lane: str) -> None:
        """A track entered `lane` (counted only on a camera without count lines)."""
        if not self.zones.count_lines:
            self._counts[(lane, None, None)] += 1

    def moved(self, lane: str | None, speed: float) -> None:
        """A track's speed this frame, for the lane-entry records' mean speed."""
        if lane is not None and not self.zones.count_lines:
            self._speeds[(lane, None, None)].append(speed)

    def crossing(self, memory: TrackMemory, lane: str | None, a: Point, b: Point, speed: float) -> None:
        """The track stepped from `a` to `b`: count each line it crossed for the first time."""
        for line in self.zones.count_lines:
            direction: Crossing | None = line.crossed(a, b)
            counted_lane = line.lane or lane
            if direction is None or line.name in memory.counted or counted_lane is None:
                continue
            memory.counted.add(line.name)
            key = (counted_lane, line.name, direction)
            self._counts[key] += 1
            self._speeds[key].append(speed)

    def close(self, t: float) -> list[LaneCount]:
        """The counts of the window that ended before `t` (none while it is still open)."""
        start = math.floor(t / self.size) * self.size
        if self._start is None:
            self._start = start
            return []
        if start <= self._start:
            return []
        keys = self._keys + [k for k in self._counts if k not in self._keys]
        records = [self._record(key, self._start) for key in keys]
        self._counts.clear()
        self._speeds.clear()
        self._start = start
        return records

    def _record(self, key: _Key, start: float) -> LaneCount:
        lane, line, direction = key
        speeds = self._speeds.get(key, [])
        mean = sum(speeds) / len(speeds) if speeds else None
        return LaneCount(
            camera=self.zones.camera,
            lane=lane,
            window_start=start,
            window_end=start + self.size,
            count=self._counts.get(key, 0),
            mean_speed_px_s=round(mean, 2) if mean is not None else None,
            line=line,
            direction=direction,
        )


def _lanes_under(zones: CameraZones, points: tuple[Point, Point]) -> list[str]:
    """The lanes a count line passes over, in the zones' order."""
    (x1, y1), (x2, y2) = points
    found: list[str] = []
    for k in range(65):
        f = k / 64
        lane = zones.lane_at((x1 + (x2 - x1) * f, y1 + (y2 - y1) * f))
        if lane is not None and lane.name not in found:
            found.append(lane.name)
    return [lane.name for lane in zones.lanes if lane.name in found]
