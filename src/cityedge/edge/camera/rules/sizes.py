"""How tall vehicles are where they drive: the box heights of tracks seen driving, by the row
of the frame their foot is in. Perspective makes a vehicle's box shrink towards the horizon,
so what a vehicle looks like depends on where it stands; the drivers through each band of rows
say it for this camera, without calibration. Each track counts once per band it drives into (a
long-lived blob does not outvote the cars), and the typical height is the smaller vehicles'
(the lower quartile): blobs of merged vehicles and trucks are taller, never shorter."""

from __future__ import annotations

import statistics
from collections import deque

from cityedge.edge.camera.rules.edges import cut_off
from cityedge.protocol.vision import Box

__all__ = ["BANDS", "KNOWN_AFTER", "VehicleSizes"]

BANDS = 12  # bands of rows the frame is cut into
KEEP = 40  # heights kept per band: the latest drivers
KNOWN_AFTER = 8  # a band's typical height is known once this many drove through it


class VehicleSizes:
    def __init__(self, frame_size: tuple[int, int]) -> None:
        self.width, self.height = frame_size
        self._bands: list[deque[float]] = [deque(maxlen=KEEP) for _ in range(BANDS)]
        self._last: dict[int, int] = {}  # the band each track last drove in

    def drove(self, track_id: int, box: Box) -> None:
        """Track `track_id` drove with `box` (not cut off by the frame's edge: its whole height)."""
        if cut_off(box, (self.width, self.height)):
            return
        band = self._band(box.y2)
        if self._last.get(track_id) != band:
            self._last[track_id] = band
            self._bands[band].append(box.y2 - box.y1)

    def forget(self, track_ids: list[int]) -> None:
        for tid in track_ids:
            self._last.pop(tid, None)

    def typical(self, foot_y: float) -> float | None:
        """The height of the smaller vehicles (the lower quartile) that drove with their foot in
        the band of rows holding `foot_y` (None: too few drove there yet)."""
        heights = self._bands[self._band(foot_y)]
        if len(heights) < KNOWN_AFTER:
            return None
        return statistics.quantiles(heights, n=4)[0]

    def _band(self, y: float) -> int:
        return min(BANDS - 1, max(0, int(y * BANDS / self.height)))
