"""Lane counts per fixed window of capture time: closed windows become `LaneCount` records."""

from __future__ import annotations

import math
from collections.abc import Mapping

from cityedge.edge.camera.rules.lanes import LaneState
from cityedge.protocol.vision import LaneCount

__all__ = ["CountWindow"]


class CountWindow:
    def __init__(self, camera: str, size_s: float) -> None:
        self.camera, self.size = camera, size_s
        self._start: float | None = None

    def close(self, t: float, lanes: Mapping[str, LaneState]) -> list[LaneCount]:
        """The counts of the window that ended before `t` (none while it is still open)."""
        start = math.floor(t / self.size) * self.size
        if self._start is None:
            self._start = start
            return []
        if start <= self._start:
            return []
        counts = []
        for name, state in lanes.items():
            mean = sum(state.speeds) / len(state.speeds) if state.speeds else None
            counts.append(
                LaneCount(
                    camera=self.camera,
                    lane=name,
                    window_start=self._start,
                    window_end=self._start + self.size,
                    count=state.entered,
                    mean_speed_px_s=round(mean, 2) if mean is not None else None,
                )
            )
            state.entered, state.speeds = 0, []
        self._start = start
        return counts
