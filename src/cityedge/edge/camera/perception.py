"""Perception of one camera: detector (optionally gated by motion regions) then tracker.

Turns a decoded frame into the frame's tracks; the only stage that sees pixels besides
the detectors, and what it returns carries none.
"""

from __future__ import annotations

from typing import Any

from numpy.typing import NDArray

from cityedge.edge.camera.detectors.base import Detector
from cityedge.edge.camera.detectors.motion import MotionDetector
from cityedge.edge.camera.tracker import Tracker
from cityedge.protocol.vision import FrameTracks

__all__ = ["Perception"]


class Perception:
    """`gate`: a motion model whose regions limit where `detector` looks (skipped when idle)."""

    def __init__(self, detector: Detector, tracker: Tracker, *, gate: MotionDetector | None = None) -> None:
        self.detector = detector
        self.tracker = tracker
        self.gate = gate if gate is not detector else None

    def process(self, camera: str, frame_index: int, frame: NDArray[Any], captured_at: float) -> FrameTracks:
        if self.gate is None:
            detections = self.detector.detect(frame)
        else:
            regions = self.gate.regions(frame)
            # nothing moves: no detector call at all, the tracker coasts (Frigate's gating)
            detections = self.detector.detect(frame, regions) if regions else []
        tracks = self.tracker.update(detections, captured_at)
        return FrameTracks(camera=camera, frame_index=frame_index, captured_at=captured_at, tracks=tracks)
