"""Perception composition: a detector (optionally gated by motion regions) feeding the tracker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cityedge.edge.camera.detectors.motion import MotionDetector
from cityedge.edge.camera.perception import Perception
from cityedge.edge.camera.tracker import Tracker
from cityedge.protocol.vision import Box, Detection

W, H = 320, 180


class Recording:
    """A heavy detector stand-in that records the regions it was asked to look at."""

    def __init__(self) -> None:
        self.calls: list[Sequence[Box] | None] = []

    def detect(self, frame: NDArray[Any], regions: Sequence[Box] | None = None) -> list[Detection]:
        self.calls.append(regions)
        return [Detection(r, 0.8, "car") for r in regions or []]


def frame(car_x: int | None) -> NDArray[np.uint8]:
    image = np.full((H, W, 3), 100, dtype=np.uint8)
    if car_x is not None:
        image[80:110, car_x : car_x + 40] = 20
    return image


def test_with_a_gate_the_detector_sees_only_motion_regions_and_is_skipped_when_nothing_moves() -> None:
    heavy = Recording()
    perception = Perception(heavy, Tracker(), gate=MotionDetector())
    for k in range(20):  # warm-up of the gate: an empty road, no detector call
        perception.process("cam", k, frame(None), 100.0 + k / 10)
    assert heavy.calls == []
    tracks = []
    for k in range(20, 30):
        tracks = perception.process("cam", k, frame(40 + 8 * (k - 20)), 100.0 + k / 10).tracks
    assert len(heavy.calls) == 10
    assert all(calls and len(calls) == 1 for calls in heavy.calls)
    assert [t.label for t in tracks] == ["car"]


def test_the_motion_detector_alone_needs_no_gate() -> None:
    motion = MotionDetector()
    perception = Perception(motion, Tracker(), gate=motion)
    assert perception.gate is None
    out = None
    for k in range(30):
        out = perception.process("cam", k, frame(40 + 5 * k if k >= 16 else None), 100.0 + k / 10)
    assert out is not None
    assert out.camera == "cam"
    assert out.frame_index == 29
    assert len(out.tracks) == 1
    assert out.tracks[0].velocity[0] > 0
