"""Motion detection on a downscaled grey frame: the default detector, no model file needed.

A running-average background learnt from a short warm-up median; background pixels adapt
fast (lighting), foreground pixels slowly, so a stopped vehicle stays foreground long
enough for the stopped-vehicle rule. The camera's tone curve (auto-exposure) is estimated
per frame and applied to the background before comparing, and the threshold follows the
exposure down. Ghosts (the road a vehicle that stood in the background left behind) are
found and learnt at once by `ghosts.GhostFilter`. Registered as detector "motion";
`regions()` gives padded, merged motion boxes that gate a heavier detector (Frigate's
approach).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cityedge.edge.camera.detectors.base import register_detector
from cityedge.edge.camera.detectors.ghosts import Curve, GhostFilter, to_background
from cityedge.protocol.errors import ConfigError
from cityedge.protocol.vision import Box, Detection

__all__ = ["MotionConfig", "MotionDetector", "merge_boxes"]


class MotionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    width: int = Field(320, ge=32)
    """frames are downscaled to this width first"""
    blur: int = Field(5, ge=1)
    """Gaussian kernel (odd) against sensor noise"""
    threshold: int = Field(22, ge=1, le=255)
    """grey-level difference that counts as motion"""
    warmup_frames: int = Field(15, ge=1)
    """frames whose median is the first background"""
    alpha_background: float = Field(0.02, gt=0, le=1)
    """per-frame learning rate, still pixels"""
    alpha_foreground: float = Field(0.0002, ge=0, le=1)
    """per-frame learning rate, moving pixels: minutes, so a car that stood and left leaves no ghost"""
    min_gain: float = Field(0.35, gt=0, le=1)
    """the threshold follows the exposure down (a frame at half the brightness has half the contrast),
    to this fraction of `threshold` at the least"""
    ghost_ratio: float = Field(2.0, gt=1)
    """a blob is a ghost when the background's edges along its outline are this many times the frame's
    (a vehicle that left: its outline is in the background, not in the frame)"""
    ghost_frames: int = Field(30, ge=0)
    """frames a blob must look like a ghost before it is learnt at once (0: never)"""
    ghost_still_frames: int = Field(30, ge=1)
    """frames a moving pixel must stand unchanged before the ghost tests judge it (a crawling queue
    stands for moments, a ghost for good)"""
    ghost_seam: float = Field(0.4, gt=0, le=1)
    """... or when this share of its rim continues the background around it (the frame just inside the
    blob within `ghost_seam_level` of the background just outside): the road a ghost hides runs on
    across its outline, a vehicle's body does not"""
    ghost_seam_level: float = Field(8.0, gt=0)
    """grey levels within which the rim continues"""
    open_px: int = Field(3, ge=1)
    """opening kernel (processed pixels) removing speckle"""
    close_px: int = Field(7, ge=1)
    """closing kernel joining a vehicle's parts"""
    min_area: float = Field(0.0005, ge=0)
    """smallest blob, as a fraction of the frame area"""
    region_pad: float = Field(0.2, ge=0)
    """regions grow by this fraction of their size"""
    region_min_pad_px: int = Field(8, ge=0)


