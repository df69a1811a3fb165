"""A decoded frame's grey image straight from its luma plane, for cameras that need no colour.

The motion model works on a grey frame; converting every 1280x720 frame to BGR first (and
back to grey after) costs about half of such a camera's CPU. For the usual 8-bit YUV frames
the Y plane is the grey image already: it is copied through a lookup table that expands the
limited ("TV", 16-235) range to 0-255, which is what OpenCV's BGR-to-grey gives from the BGR
the decoder would have made (within a level or two of rounding).
"""

from __future__ import annotations

from typing import Any

import av
import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = ["grey_image"]

_PLANAR_8BIT = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21"}
)
# Limited-range luma (16 black, 235 white) to full range, as BT.601/709 decoding does.
_EXPAND = np.clip(np.round((np.arange(256) - 16) * 255.0 / 219.0), 0, 255).astype(np.uint8)


def grey_image(frame: av.VideoFrame, size: tuple[int, int] | None = None) -> NDArray[np.uint8]:
    """The frame as a full-range grey image, at `size` (width, height) when given."""
    name = frame.format.name
    width, height = size if size is not None else (frame.width, frame.height)
    if name not in _PLANAR_8BIT or (width, height) != (frame.width, frame.height):
        grey: Any = frame.to_ndarray(format="gray", width=width, height=height)  # swscale: scales, expands
        return np.asarray(grey, dtype=np.uint8)
    plane = frame.planes[0]
    rows = np.frombuffer(memoryview(plane), np.uint8).reshape(frame.height, plane.line_size)
    luma = rows[:, : frame.width]
    if name.startswith("yuvj") or frame.color_range == 2:  # already full range (JPEG)
        return luma.copy()
    return np.asarray(cv2.LUT(luma, _EXPAND), dtype=np.uint8)
