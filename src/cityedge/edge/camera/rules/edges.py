"""Boxes the frame's edge cuts off: part of the vehicle is out of the picture, so the box's
size (and, at the bottom, its foot) is the frame's, not the vehicle's."""

from __future__ import annotations

from cityedge.protocol.vision import Box

__all__ = ["EDGE_PX", "cut_off"]

EDGE_PX = 2.0  # a box this close to the frame's edge is cut off by it


def cut_off(box: Box, frame_size: tuple[int, int] | None, *, top: bool = True) -> bool:
    """Whether `box` touches the frame's left, right or bottom edge, or (`top`) its top edge;
    an unknown frame cuts nothing off. The stopped-vehicle rule leaves the top out: a car whose
    roof leaves the picture at the top still stands where its foot is."""
    if frame_size is None:
        return False
    width, height = frame_size
    sides = box.x1 <= EDGE_PX or box.x2 >= width - EDGE_PX or box.y2 >= height - EDGE_PX
    return sides or (top and box.y1 <= EDGE_PX)
