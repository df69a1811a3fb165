"""Per-lane state the rules share: the congestion phase (which silences the other rules while
a queue forms or stands), the last incident of each type (cooldowns), the wrong-way storm limit."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from cityedge.edge.camera.rules.congestion import CongestionWatch

__all__ = ["LaneState"]


@dataclass
class LaneState:
    queue: CongestionWatch = field(default_factory=CongestionWatch)
    last_incident: dict[str, float] = field(default_factory=dict)
    wrong_way_at: deque[float] = field(default_factory=deque)  # the storm limit's window
    held_back: int = 0  # wrong-way vehicles not reported since the last report (storm limit)

    def cooled(self, kind: str, t: float, cooldown: float) -> bool:
        """Whether the last incident of `kind` in this lane is at least `cooldown` old."""
        last = self.last_incident.get(kind)
        return last is None or t - last >= cooldown

    def storm_allows(self, t: float, most: int, window_s: float) -> bool:
        """Whether one more wrong-way incident fits in the lane's storm limit at `t`."""
        while self.wrong_way_at and self.wrong_way_at[0] <= t - window_s:
            self.wrong_way_at.popleft()
        return len(self.wrong_way_at) < most
