"""Per-lane state the rules share: the congestion phase (which silences the other rules while
a queue forms or stands), the last incident of each type (cooldowns), and the lane's tallies."""

from __future__ import annotations

from dataclasses import dataclass, field

from cityedge.edge.camera.rules.congestion import CongestionWatch

__all__ = ["LaneState"]


@dataclass
class LaneState:
    queue: CongestionWatch = field(default_factory=CongestionWatch)
    last_incident: dict[str, float] = field(default_factory=dict)
    entered: int = 0
    speeds: list[float] = field(default_factory=list)

    def cooled(self, kind: str, t: float, cooldown: float) -> bool:
        """Whether the last incident of `kind` in this lane is at least `cooldown` old."""
        last = self.last_incident.get(kind)
        return last is None or t - last >= cooldown
