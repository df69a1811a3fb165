"""YOLO export formats: the layout of a model's first output and its class names.

Detection heads: YOLOv8 and YOLO11 `[1, 4+nc, N]` (box, class scores), YOLOv5 `[1, N, 5+nc]`
(box, objectness, class scores). Segmentation exports append `nm` mask coefficients to
each candidate and add a second output, the mask prototypes `[1, nm, h, w]`; both are
ignored here, boxes are what the rules need. Ultralytics writes the class names into the
model's custom metadata as `names`, a Python dict literal `{0: 'person', 1: 'bicycle'}`.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cityedge.protocol.errors import ConfigError

__all__ = ["SEGMENT_MASKS", "candidates", "class_names", "image_size", "layout_of", "mask_channels"]

SEGMENT_MASKS = 32  # Ultralytics' segmentation heads: 32 prototypes


def class_names(metadata: Mapping[str, str], where: str) -> list[str] | None:
    """The `names` of the model's metadata in class-index order (None: there are none)."""
    raw = metadata.get("names")
    if raw is None:
        return None
    try:
        names = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        raise ConfigError(f"{where}: metadata `names` is not a dict or list literal: {raw[:80]!r}") from None
    if isinstance(names, dict):
        if sorted(names) != list(range(len(names))):
            raise ConfigError(f"{where}: metadata `names` must be keyed 0..{len(names) - 1}: {raw[:80]!r}")
        names = [names[k] for k in range(len(names))]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{where}: metadata `names` holds no class names: {raw[:80]!r}")
    return names


def image_size(metadata: Mapping[str, str], where: str) -> tuple[int, int] | None:
    """The (width, height) the model was exported for, from Ultralytics' `imgsz` metadata
    (`[height, width]` or one side); what a model with a dynamic input runs at."""
    raw = metadata.get("imgsz")
    if raw is None:
        return None
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = None
    sides = [value, value] if isinstance(value, int) else value
    if not (isinstance(sides, list) and len(sides) == 2 and all(isinstance(v, int) and v > 0 for v in sides)):
        raise ConfigError(f"{where}: metadata `imgsz` is not [height, width] or one side: {raw[:40]!r}")
    return (sides[1], sides[0])


def mask_channels(output_shapes: Sequence[Sequence[Any]], metadata: Mapping[str, str]) -> int:
    """Mask coefficients per candidate: the prototypes' channels when the model has a second
    output, 0 for a detection model."""
    if len(output_shapes) < 2:
        return 0
    proto = output_shapes[1]
    if len(proto) == 4 and isinstance(proto[1], int) and proto[1] > 0:
        return proto[1]
    if metadata.get("task", "segment") == "segment":
        return SEGMENT_MASKS  # a dynamic prototype shape: Ultralytics' count
    return 0


def layout_of(shape: Sequence[int], nc: int, nm: int, wanted: str, where: str) -> str:
    """The layout, "v8" (YOLOv8, YOLO11) or "v5", of a first output of `shape`, or a ConfigError."""
    if len(shape) == 3 and shape[0] == 1:
        if wanted in ("auto", "v8") and shape[1] == 4 + nc + nm:
            return "v8"
        if wanted in ("auto", "v5") and shape[2] == 5 + nc + nm:
            return "v5"
    masks = f" + {nm} mask coefficients" if nm else ""
    raise ConfigError(
        f"{where} output shape {list(shape)} does not match layout {wanted!r} with {nc} classes{masks}"
        f" (v8/YOLO11 want [1, {4 + nc + nm}, N], v5 wants [1, N, {5 + nc + nm}])"
    )


def candidates(raw: NDArray[np.float32], layout: str, nc: int, threshold: float) -> NDArray[np.float32]:
    """Candidates scoring at least `threshold` as rows (cx, cy, w, h, score, class); mask
    coefficients after the class scores are dropped."""
    if layout == "v8":
        preds = raw[0].T
        scores = preds[:, 4 : 4 + nc]
    else:
        preds = raw[0]
        scores = preds[:, 5 : 5 + nc] * preds[:, 4:5]
    cls = scores.argmax(axis=1)
    score = scores[np.arange(len(cls)), cls]
    keep = score >= threshold
    return np.column_stack([preds[keep, :4], score[keep], cls[keep]]).astype(np.float32)
