"""Per-camera zones: lanes drawn as image polygons with a direction of travel.

Zones are judged on a vehicle's foot point (bottom centre of its box), as Frigate does.
Loaded from the node's YAML; a bad file raises ConfigError naming the file and field.
"""

from __future__ import annotations

import math
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from cityedge.configfile import parse_config, read_yaml
from cityedge.edge.camera.countline import CountLine

__all__ = ["CameraZones", "Lane", "load_zones", "parse_zones"]

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
    def _three_points(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if len(value) < 3:
            raise ValueError(f"a lane polygon needs at least 3 points, got {len(value)}")
        return value

    @field_validator("direction")
    @classmethod
    def _unit(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is None:
            return None
        norm = math.hypot(*value)
        if norm < 1e-9:
            raise ValueError("direction must be a non-zero vector (or null for any direction)")
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


def _scale_direction(
    direction: tuple[float, float] | None, sx: float, sy: float
) -> tuple[float, float] | None:
    if direction is None:
        return None
    x, y = direction[0] * sx, direction[1] * sy
    norm = math.hypot(x, y)
    return (x / norm, y / norm)


def parse_zones(data: Any, source: str) -> CameraZones:
    """Validate a mapping as CameraZones; errors name `source` and the failing field."""
    return parse_config(CameraZones, data, source, "invalid camera zones")


def load_zones(path: Path) -> CameraZones:
    """Read one camera's zones from a YAML file."""
    return parse_zones(read_yaml(path, "zones file"), str(path))
