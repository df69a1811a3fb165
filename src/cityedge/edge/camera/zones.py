"""Per-camera zones: lanes drawn as image polygons with a direction of travel.

Coordinates are image pixels of a `frame_size` frame: x to the right, y DOWN from the
top-left corner, so a direction of (0, -1) points up the picture. A vehicle is judged at
its foot point (bottom centre of its box, as Frigate does). Loaded from the node's YAML; a
bad file raises ConfigError naming the file, the camera, the lane and the problem
(docs/zones.md).
"""

from __future__ import annotations

import math
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator
from shapely import Polygon, is_valid_reason

from cityedge.configfile import parse_config, read_yaml
from cityedge.edge.camera.countline import CountLine

__all__ = ["OPPOSITE_COS", "CameraZones", "Lane", "frame_size_note", "load_zones", "parse_zones"]

# Overlapping lanes whose directions are at least 120 degrees apart are refused: a vehicle
# in the overlap is judged by the lane listed first and taken for a wrong-way driver.
OPPOSITE_COS = -0.5
_MIN_AREA_PX2 = 1.0
_EDGE_SLACK_PX = 0.5  # rounding of points drawn on the frame's edge
_OVERLAP_SHARE = 0.01  # of the smaller lane: touching or slightly sloppy edges are fine

LaneKind = Literal["road", "shoulder", "lot"]


class Lane(BaseModel):
    """A lane: polygon in image pixels, unit direction of travel (None: any direction)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    polygon: list[tuple[float, float]]
    direction: tuple[float, float] | None = None
    kind: LaneKind = "road"

    @field_validator("polygon")
    @classmethod
    def _three_points(
        cls, value: list[tuple[float, float]], info: ValidationInfo
    ) -> list[tuple[float, float]]:
        if len(value) < 3:
            lane = info.data.get("name", "?")
            raise ValueError(f"lane {lane!r}: a lane polygon needs at least 3 points, got {len(value)}")
        return value

    @field_validator("direction")
    @classmethod
    def _unit(cls, value: tuple[float, float] | None, info: ValidationInfo) -> tuple[float, float] | None:
        if value is None:
            return None
        norm = math.hypot(*value)
        if norm < 1e-9:
            lane = info.data.get("name", "?")
            raise ValueError(
                f"lane {lane!r}: direction must be a non-zero vector (or null for any direction)"
            )
        return (value[0] / norm, value[1] / norm)

    @cached_property
    def _contour(self) -> NDArray[np.float32]:
        return np.asarray(self.polygon, dtype=np.float32).reshape(-1, 1, 2)

    @cached_property
    def area(self) -> float:
        """Polygon area in px^2 (the denominator of occupancy)."""
        return float(abs(cv2.contourArea(self._contour)))

    def contains(self, point: tuple[float, float]) -> bool:
        return cv2.pointPolygonTest(self._contour, (float(point[0]), float(point[1])), False) >= 0

    @cached_property
    def shape(self) -> Polygon:
        """The polygon as a Shapely geometry (validity, overlaps)."""
        return Polygon(self.polygon)


class CameraZones(BaseModel):
    """The lanes of one camera, in pixels of a frame of `frame_size` (width, height)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    camera: str
    frame_size: tuple[int, int]
    lanes: list[Lane]
    count_lines: list[CountLine] = []

    @field_validator("lanes")
    @classmethod
    def _unique_names(cls, value: list[Lane]) -> list[Lane]:
        names = [lane.name for lane in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"lane names must be unique; repeated: {duplicates}")
        return value

    @model_validator(mode="after")
    def _drawable(self) -> CameraZones:
        """Refuse lanes the rules cannot judge: none at all, outside the frame, crossing
        themselves, flat, or overlapping a lane that runs the other way."""
        where = f"camera {self.camera!r}"
        if not self.lanes:
            raise ValueError(f"{where}: no lanes: draw at least one (vehicles are judged only inside lanes)")
        for lane in self.lanes:
            problem = _outside(lane, self.frame_size) or _shape_problem(lane)
            if problem:
                raise ValueError(f"{where}, lane {lane.name!r}: {problem}")
        for i, a in enumerate(self.lanes):
            for b in self.lanes[i + 1 :]:
                problem = _opposed_overlap(a, b)
                if problem:
                    raise ValueError(f"{where}, lanes {a.name!r} and {b.name!r}: {problem}")
        return self

    @model_validator(mode="after")
    def _count_lines_fit(self) -> CameraZones:
        """Count lines lie in the frame, have unique names and count for lanes that exist."""
        w, h = self.frame_size
        names = [line.name for line in self.count_lines]
        for line in self.count_lines:
            where = f"camera {self.camera!r}, count line {line.name!r}"
            if names.count(line.name) > 1:
                raise ValueError(f"{where}: count line names must be unique")
            for x, y in line.points:
                if not (-0.5 <= x <= w + 0.5 and -0.5 <= y <= h + 0.5):
                    raise ValueError(f"{where}: point ({x:g}, {y:g}) lies outside the {w}x{h} frame (y down)")
            if line.lane is not None and line.lane not in {lane.name for lane in self.lanes}:
                raise ValueError(f"{where}: no lane {line.lane!r} to count for")
        return self

    def lane_at(self, point: tuple[float, float]) -> Lane | None:
        """The first lane whose polygon holds `point` (lanes listed first win overlaps)."""
        for lane in self.lanes:
            if lane.contains(point):
                return lane
        return None

    def scaled(self, frame_size: tuple[int, int]) -> CameraZones:
        """The same zones for frames of another size (directions re-normalised)."""
        sx = frame_size[0] / self.frame_size[0]
        sy = frame_size[1] / self.frame_size[1]
        lanes = [
            lane.model_copy(
                update={
                    "polygon": [(x * sx, y * sy) for x, y in lane.polygon],
                    "direction": _scale_direction(lane.direction, sx, sy),
                }
            )
            for lane in self.lanes
        ]
        lines = [line.scaled(sx, sy) for line in self.count_lines]
        return CameraZones(camera=self.camera, frame_size=frame_size, lanes=lanes, count_lines=lines)


