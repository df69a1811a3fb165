"""Drawing a frame: the static background once, then vehicles, shadows, occluders, light and noise."""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from cityedge.sim.scene.geometry import HALF_ROAD, LANE_WIDTH, MEDIAN, Camera, Road
from cityedge.sim.scene.model import Scenario
from cityedge.sim.scene.traffic import Vehicle

__all__ = ["Painter"]


class Painter:
    """Draws the static background once, then vehicles, shadows, occluders, light and noise."""

    def __init__(self, scenario: Scenario, camera: Camera, road: Road, rng: np.random.Generator):
        self.sc, self.cam, self.road = scenario, camera, road
        self.background = self._background(rng)
        self.rng = rng
        self.noise: dict[float, list[NDArray[np.int16]]] = {}
        # low sun along the road, slightly from the camera's side: shadows stretch along the
        # lane (a shadow across lanes would put a far vehicle's blob foot in a near lane)
        self.sun = (road.axis * 0.8 + road.normal * 0.15) * scenario.shadow_length

    def _background(self, rng: np.random.Generator) -> NDArray[np.uint8]:
        w, h = self.cam.w, self.cam.h
        img = np.empty((h, w, 3), dtype=np.uint8)
        img[:] = (70, 110, 85)  # verge grass
        coarse = rng.normal(0, 6, (h // 4 + 1, w // 4 + 1)).astype(np.float32)
        grain = np.asarray(cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR), dtype=np.float32)
        cv2.fillPoly(img, [self._strip(-HALF_ROAD - 3.0, HALF_ROAD + 3.0)], (150, 152, 155))  # sidewalks
        cv2.fillPoly(img, [self._strip(-HALF_ROAD, HALF_ROAD)], (92, 94, 96))  # asphalt
        cv2.fillPoly(img, [self._strip(-MEDIAN / 2, MEDIAN / 2)], (160, 160, 158))  # median kerb
        cv2.fillPoly(img, [self._strip(-MEDIAN / 2 + 0.3, MEDIAN / 2 - 0.3)], (70, 112, 80))  # median grass
        img = np.clip(img.astype(np.float32) + grain[..., None], 0, 255).astype(np.uint8)
        self._markings(img)
        return img

    def _strip(
        self, lo: float, hi: float, a0: float | None = None, a1: float | None = None
    ) -> NDArray[np.int32]:
        """Image polygon of the ground strip between offsets lo..hi, along a0..a1."""
        span = self.road.span(self.cam)
        a0 = span[0] if a0 is None else max(a0, span[0])
        a1 = span[1] if a1 is None else min(a1, span[1])
        pts = [self.road.at(a0, lo), self.road.at(a1, lo), self.road.at(a1, hi), self.road.at(a0, hi)]
        return self.cam.project(np.array(pts)).astype(np.int32)

    def _markings(self, img: NDArray[np.uint8]) -> None:
        # lane lines dashed (3 m paint, 6 m gap)
        a0, a1 = self.road.span(self.cam)
        for lat in (-LANE_WIDTH - MEDIAN / 2, LANE_WIDTH + MEDIAN / 2):
            for a in np.arange(a0, a1 - 3.0, 9.0):
                cv2.fillPoly(
                    img, [self._strip(lat - 0.08, lat + 0.08, float(a), float(a) + 3.0)], (200, 200, 196)
                )

    def _corners(self, v: Vehicle) -> NDArray[np.float64]:
        """Projected corners, 4 each: footprint, waist (0.9 m), roof, shadow (frame pixels)."""
        centre = self.road.point(v.lane, v.s)
        head = self.road.heading(v.lane, v.wrong_way)
        side = np.array([-head[2], 0.0, head[0]])
        signs = np.array([(1, 1), (1, -1), (-1, -1), (-1, 1)], dtype=np.float64)
        ground = (
            centre + np.outer(signs[:, 0] * v.length / 2, head) + np.outer(signs[:, 1] * v.width / 2, side)
        )
        up = np.array([0.0, 1.0, 0.0])
        waist = ground + up * min(0.9, 0.6 * v.height)
        if v.kind in ("car", "suv"):  # a cabin shorter than the body, set back a little
            roof = centre + (ground - centre) * np.array([0.55, 1.0, 0.55]) + up * v.height - head * 0.3
        else:
            roof = ground + up * v.height
        shadow = ground + self.sun * v.height
        return self.cam.project(np.vstack([ground, waist, roof, shadow]))

    def draw(
        self, vehicles: list[Vehicle], t: float
    ) -> tuple[NDArray[np.uint8], dict[int, tuple[float, float, float, float]]]:
        img = self.background.copy()
        # nearly level with the camera's foot: outside the frame, and a pinhole would flip it
        depth = {v.id: self.cam.depth(self.road.point(v.lane, v.s)) for v in vehicles}
        order = sorted((v for v in vehicles if depth[v.id] > 6.0), key=lambda v: -depth[v.id])
        points = {v.id: self._corners(v) for v in order}
        shade = np.zeros(img.shape[:2], dtype=np.uint8)
        for v in order:
            p = points[v.id]
            cv2.fillConvexPoly(shade, cv2.convexHull(np.vstack([p[0:4], p[12:16]]).astype(np.int32)), (1,))
        dark = shade > 0
        img[dark] = (img[dark] * 0.55).astype(np.uint8)
        boxes = {}
        for v in order:
            p = points[v.id].astype(np.int32)
            ground, waist, roof = p[0:4], p[4:8], p[8:12]
            body = cv2.convexHull(np.vstack([ground, waist]))
            cv2.fillConvexPoly(img, body, tuple(int(c * 0.72) for c in v.colour), lineType=cv2.LINE_AA)
            glass = cv2.convexHull(np.vstack([waist, roof]))
            cv2.fillConvexPoly(img, glass, (48, 46, 44), lineType=cv2.LINE_AA)  # tinted glass
            cv2.fillConvexPoly(img, roof, v.colour, lineType=cv2.LINE_AA)
            x, y, w, h = cv2.boundingRect(np.vstack([ground, roof]))
            boxes[v.id] = (float(x), float(y), float(x + w), float(y + h))
        self._occluders(img)
        return self._expose(img, t), boxes

    def _occluders(self, img: NDArray[np.uint8]) -> None:
        scale = self.cam.w / 640
        base, top = self.cam.project(np.array([[-3.0, 0.0, 22.5], [-3.0, 9.0, 22.5]])).astype(np.int32)
        cv2.line(img, tuple(base), tuple(top), (55, 58, 60), max(2, round(5 * scale)), cv2.LINE_AA)
        sign = self.cam.project(
            np.array([[-3.0, 6.0, 22.5], [-1.2, 6.0, 22.5], [-1.2, 4.8, 22.5], [-3.0, 4.8, 22.5]])
        )
        cv2.fillConvexPoly(img, sign.astype(np.int32), (120, 70, 20), lineType=cv2.LINE_AA)
        trunk_base, trunk_top = self.cam.project(np.array([[12.0, 0.0, 19.0], [12.0, 4.0, 19.0]])).astype(
            np.int32
        )
        cv2.line(
            img, tuple(trunk_base), tuple(trunk_top), (30, 45, 60), max(2, round(6 * scale)), cv2.LINE_AA
        )
        crown = self.cam.project(np.array([[12.0, 5.5, 19.0]]))[0].astype(np.int32)
        cv2.ellipse(
            img,
            tuple(crown),
            (round(48 * scale), round(34 * scale)),
            0,
            0,
            360,
            (40, 85, 45),
            -1,
            cv2.LINE_AA,
        )

    def _expose(self, img: NDArray[np.uint8], t: float) -> NDArray[np.uint8]:
        sc = self.sc
        start, end = sc.light
        gain = start + (end - start) * min(1.0, t / max(sc.seconds, 1e-9))
        if sc.cloud_at is not None:
            gain *= 1.0 - 0.25 * math.exp(-(((t - sc.cloud_at) / 4.0) ** 2))
        for at, factor in sc.exposure_steps:
            gain *= factor if t >= at else 1.0
        sigma = sc.noise_sigma / max(gain, 0.3) ** 0.5  # low light is noisier
        out = cv2.convertScaleAbs(img, alpha=gain) if abs(gain - 1.0) > 1e-3 else img
        noise = self._noise(sigma)[int(self.rng.integers(12))]
        return np.asarray(cv2.add(out, noise, dtype=cv2.CV_8U), dtype=np.uint8)

    def _noise(self, sigma: float) -> list[NDArray[np.int16]]:
        """A pool of sensor-noise fields per noise level (0.5 steps): drawing a fresh Gaussian
        field every frame would cost more than all of the perception it tests."""
        level = round(sigma * 2) / 2
        if level not in self.noise:
            shape = (self.cam.h, self.cam.w, 3)
            self.noise[level] = [self.rng.normal(0, level, shape).round().astype(np.int16) for _ in range(12)]
        return self.noise[level]
