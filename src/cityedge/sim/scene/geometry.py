"""Where things are: the camera on its mast, the four-lane road, and the lane zones as drawn."""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from cityedge.edge.camera.zones import CameraZones, Lane

__all__ = ["HALF_ROAD", "LANE_WIDTH", "MEDIAN", "ROAD_LENGTH", "Camera", "Road", "lane_zones"]

LANE_WIDTH = 3.5
MEDIAN = 4.0  # a planted median between the two directions, as on most arterials
HALF_ROAD = 2 * LANE_WIDTH + MEDIAN / 2
ROAD_LENGTH = 90.0  # metres of lane simulated; about half of it is in view


class Camera:
    """Pinhole camera on a mast: 18 m up, pitched 48 degrees down, 78 degrees wide."""

    def __init__(
        self, size: tuple[int, int], height: float = 18.0, pitch_deg: float = 48.0, hfov_deg: float = 78.0
    ):
        self.w, self.h = size
        self.f = (self.w / 2) / math.tan(math.radians(hfov_deg) / 2)
        p = math.radians(pitch_deg)
        self.pos = np.array([0.0, height, 0.0])
        self.fwd = np.array([0.0, -math.sin(p), math.cos(p)])
        self.down = np.array([0.0, -math.cos(p), -math.sin(p)])

    def project(self, points: NDArray[Any]) -> NDArray[np.float64]:
        d = np.asarray(points, dtype=np.float64) - self.pos
        zc = d @ self.fwd
        return np.stack(
            [self.w / 2 + self.f * d[:, 0] / zc, self.h / 2 + self.f * (d @ self.down) / zc], axis=1
        )

    def depth(self, point: NDArray[Any]) -> float:
        return float((np.asarray(point) - self.pos) @ self.fwd)


class Road:
    """Four straight lanes; east_* travel +axis on the near side, west_* travel -axis far side."""

    names = ("west_2", "west_1", "east_1", "east_2")

    def __init__(self) -> None:
        a = math.radians(-7.0)
        self.centre = np.array([0.0, 0.0, 16.5])
        self.axis = np.array([math.cos(a), 0.0, math.sin(a)])
        self.normal = np.array([-math.sin(a), 0.0, math.cos(a)])  # points away from the camera
        m = MEDIAN / 2 / LANE_WIDTH
        self.offset = {"west_2": 1.5 + m, "west_1": 0.5 + m, "east_1": -0.5 - m, "east_2": -1.5 - m}

    def sign(self, lane: str) -> float:
        return 1.0 if lane.startswith("east") else -1.0

    def point(self, lane: str, s: float, lateral: float = 0.0) -> NDArray[np.float64]:
        """Ground point `s` metres along the lane's travel direction (0 = upstream end)."""
        along = self.sign(lane) * (s - ROAD_LENGTH / 2)
        return self.at(along, self.offset[lane] * LANE_WIDTH + lateral)

    def at(self, along: float, offset: float) -> NDArray[np.float64]:
        """Ground point `along` metres down the road axis, `offset` metres across (+: far side)."""
        return np.asarray(self.centre + self.axis * along + self.normal * offset, dtype=np.float64)

    def span(self, camera: Camera, clearance: float = 4.0) -> tuple[float, float]:
        """The stretch of road (along the axis) clearly in front of the camera, all lanes."""
        ok = [
            a
            for a in np.arange(-ROAD_LENGTH / 2, ROAD_LENGTH / 2 + 0.5, 0.5)
            if min(camera.depth(self.at(float(a), o)) for o in (-HALF_ROAD - 4.0, HALF_ROAD + 4.0))
            >= clearance
        ]
        return float(min(ok)), float(max(ok))

    def visible(self, lane: str, camera: Camera) -> tuple[float, float]:
        """The stretch (s_in, s_out) of a lane whose centre line is in the frame."""
        inside = []
        for s in np.arange(0.0, ROAD_LENGTH, 0.5):
            point = self.point(lane, float(s))
            u, v = camera.project(point[None, :])[0]
            if camera.depth(point) > 4.0 and 0 <= u < camera.w and 0 <= v < camera.h:
                inside.append(float(s))
        return min(inside), max(inside)

    def heading(self, lane: str, wrong_way: bool = False) -> NDArray[np.float64]:
        return self.axis * self.sign(lane) * (-1.0 if wrong_way else 1.0)


def lane_zones(camera: Camera, road: Road, name: str) -> CameraZones:
    frame = np.array([[0, 0], [camera.w, 0], [camera.w, camera.h], [0, camera.h]], dtype=np.float32)
    lanes = []
    a0, a1 = road.span(camera)
    for lane in road.names:
        lo, hi = (road.offset[lane] - 0.5) * LANE_WIDTH, (road.offset[lane] + 0.5) * LANE_WIDTH
        quad = [road.at(a0, lo), road.at(a1, lo), road.at(a1, hi), road.at(a0, hi)]
        poly = camera.project(np.array(quad)).astype(np.float32)
        _, clipped = cv2.intersectConvexConvex(poly, frame)
        mid = camera.project(
            np.array([road.point(lane, ROAD_LENGTH / 2), road.point(lane, ROAD_LENGTH / 2 + 1)])
        )
        direction = mid[1] - mid[0]
        lanes.append(
            Lane(
                name=lane,
                polygon=[(round(float(x), 1), round(float(y), 1)) for x, y in clipped.reshape(-1, 2)],
                direction=(float(direction[0]), float(direction[1])),
                kind="road",
            )
        )
    return CameraZones(camera=name, frame_size=(camera.w, camera.h), lanes=lanes)