def _outside(lane: Lane, frame_size: tuple[int, int]) -> str | None:
    w, h = frame_size
    for x, y in lane.polygon:
        if not (-_EDGE_SLACK_PX <= x <= w + _EDGE_SLACK_PX and -_EDGE_SLACK_PX <= y <= h + _EDGE_SLACK_PX):
            return (
                f"point ({x:g}, {y:g}) lies outside the {w}x{h} frame (x 0..{w}, y 0..{h}, y down):"
                " clip the polygon to the frame edge"
            )
    return None


def _shape_problem(lane: Lane) -> str | None:
    shape = lane.shape
    if shape.convex_hull.area < _MIN_AREA_PX2:
        return "the polygon has zero area (its points lie on one line)"
    reason = is_valid_reason(shape)
    if reason != "Valid Geometry":
        at = reason[reason.find("[") :] if "[" in reason else ""
        return (
            f"the polygon crosses itself{f' near {at}' if at else ''} ({reason}): list its points in"
            " order around the lane"
        )
    if shape.area < _MIN_AREA_PX2:
        return "the polygon has zero area"
    return None


def _opposed_overlap(a: Lane, b: Lane) -> str | None:
    if a.direction is None or b.direction is None:
        return None
    cos = a.direction[0] * b.direction[0] + a.direction[1] * b.direction[1]
    if cos > OPPOSITE_COS:
        return None
    overlap = a.shape.intersection(b.shape).area
    smaller = min(a.shape.area, b.shape.area)
    if overlap <= max(_OVERLAP_SHARE * smaller, _MIN_AREA_PX2):
        return None
    return (
        f"overlap by {overlap:.0f} px^2 ({overlap / smaller:.0%} of the smaller) and run opposite ways:"
        f" a vehicle in the overlap is judged by {a.name!r} (listed first) and a driver of {b.name!r}"
        " there would be taken for a wrong-way driver; make the polygons meet edge to edge"
    )


def frame_size_note(zones: CameraZones, stream_size: tuple[int, int]) -> tuple[bool, str] | None:
    """What to say when the zones were drawn on another frame size than the stream's:
    (refuse, message). Polygons scale with the frame, but a different aspect ratio stretches
    them (and turns their directions): that is refused by checks, warned by the pipeline."""
    drawn = tuple(zones.frame_size)
    if drawn == tuple(stream_size):
        return None
    sx, sy = stream_size[0] / drawn[0], stream_size[1] / drawn[1]
    stretched = abs(sx / sy - 1.0) > 0.01
    what = (
        f"stretched {sx:.3g}x across and {sy:.3g}x down (another aspect ratio): redraw the zones on a"
        " snapshot of the stream"
        if stretched
        else f"scaled by {sx:.3g}"
    )
    return stretched, (
        f"camera {zones.camera!r}: zones were drawn on {drawn[0]}x{drawn[1]} but the stream is"
        f" {stream_size[0]}x{stream_size[1]}: the lanes are {what}"
    )


def _scale_direction(
    direction: tuple[float, float] | None, sx: float, sy: float
) -> tuple[float, float] | None:
    if direction is None:
        return None
    x, y = direction[0] * sx, direction[1] * sy
    norm = math.hypot(x, y)
    return (x / norm, y / norm)


def parse_zones(data: Any, source: str) -> CameraZones:
    """Validate a mapping as CameraZones; errors name `source`, the camera and the failing field."""
    camera = data.get("camera", "?") if isinstance(data, dict) else "?"
    return parse_config(CameraZones, data, source, f"zones of camera {camera}")


def load_zones(path: Path) -> CameraZones:
    """Read one camera's zones from a YAML file."""
    return parse_zones(read_yaml(path, "zones file"), str(path))
