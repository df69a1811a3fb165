"""Count lines: a vehicle is counted when its track crosses a line, once per line, with the
direction it crossed in. Pure geometry; drawn in the zones' frame pixels (y down)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["CountLine", "Crossing"]

Point = tuple[float, float]
Crossing = Literal["forward", "backward"]


class CountLine(BaseModel):
    """A line from `points[0]` to `points[1]`. Crossing it to the right-hand side, as seen
    walking from the first point to the second on the picture, is `forward`; the other way is
    `backward`. So a line drawn left to right counts vehicles moving down the picture as
    forward."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="the line's name (appears in the count records)")
    points: tuple[Point, Point] = Field(
        description="the line's two end points [[x, y], [x, y]] in frame pixels"
    )
    lane: str | None = Field(
        None, description="count crossings for this lane (null: for the lane the vehicle is in)"
    )

    @model_validator(mode="after")
    def _has_length(self) -> CountLine:
        (x1, y1), (x2, y2) = self.points
        if (x2 - x1) ** 2 + (y2 - y1) ** 2 < 1.0:
            raise ValueError(f"count line {self.name!r}: its two points are the same: give it a length")
        return self

    def side(self, p: Point) -> float:
        """> 0 right of the line (walking from the first point to the second, y down), < 0 left."""
        (x1, y1), (x2, y2) = self.points
        return (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1)

    def crossed(self, a: Point, b: Point) -> Crossing | None:
        """How the step from `a` to `b` crossed the line segment, if it did."""
        sa, sb = self.side(a), self.side(b)
        if (sa > 0) == (sb > 0) or sa == sb:
            return None
        # the step's own line must separate the segment's end points too: the segments cross
        p, q = self.points
        da = _cross(a, b, p)
        db = _cross(a, b, q)
        if (da > 0) == (db > 0) and da != 0 and db != 0:
            return None
        return "forward" if sb > 0 else "backward"

    def scaled(self, sx: float, sy: float) -> CountLine:
        (x1, y1), (x2, y2) = self.points
        return self.model_copy(update={"points": ((x1 * sx, y1 * sy), (x2 * sx, y2 * sy))})


def _cross(a: Point, b: Point, p: Point) -> float:
    return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