class MotionDetector:
    """Background model of one camera: call once per frame, in order."""

    def __init__(self, config: MotionConfig | None = None) -> None:
        self.config = config or MotionConfig()
        self._background: NDArray[np.float32] | None = None
        self._warmup: list[NDArray[np.uint8]] = []
        self._open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (self.config.open_px,) * 2)
        self._close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (self.config.close_px,) * 2)
        self._last: tuple[NDArray[Any], list[Detection]] | None = None
        self._ghosts = GhostFilter(self.config)

    def detect(self, frame: NDArray[Any], regions: Sequence[Box] | None = None) -> list[Detection]:
        """Moving blobs as detections in frame pixels; `regions`, when given, keeps those inside."""
        if self._last is not None and self._last[0] is frame:
            found = self._last[1]  # the same frame again (regions() then detect()): learn once
        else:
            found = self._update(frame)
            self._last = (frame, found)  # holding the frame keeps `is` honest (no id reuse)
        if regions is None:
            return list(found)
        return [d for d in found if any(_overlaps(d.box, r) for r in regions)]

    def regions(self, frame: NDArray[Any]) -> list[Box]:
        """Padded, merged motion boxes (full-frame pixels) to run a heavier detector on."""
        height, width = frame.shape[:2]
        cfg = self.config
        padded = []
        for det in self.detect(frame):
            b = det.box
            px = max(cfg.region_min_pad_px, (b.x2 - b.x1) * cfg.region_pad)
            py = max(cfg.region_min_pad_px, (b.y2 - b.y1) * cfg.region_pad)
            padded.append(
                Box(max(0.0, b.x1 - px), max(0.0, b.y1 - py), min(width, b.x2 + px), min(height, b.y2 + py))
            )
        return merge_boxes(padded)

    def _update(self, frame: NDArray[Any]) -> list[Detection]:
        grey, scale = self._prepare(frame)
        if self._background is None:
            self._warmup.append(grey)
            if len(self._warmup) >= self.config.warmup_frames:
                self._background = np.median(np.stack(self._warmup), axis=0).astype(np.float32)
                self._warmup = []
            return []
        curve = self._tone_curve(grey)
        mask = self._foreground(grey, curve)
        mask = self._ghosts.unghost(self._background, grey, mask, curve)
        self._learn(grey, mask, curve)
        return self._blobs(mask, scale)

    def _prepare(self, frame: NDArray[Any]) -> tuple[NDArray[np.uint8], float]:
        if frame.ndim not in (2, 3) or frame.dtype != np.uint8:
            raise ConfigError(
                f"motion detector needs a uint8 grey or BGR frame, got {frame.dtype} {frame.shape}"
            )
        height, width = frame.shape[:2]
        scale = width / self.config.width
        size = (self.config.width, max(1, round(height / scale)))
        small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        k = self.config.blur | 1
        return np.asarray(cv2.GaussianBlur(grey, (k, k), 0), dtype=np.uint8), scale

    def _tone_curve(self, grey: NDArray[np.uint8]) -> Curve | None:
        """Background level -> this frame's level (None: unchanged exposure). Real cameras
        darken the whole frame when a bright car enters, non-linearly (highlights clip), so
        the curve is estimated per frame: the median frame level per background level band,
        over a sparse grid (vehicles are a minority in every band)."""
        assert self._background is not None
        bg = self._background[::4, ::4].ravel()
        seen = grey[::4, ::4].ravel().astype(np.float32)
        band = np.minimum(bg // 16, 15).astype(np.intp)
        sizes = np.bincount(band, minlength=16)
        # Medians per band from two sorts instead of two np.median calls per band: a band is a
        # range of background levels, so sorting the levels groups them by band; the frame's
        # values (whole numbers 0-255) sort within their band keyed by band * 256.
        by_level = np.sort(bg)
        offsets = np.repeat(np.arange(16, dtype=np.float32) * 256, sizes)
        by_band = np.sort(band * np.float32(256) + seen) - offsets
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))[sizes >= 12]
        counts = sizes[sizes >= 12]
        levels = [float(v) for v in _middle(by_level, starts, counts)]
        values = [float(v) for v in _middle(by_band, starts, counts)]
        if len(levels) < 2 or max(abs(v - lv) for lv, v in zip(levels, values, strict=True)) < 2.0:
            return None
        return levels, list(np.maximum.accumulate(values))  # a tone curve never decreases

    def _foreground(self, grey: NDArray[np.uint8], curve: Curve | None) -> NDArray[np.uint8]:
        assert self._background is not None
        if curve is None:
            diff = cv2.absdiff(grey.astype(np.float32), self._background)
        else:
            levels, values = curve
            diff = cv2.absdiff(
                grey.astype(np.float32), np.interp(self._background, levels, values).astype(np.float32)
            )
            # levels the curve has no evidence for (thin white paint) are not judged
            diff[(self._background < levels[0] - 8.0) | (self._background > levels[-1] + 8.0)] = 0
        _, mask_f = cv2.threshold(diff, self._threshold(curve), 255, cv2.THRESH_BINARY)
        mask = cv2.morphologyEx(mask_f.astype(np.uint8), cv2.MORPH_OPEN, self._open)
        return np.asarray(cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._close), dtype=np.uint8)

    def _threshold(self, curve: Curve | None) -> float:
        """The motion threshold at this frame's exposure: a darker frame (dusk, auto-exposure
        turned down) scales every contrast down, a vehicle's too, by about the ratio of the
        frame's levels to the background's."""
        if curve is None:
            return float(self.config.threshold)
        levels, values = curve
        gain = sum(values) / max(sum(levels), 1.0)
        return float(self.config.threshold * min(1.0, max(gain, self.config.min_gain)))

    def _learn(self, grey: NDArray[np.uint8], mask: NDArray[np.uint8], curve: Curve | None) -> None:
        """Learn the frame mapped back to the background's exposure, so the background stays
        one consistent picture while the camera's exposure swings."""
        assert self._background is not None
        level = to_background(grey, curve)
        still = cv2.bitwise_not(mask)
        if curve is not None:
            levels = curve[0]
            # outside the curve's evidence the mapping is a guess: leave those pixels alone
            unknown = (self._background < levels[0] - 8.0) | (self._background > levels[-1] + 8.0)
            still[unknown] = 0
            mask = mask.copy()
            mask[unknown] = 0
        cv2.accumulateWeighted(level, self._background, self.config.alpha_background, still)
        if self.config.alpha_foreground > 0:
            cv2.accumulateWeighted(level, self._background, self.config.alpha_foreground, mask)

    def _blobs(self, mask: NDArray[np.uint8], scale: float) -> list[Detection]:
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        min_area = self.config.min_area * mask.shape[0] * mask.shape[1]
        found = []
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            if w * h < min_area:
                continue
            fill = float(cv2.contourArea(contour)) / float(w * h)
            box = Box(x * scale, y * scale, (x + w) * scale, (y + h) * scale)
            found.append(Detection(box=box, score=round(min(1.0, fill), 3), label="motion"))
        return found


