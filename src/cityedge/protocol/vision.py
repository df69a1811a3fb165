"""Typed messages between the camera pipeline's stages: detections, tracks, incidents.

Coordinates are pixels of the frame the stage saw (x right, y down). Times are seconds
since the Unix epoch (UTC), passed in by the caller. Nothing here carries pixels: raw
frames and clips never leave the node, so no message type can hold them.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
    "INCIDENT_TYPES",
    "Box",
    "CongestionChange",
    "Decision",
    "Detection",
    "FrameTracks",
    "Incident",
    "LaneCount",
    "TrackState",
]

INCIDENT_TYPES = ("stopped_vehicle", "wrong_way", "congestion")
IncidentType = Literal["stopped_vehicle", "wrong_way", "congestion"]


class Box(msgspec.Struct, frozen=True, array_like=True):
    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def foot(self) -> tuple[float, float]:
        """Bottom centre: where a vehicle touches the road (zones are judged there)."""
        return ((self.x1 + self.x2) / 2.0, self.y2)

    @property
    def area(self) -> float:
        return max(0.0, self.x2 - self.x1) * max(0.0, self.y2 - self.y1)


class Detection(msgspec.Struct, frozen=True):
    box: Box
    score: float
    label: str = "vehicle"


class TrackState(msgspec.Struct, frozen=True):
    """One tracked object at one frame. Velocity is of the foot point, in pixels/second."""

    track_id: int
    label: str
    box: Box
    velocity: tuple[float, float]
    first_seen: float
    hits: int


class FrameTracks(msgspec.Struct, frozen=True):
    camera: str
    frame_index: int
    captured_at: float
    tracks: list[TrackState]


class Incident(msgspec.Struct, frozen=True):
    """One incident event (a rule's cooldown makes one incident one event)."""

    type: IncidentType
    camera: str
    lane: str
    started_at: float
    detected_at: float
    position: tuple[float, float]
    track_id: int | None = None
    details: dict[str, Any] = {}


class LaneCount(msgspec.Struct, frozen=True):
    """Vehicles counted for a lane during [window_start, window_end): those that crossed count
    line `line` in `direction` (`forward` or `backward`, see the zones guide) or, on a camera
    without count lines (`line` None), those that entered the lane."""

    camera: str
    lane: str
    window_start: float
    window_end: float
    count: int
    mean_speed_px_s: float | None = None
    line: str | None = None
    direction: str | None = None


class Decision(msgspec.Struct, frozen=True):
    """A local action the node takes at once, e.g. extend a signal phase, raise lighting, alert."""

    action: str
    camera: str
    lane: str
    reason: str
    decided_at: float
    captured_at: float
    params: dict[str, Any] = {}


class CongestionChange(msgspec.Struct, frozen=True):
    """A lane turned congested (or cleared) at `at`, with the window's figures that decided it:
    occupancy (vehicle boxes' area over the lane's area) and mean speed in box heights per
    second (independent of the distance to the camera)."""

    camera: str
    lane: str
    congested: bool
    at: float
    occupancy: float
    mean_speed: float
