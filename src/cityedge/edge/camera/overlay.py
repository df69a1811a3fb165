"""Drawing on camera frames (OpenCV): lanes with their direction, a pixel grid, tracks, incidents.

Used by `camera zones preview` and `camera replay --annotate`; nothing here judges anything.
Colours are BGR; every function draws in place on the image it is given.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from cityedge.edge.camera.zones import CameraZones, Lane
from cityedge.protocol.vision import Incident, TrackState

__all__ = ["draw_grid", "draw_incidents", "draw_lines", "draw_tracks", "draw_zones", "lane_colour"]

Image = NDArray[np.uint8]
_PALETTE = (  # distinct, readable on grey road
    (60, 180, 255), (255, 160, 60), (90, 220, 90), (220, 90, 220), (60, 220, 220), (200, 200, 90),
)  # fmt: skip
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_WHITE = (255, 255, 255)
_BLACK = (0, 0, 0)
_RED = (40, 40, 230)
_LINE_COLOUR = (0, 255, 255)


def lane_colour(index: int) -> tuple[int, int, int]:
    return _PALETTE[index % len(_PALETTE)]


def _scale(image: Image) -> float:
    """Text and stroke size for the image: the same look at 320 and 1280 px."""
    return max(image.shape[1], 320) / 640.0


def _label(image: Image, text: str, at: tuple[float, float], colour: tuple[int, int, int]) -> None:
    s = _scale(image)
    size, thick = 0.45 * s, max(1, round(s))
    (tw, th), base = cv2.getTextSize(text, _FONT, size, thick)
    x = int(min(max(at[0] - tw / 2, 0), image.shape[1] - tw))
    y = int(min(max(at[1] + th / 2, th), image.shape[0] - base))
    cv2.rectangle(image, (x - 2, y - th - 2), (x + tw + 2, y + base), _BLACK, -1)
    cv2.putText(image, text, (x, y), _FONT, size, colour, thick, cv2.LINE_AA)


def _centroid(lane: Lane) -> tuple[float, float]:
    c = lane.shape.representative_point()  # inside the lane, even for an L-shaped polygon
    return (float(c.x), float(c.y))


def draw_zones(image: Image, zones: CameraZones, *, fill: float = 0.3) -> None:
    """Each lane filled (alpha `fill`), outlined, labelled, with its direction as an arrow."""
    layer = image.copy()
    for k, lane in enumerate(zones.lanes):
        pts = np.round(np.asarray(lane.polygon)).astype(np.int32)
        cv2.fillPoly(layer, [pts], lane_colour(k))
    cv2.addWeighted(layer, fill, image, 1 - fill, 0, dst=image)
    s = _scale(image)
    for k, lane in enumerate(zones.lanes):
        pts = np.round(np.asarray(lane.polygon)).astype(np.int32)
        cv2.polylines(image, [pts], True, lane_colour(k), max(1, round(2 * s)), cv2.LINE_AA)
        cx, cy = _centroid(lane)
        if lane.direction is not None:
            length = 40 * s
            tip = (cx + lane.direction[0] * length, cy + lane.direction[1] * length)
            tail = (cx - lane.direction[0] * length, cy - lane.direction[1] * length)
            cv2.arrowedLine(
                image, _pt(tail), _pt(tip), _WHITE, max(2, round(3 * s)), cv2.LINE_AA, tipLength=0.35
            )
        heading = (
            "any way" if lane.direction is None else f"({lane.direction[0]:.2f}, {lane.direction[1]:.2f})"
        )
        _label(image, f"{lane.name} {heading}", (cx, cy - 18 * s), lane_colour(k))


def draw_lines(image: Image, lines: Iterable[tuple[str, Sequence[tuple[float, float]]]]) -> None:
    """Count lines: a thick yellow line with its name, and an arrow from its middle to the side
    a `forward` crossing goes to (the right-hand side walking from its first point to its last)."""
    s = _scale(image)
    for name, points in lines:
        pts = np.round(np.asarray(points)).astype(np.int32)
        cv2.polylines(image, [pts], False, _LINE_COLOUR, max(2, round(3 * s)), cv2.LINE_AA)
        (x1, y1), (x2, y2) = points[0], points[-1]
        length = math.hypot(x2 - x1, y2 - y1) or 1.0
        mid = ((x1 + x2) / 2, (y1 + y2) / 2)
        normal = (-(y2 - y1) / length, (x2 - x1) / length)  # right-hand side, y down
        tip = (mid[0] + normal[0] * 30 * s, mid[1] + normal[1] * 30 * s)
        cv2.arrowedLine(
            image, _pt(mid), _pt(tip), _LINE_COLOUR, max(2, round(2 * s)), cv2.LINE_AA, tipLength=0.4
        )
        text = f"{name} forward"
        (tw, th), _ = cv2.getTextSize(text, _FONT, 0.45 * s, max(1, round(s)))
        reach = abs(normal[0]) * (tw / 2 + 6) + abs(normal[1]) * (th / 2 + 6)  # clear of the arrow
        _label(image, text, (tip[0] + normal[0] * reach, tip[1] + normal[1] * reach), _LINE_COLOUR)


def draw_grid(image: Image, step: int | None = None) -> None:
    """A pixel grid with its coordinates along the top and left edges (y grows downwards)."""
    h, w = image.shape[:2]
    step = step or _grid_step(max(w, h))
    minor = max(step // 2, 1)
    layer = image.copy()
    for x in range(0, w, minor):
        cv2.line(layer, (x, 0), (x, h - 1), _WHITE if x % step == 0 else (160, 160, 160), 1)
    for y in range(0, h, minor):
        cv2.line(layer, (0, y), (w - 1, y), _WHITE if y % step == 0 else (160, 160, 160), 1)
    cv2.addWeighted(layer, 0.45, image, 0.55, 0, dst=image)
    s = _scale(image)
    for x in range(step, w, step):
        _label(image, str(x), (x, 8 * s), _WHITE)
    for y in range(step, h, step):
        _label(image, str(y), (14 * s, y), _WHITE)
    _label(image, f"{w}x{h} px, origin top-left, x right, y down", (w / 2, h - 10 * s), _WHITE)


def _grid_step(side: int) -> int:
    """A round step giving about 8-16 lines across the longer side."""
    for step in (10, 20, 25, 50, 100, 200, 250, 500):
        if side / step <= 16:
            return step
    return 1000


def draw_tracks(image: Image, tracks: Iterable[TrackState], *, min_hits: int = 1) -> None:
    """Boxes with their track ids; the foot point (where lanes judge a vehicle) as a dot."""
    s = _scale(image)
    for track in tracks:
        b = track.box
        confirmed = track.hits >= min_hits
        colour = (0, 230, 0) if confirmed else (150, 150, 150)
        cv2.rectangle(image, _pt((b.x1, b.y1)), _pt((b.x2, b.y2)), colour, max(1, round(2 * s)))
        cv2.circle(image, _pt(b.foot), max(2, round(3 * s)), _RED, -1)
        _label(image, f"#{track.track_id}", ((b.x1 + b.x2) / 2, b.y1 - 8 * s), colour)


def draw_incidents(image: Image, incidents: Sequence[Incident]) -> None:
    """A red banner per incident at the top, and a ring where it happened."""
    s = _scale(image)
    for k, inc in enumerate(incidents):
        text = f"{inc.type} lane {inc.lane}" + (f" track #{inc.track_id}" if inc.track_id is not None else "")
        y = 24 * s * (k + 1)
        cv2.rectangle(image, (0, int(y - 18 * s)), (image.shape[1], int(y + 6 * s)), _RED, -1)
        cv2.putText(image, text, (int(6 * s), int(y)), _FONT, 0.55 * s, _WHITE, max(1, round(s)), cv2.LINE_AA)
        cv2.circle(image, _pt(inc.position), int(20 * s), _RED, max(2, round(3 * s)), cv2.LINE_AA)


def _pt(p: Any) -> tuple[int, int]:
    x, y = float(p[0]), float(p[1])
    return (round(x) if math.isfinite(x) else 0, round(y) if math.isfinite(y) else 0)