def merge_boxes(boxes: Sequence[Box]) -> list[Box]:
    """Union of overlapping boxes, repeated until none overlap."""
    merged = list(boxes)
    changed = True
    while changed:
        changed = False
        out: list[Box] = []
        for box in merged:
            for i, other in enumerate(out):
                if _overlaps(box, other):
                    out[i] = Box(
                        min(box.x1, other.x1),
                        min(box.y1, other.y1),
                        max(box.x2, other.x2),
                        max(box.y2, other.y2),
                    )
                    changed = True
                    break
            else:
                out.append(box)
        merged = out
    return merged


def _overlaps(a: Box, b: Box) -> bool:
    return a.x1 < b.x2 and b.x1 < a.x2 and a.y1 < b.y2 and b.y1 < a.y2


@register_detector("motion")
def _create(options: dict[str, Any]) -> MotionDetector:
    try:
        return MotionDetector(MotionConfig.model_validate(options))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"detector 'motion' options: {problems}") from None


def _middle(ordered: NDArray[np.float32], starts: NDArray[Any], counts: NDArray[Any]) -> NDArray[np.float32]:
    """The median of each run `ordered[start:start + count]` (already sorted), as np.median
    gives it: the middle value, or the float32 mean of the middle two."""
    low = ordered[starts + (counts - 1) // 2]
    high = ordered[starts + counts // 2]
    return np.asarray((low + high) / 2, dtype=np.float32)
