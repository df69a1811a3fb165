"""Per-lane state the rules share: the congestion phase (which silences the other rules while
a queue forms or stands), the last incident of each type (cooldowns), the wrong-way storm limit
and the wrong-way drives lately seen in the lane."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from cityedge.edge.camera.rules.congestion import CongestionWatch
from cityedge.edge.camera.rules.tracks import Point

__all__ = ["AgainstRun", "LaneState"]


@dataclass
class AgainstRun:
    """A wrong-way drive as one track last saw it. A wrong-way car that meets oncoming traffic
    merges with an oncoming blob and comes out of it under another track id; the drive goes on."""

    since: float  # when the drive began ...
    start: Point  # ... and where (foot point)
    last: float  # when a track last saw it ...
    foot: Point  # ... where
    box: tuple[float, float, float, float]  # ... and its box then
    speed: float  # px/s, the track's speed then
    reported: set[str]  # the incidents reported about the vehicle, shared by its tracks


@dataclass
class LaneState:
    queue: CongestionWatch = field(default_factory=CongestionWatch)
    last_incident: dict[str, float] = field(default_factory=dict)
    wrong_way_at: deque[float] = field(default_factory=deque)  # the storm limit's window
    held_back: int = 0  # wrong-way vehicles not reported since the last report (storm limit)
    against: dict[int, AgainstRun] = field(default_factory=dict)  # by track id

    def cooled(self, kind: str, t: float, cooldown: float) -> bool:
        """Whether the last incident of `kind` in this lane is at least `cooldown` old."""
        last = self.last_incident.get(kind)
        return last is None or t - last >= cooldown

    def storm_allows(self, t: float, most: int, window_s: float) -> bool:
        """Whether one more wrong-way incident fits in the lane's storm limit at `t`."""
        while self.wrong_way_at and self.wrong_way_at[0] <= t - window_s:
            self.wrong_way_at.popleft()
        return len(self.wrong_way_at) < most
