"""Multi-object tracking of detections with Norfair's Kalman filter: stable ids, foot velocity.

Boxes are tracked as two points (top-left, bottom-right); the distance between a detection
and a track's prediction is their centre distance in units of the larger box's diagonal,
so near (big, fast) and far (small, slow) vehicles are matched alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from norfair.distances import VectorizedDistance
from norfair.filter import OptimizedKalmanFilterFactory
from norfair.tracker import Detection as NorfairDetection
from norfair.tracker import Tracker as NorfairTracker
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from cityedge.protocol.errors import ConfigError
from cityedge.protocol.vision import Box, Detection, TrackState

__all__ = ["Tracker", "TrackerConfig", "scaled_centre_distance"]


class TrackerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fps: float = Field(10.0, gt=0, description="nominal frame rate: one Kalman step per frame")
    distance_threshold: float = Field(0.8, gt=0, description="max centre offset, in box diagonals")
    hit_counter_max: int = Field(8, ge=1, description="frames a track survives without a detection")
    initialization_delay: int = Field(2, ge=0, description="hits before a track is reported")
    min_box_px: float = Field(8.0, gt=0, description="floor of the diagonal used to scale distances")


def scaled_centre_distance(min_px: float) -> VectorizedDistance:
    """Centre distance over the larger box diagonal, for (N,4) candidates vs (K,4) objects."""

    def distance(candidates: NDArray[Any], objects: NDArray[Any]) -> NDArray[Any]:
        cc = (candidates[:, :2] + candidates[:, 2:]) / 2.0
        oc = (objects[:, :2] + objects[:, 2:]) / 2.0
        cd = np.hypot(*(candidates[:, 2:] - candidates[:, :2]).T)
        od = np.hypot(*(objects[:, 2:] - objects[:, :2]).T)
        scale = np.maximum(np.maximum(cd[:, None], od[None, :]), min_px)
        return np.asarray(np.linalg.norm(cc[:, None, :] - oc[None, :, :], axis=2) / scale)

    return VectorizedDistance(distance)


class Tracker:
    """Tracks of one camera; `update` once per processed frame, in capture order."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        cfg = self.config
        self._tracker = NorfairTracker(
            distance_function="iou",
            distance_threshold=cfg.distance_threshold,
            hit_counter_max=cfg.hit_counter_max,
            initialization_delay=cfg.initialization_delay,
            filter_factory=OptimizedKalmanFilterFactory(),
        )
        # Norfair 2.3's constructor takes only names or scalar callables; a vectorized custom
        # distance is supported by its matcher, so it is set after construction.
        self._tracker.distance_function = scaled_centre_distance(cfg.min_box_px)  # type: ignore[assignment]
        self._last_t: float | None = None
        self._first_seen: dict[int, float] = {}
        self._hits: dict[int, int] = {}
        self._matched: dict[int, object] = {}

    def update(self, detections: Sequence[Detection], t: float) -> list[TrackState]:
        """Step the filter to time `t` (skipped frames count as steps) and match `detections`."""
        gap = self._period(t)
        # Norfair's filter takes one step per update whatever `period` says, so frames the
        # pipeline skipped are stepped as frames without detections (velocity stays per frame),
        # and `period` credits the hit counters for them (a skipped frame is not a miss)
        steps = min(gap, self.config.hit_counter_max)
        for _ in range(steps - 1):
            self._tracker.update([])
        objects = self._tracker.update(
            [_to_norfair(d) for d in detections if d.box.x2 > d.box.x1 and d.box.y2 > d.box.y1], period=steps
        )
        states = []
        live = set()
        for obj in objects:
            if obj.id is None:
                continue
            live.add(obj.id)
            # a new last_detection object means the track was matched in this frame
            fresh = self._matched.get(obj.id) is not obj.last_detection
            self._matched[obj.id] = obj.last_detection
            states.append(self._state(obj, t, fresh=fresh))
        for gone in set(self._first_seen) - live:
            del self._first_seen[gone]
            self._hits.pop(gone, None)
            self._matched.pop(gone, None)
        return states

    def _period(self, t: float) -> int:
        if self._last_t is not None and t < self._last_t:
            raise ConfigError(f"tracker got frames out of order: t={t} after t={self._last_t}")
        gap = 1 if self._last_t is None else max(1, round((t - self._last_t) * self.config.fps))
        self._last_t = t
        return int(gap)

    def _state(self, obj: Any, t: float, *, fresh: bool) -> TrackState:
        (x1, y1), (x2, y2) = obj.estimate
        (vx1, _), (vx2, vy2) = obj.estimate_velocity
        fps = self.config.fps
        first = self._first_seen.setdefault(obj.id, t)
        self._hits[obj.id] = self._hits.get(obj.id, 0) + (1 if fresh else 0)
        label = obj.last_detection.label if obj.last_detection is not None else "vehicle"
        return TrackState(
            track_id=int(obj.id),
            label=str(label),
            # a coasting estimate can cross its corners over; a box is ordered
            box=Box(float(min(x1, x2)), float(min(y1, y2)), float(max(x1, x2)), float(max(y1, y2))),
            velocity=(float((vx1 + vx2) / 2.0 * fps), float(vy2 * fps)),
            first_seen=first,
            hits=self._hits[obj.id],
        )


def _to_norfair(det: Detection) -> NorfairDetection:
    b = det.box
    return NorfairDetection(
        points=np.array([[b.x1, b.y1], [b.x2, b.y2]], dtype=np.float64),
        scores=np.array([det.score, det.score]),
        label=det.label,
    )
