"""Ghosts in the motion model's background: the road a vehicle that stood in the background
uncovered when it drove off. Only moving pixels that have stood unchanged for a while are
judged (a vehicle driving over a ghost does not hide it, a crawling queue stands for moments
only); a still blob is a ghost when its outline is in the background but not in the frame,
or when its rim continues the background around it. A ghost is learnt into the background at
once, all of it, after `ghost_frames` such frames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from cityedge.edge.camera.detectors.motion import MotionConfig

__all__ = ["Curve", "GhostFilter", "to_background"]

Curve = tuple[list[float], list[float]]  # background levels -> this frame's levels

_SEAM_REACH = 3  # pixels: past the blur's halo (`blur` 5 reaches 2)
_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
_BAND = cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5))


def to_background(grey: NDArray[np.uint8], curve: Curve | None) -> NDArray[np.float32]:
    """The frame's levels mapped to the background's exposure (clamped beyond the curve)."""
    level = grey.astype(np.float32)
    if curve is None:
        return level
    levels, values = curve
    return np.interp(level, values, levels).astype(np.float32)


class GhostFilter:
    """The ghost state of one camera's background model: call `unghost` once per frame."""

    def __init__(self, config: MotionConfig) -> None:
        self.config = config
        self._votes: NDArray[np.uint8] | None = None
        self._previous: NDArray[np.uint8] | None = None
        self._still: NDArray[np.uint8] | None = None  # frames each pixel has not changed
        self._standing: NDArray[np.uint8] = np.zeros((1, 1), np.uint8)  # moving pixels judged
        self._one: NDArray[np.uint8] = np.ones((1, 1), np.uint8)

    def unghost(
        self,
        background: NDArray[np.float32],
        grey: NDArray[np.uint8],
        mask: NDArray[np.uint8],
        curve: Curve | None,
    ) -> NDArray[np.uint8]:
        """Learn into `background` (in place) the ghosts in which some pixel has looked like a
        ghost for about `ghost_frames` frames, all of each such ghost (learning pixel by pixel
        leaves speckles that stay); the mask without them."""
        if self.config.ghost_frames == 0:
            return mask
        ghosts = self._ghosts(background, grey, mask, curve)
        before = self._votes if self._votes is not None else np.zeros_like(mask)
        # a ghost judged otherwise for a frame (a borderline outline) loses a vote, not all;
        # one not judged (a vehicle passing over it) keeps them; one that left the mask loses
        # them all (uint8 arithmetic in OpenCV saturates: no wrap below 0 or above 255)
        one = self._ones(mask)
        votes = cv2.subtract(before, cv2.bitwise_and(self._standing, one))
        votes[ghosts] = cv2.add(before, one)[ghosts]
        votes = _u8(cv2.bitwise_and(votes, mask))
        if ghosts.any():
            count, found = cv2.connectedComponents(ghosts.astype(np.uint8), connectivity=8)
            labels = np.asarray(found, dtype=np.intp)
            oldest = np.zeros(count, dtype=np.uint8)
            np.maximum.at(oldest, labels[ghosts], votes[ghosts])
            oldest[0] = 0  # label 0 is everything that is no ghost
            settled = oldest[labels] >= self.config.ghost_frames
            if settled.any():
                background[settled] = to_background(grey, curve)[settled]
                mask = mask.copy()
                mask[settled] = 0
                votes[settled] = 0
        self._votes = votes
        return mask

    def _ones(self, like: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """An array of ones shaped like the processed frame (OpenCV's saturating uint8 +1)."""
        if self._one.shape != like.shape:
            self._one = np.ones_like(like)
        return self._one

    def _ghosts(
        self,
        background: NDArray[np.float32],
        grey: NDArray[np.uint8],
        mask: NDArray[np.uint8],
        curve: Curve | None,
    ) -> NDArray[np.bool_]:
        """Pixels of still blobs whose outline has the background's edges but not the frame's,
        or whose rim continues the background around them. Only the parts of the moving mask
        that stood still for `ghost_still_frames` are judged: a vehicle passing a ghost merges
        with it in the mask, not in the still part."""
        previous, self._previous = self._previous, grey
        ghosts = np.zeros(mask.shape, dtype=bool)
        self._standing = np.zeros_like(mask)
        if previous is None:
            return ghosts
        change = cv2.absdiff(grey, previous)
        noise = float(cv2.mean(change, mask=cv2.bitwise_not(mask))[0])
        # frames each pixel has not changed (255 where it did not change now, then AND)
        _, steady = cv2.threshold(change, 3.0 * noise + 2.0, 255, cv2.THRESH_BINARY_INV)
        still = self._still if self._still is not None else np.zeros_like(mask)
        self._still = still = _u8(cv2.bitwise_and(cv2.add(still, self._ones(mask)), steady))
        _, long_still = cv2.threshold(still, self.config.ghost_still_frames - 1, 255, cv2.THRESH_BINARY)
        self._standing = standing = _u8(cv2.bitwise_and(mask, long_still))
        count, labels, stats, _ = cv2.connectedComponentsWithStats(standing, connectivity=8)
        if count <= 1:
            return ghosts
        height, width = mask.shape
        for k in range(1, count):
            x, y, w, h, _ = (int(v) for v in stats[k])
            x0, y0, x1, y1 = max(x - 3, 0), max(y - 3, 0), min(x + w + 3, width), min(y + h + 3, height)
            blob = (labels[y0:y1, x0:x1] == k).astype(np.uint8)
            inside = blob > 0
            # nothing moves inside: a blob in a crawling queue can hide a kerb line for a
            # moment, which looks like a ghost's outline, but it does not stand still
            if float(change[y0:y1, x0:x1][inside].mean()) >= 1.5 * noise + 0.5:
                continue
            outline = cv2.morphologyEx(blob, cv2.MORPH_GRADIENT, _BAND) > 0
            roi = (x0, y0, x1, y1)
            seen, left = _outline_edges(background, grey, curve, roi, outline)
            # a clear outline in the background alone, or a rim that continues the background
            # around it with no more edges in the frame than in the background (the background
            # next to a standing vehicle learns its soft shadow, which continues its rim too)
            if left > self.config.ghost_ratio * seen + 2.0 or (
                left >= seen and self._seamless(blob, self._seam(background, grey, mask, curve, roi))
            ):
                ghosts[y0:y1, x0:x1] |= inside
        return ghosts

    def _seam(
        self,
        background: NDArray[np.float32],
        grey: NDArray[np.uint8],
        mask: NDArray[np.uint8],
        curve: Curve | None,
        roi: tuple[int, int, int, int],
    ) -> NDArray[np.bool_]:
        """In `roi`: the moving pixels whose level (at the background's exposure) is within
        `ghost_seam_level` of the background `reach` pixels out past a still 4-neighbour,
        where the frame continues the background."""
        reach = _SEAM_REACH
        height, width = mask.shape
        x0, y0, x1, y1 = roi
        a0, b0, a1, b1 = (
            max(x0 - reach, 0),
            max(y0 - reach, 0),
            min(x1 + reach, width),
            min(y1 + reach, height),
        )
        window = (slice(b0, b1), slice(a0, a1))
        level = to_background(grey[window], curve)
        moving = judged = mask[window] > 0
        if curve is not None:
            values = curve[1]
            # the curve clamps beyond its evidence: a dark car at dusk would map onto the road
            judged = moving & (grey[window] >= values[0] - 2.0) & (grey[window] <= values[-1] + 2.0)
        bg = background[window]
        seam = np.zeros_like(moving)
        for axis in (0, 1):
            for sign in (1, -1):
                # the neighbour outside the rim, and the background `reach` pixels out: next to a
                # standing vehicle the background slowly learns its blurred edge, not further out
                outside = ~np.roll(moving, sign, axis) & ~np.roll(moving, sign * reach, axis)
                beyond = np.roll(bg, sign * reach, axis)
                seam |= outside & (np.abs(level - beyond) < self.config.ghost_seam_level)
        # np.roll wraps around the window: its border takes no wrapped neighbour (inside the
        # frame that border lies outside `roi`; at the frame's edge there is no neighbour)
        seam[:reach, :] = seam[-reach:, :] = seam[:, :reach] = seam[:, -reach:] = False
        seam &= judged
        return seam[y0 - b0 : y0 - b0 + (y1 - y0), x0 - a0 : x0 - a0 + (x1 - x0)]

    def _seamless(self, blob: NDArray[np.uint8], seam: NDArray[np.bool_]) -> bool:
        """Whether `ghost_seam` of the blob's rim (its pixels with a pixel outside) is seam."""
        rim = (blob > 0) & (cv2.erode(blob, _CROSS) == 0)
        total = int(rim.sum())
        return total > 0 and int((rim & seam).sum()) >= self.config.ghost_seam * total


def _outline_edges(
    background: NDArray[np.float32],
    grey: NDArray[np.uint8],
    curve: Curve | None,
    roi: tuple[int, int, int, int],
    outline: NDArray[np.bool_],
) -> tuple[float, float]:
    """Mean edge strength along `outline` (in `roi`) in the frame and in the background as
    this frame's exposure shows it (edges scale with exposure)."""
    x0, y0, x1, y1 = roi
    height, width = grey.shape
    # one pixel more around the window, so the 3x3 gradients inside it see real neighbours
    a0, b0, a1, b1 = max(x0 - 1, 0), max(y0 - 1, 0), min(x1 + 1, width), min(y1 + 1, height)
    crop = (slice(y0 - b0, y0 - b0 + (y1 - y0)), slice(x0 - a0, x0 - a0 + (x1 - x0)))
    expected = background[b0:b1, a0:a1]
    if curve is not None:
        expected = np.interp(expected, *curve).astype(np.float32)
    seen = _edges(grey[b0:b1, a0:a1])[crop][outline]
    left = _edges(expected)[crop][outline]
    return float(seen.mean()), float(left.mean())


def _u8(image: NDArray[Any]) -> NDArray[np.uint8]:
    """OpenCV's result, typed as the uint8 image it is."""
    return np.asarray(image, dtype=np.uint8)


def _edges(image: NDArray[Any]) -> NDArray[np.float32]:
    """Gradient magnitude (|dx| + |dy|) of a grey image."""
    dx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)
    dy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
    return np.asarray(np.abs(dx) + np.abs(dy), dtype=np.float32)
