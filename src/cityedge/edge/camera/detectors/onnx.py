"""The "onnx" detector plugin: YOLO exports (YOLOv8, YOLO11, YOLOv5; detection or segmentation,
masks ignored; layouts in `yolo.py`) on ONNX Runtime; class names from the config or the model.

Frames (or, when motion gates it, square crops around the motion regions, as Frigate does)
are letterboxed to the model's input, boxes are decoded, mapped back to frame pixels and
de-duplicated per class with OpenCV's NMS. Float and int8 (QDQ) models run alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cityedge.edge.camera.detectors.base import register_detector
from cityedge.edge.camera.detectors.yolo import candidates, class_names, image_size, layout_of, mask_channels
from cityedge.protocol.errors import ConfigError
from cityedge.protocol.vision import Box, Detection

__all__ = ["Crop", "OnnxDetector", "OnnxOptions", "letterbox", "plan_crops"]

_PAD_VALUE = 114  # the grey YOLO models were trained with around letterboxed images


class OnnxOptions(BaseModel):
    """Configuration of the onnx detector (the `detector.options` section of a camera)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    model: Path
    classes: list[str] | None = Field(default=None, min_length=1)  # None: the model's metadata `names`
    input_size: tuple[int, int] | None = None  # (width, height); None: read from the model
    layout: Literal["auto", "v8", "v5"] = "auto"  # v8 also reads YOLO11
    score_threshold: float = Field(default=0.35, ge=0, le=1)
    nms_threshold: float = Field(default=0.45, ge=0, le=1)
    keep_classes: list[str] | None = None  # report only these (e.g. car, bus, truck)
    intra_op_threads: int = Field(default=1, ge=0)  # 1 per camera: cameras already run in parallel
    region_padding: int = Field(default=16, ge=0)  # pixels of context around a motion region
    min_crop: int | None = Field(default=None, ge=1)  # None: the model's input side
    max_crops: int = Field(default=3, ge=1)  # more regions than this are merged into one crop


class Crop(BaseModel):
    """A square (or frame-sized) window of the frame, in frame pixels."""

    model_config = ConfigDict(frozen=True)
    x0: int
    y0: int
    x1: int
    y1: int


def letterbox(
    image: NDArray[np.uint8], size: tuple[int, int]
) -> tuple[NDArray[np.uint8], float, tuple[float, float]]:
    """Resize keeping the aspect ratio and pad to `size` (w, h); returns image, scale, (pad_x, pad_y)."""
    h, w = image.shape[:2]
    tw, th = size
    scale = min(tw / w, th / h)
    nw, nh = round(w * scale), round(h * scale)
    resized = image if (nw, nh) == (w, h) else cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    px, py = (tw - nw) / 2, (th - nh) / 2
    top, left = round(py - 0.1), round(px - 0.1)
    out = cv2.copyMakeBorder(
        resized, top, th - nh - top, left, tw - nw - left, cv2.BORDER_CONSTANT, value=(_PAD_VALUE,) * 3
    )
    return np.asarray(out, np.uint8), scale, (float(left), float(top))


def plan_crops(
    regions: Sequence[Box], frame_size: tuple[int, int], min_side: int, padding: int, max_crops: int
) -> list[Crop]:
    """Square crops covering the regions; overlapping crops merge, and too many become one."""
    w, h = frame_size
    boxes = [(r.x1 - padding, r.y1 - padding, r.x2 + padding, r.y2 + padding) for r in regions]
    merged = True
    while merged:
        merged = False
        crops = [_square(b, min_side, w, h) for b in boxes]
        for i in range(len(crops)):
            for j in range(i + 1, len(crops)):
                if _overlap(crops[i], crops[j]):
                    boxes[i] = _union(boxes[i], boxes[j])
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    if len(boxes) > max_crops:
        union = boxes[0]
        for b in boxes[1:]:
            union = _union(union, b)
        boxes = [union]
    return [_square(b, min_side, w, h) for b in boxes]


def _square(box: tuple[float, float, float, float], min_side: int, w: int, h: int) -> Crop:
    side = max(min_side, math.ceil(max(box[2] - box[0], box[3] - box[1])))
    sw, sh = min(side, w), min(side, h)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    # Shift a crop that pokes out of the frame back inside instead of shrinking it.
    x0 = int(min(max(round(cx - sw / 2), 0), w - sw))
    y0 = int(min(max(round(cy - sh / 2), 0), h - sh))
    return Crop(x0=x0, y0=y0, x1=x0 + sw, y1=y0 + sh)


def _overlap(a: Crop, b: Crop) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _union(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, float, float, float]:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


class OnnxDetector:
    """Runs a YOLO-format ONNX model on frames or on motion-region crops."""

    def __init__(self, options: OnnxOptions) -> None:
        self.options = options
        if not options.model.is_file():
            raise ConfigError(f"detector onnx: model file not found: {options.model}")
        so = ort.SessionOptions()
        so.intra_op_num_threads = options.intra_op_threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(options.model), so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ConfigError(f"detector onnx: cannot load model {options.model}: {exc}") from exc
        inp = self.session.get_inputs()[0]
        self._input_name = inp.name
        self._input_dtype = (
            np.uint8 if "uint8" in inp.type else np.float16 if "float16" in inp.type else np.float32
        )
        where = f"detector onnx: model {options.model}"
        metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        size = options.input_size or _static_size(inp.shape) or image_size(metadata, where)
        if size is None:
            raise ConfigError(f"{where} has a dynamic input {inp.shape}, no `imgsz` metadata: set input_size")
        self.input_size: tuple[int, int] = size
        classes = options.classes or class_names(metadata, where)
        if classes is None:
            raise ConfigError(f"{where} has no class names in its metadata (`names`): set `classes`")
        self.classes: list[str] = classes
        outputs = self.session.get_outputs()
        self._output = outputs[0].name  # a segmentation model's mask prototypes are not fetched
        self._masks = mask_channels([o.shape for o in outputs], metadata)
        self._keep = set(options.keep_classes) if options.keep_classes is not None else None
        self.inferences = 0

    def detect(self, frame: NDArray[Any], regions: Sequence[Box] | None = None) -> list[Detection]:
        h, w = frame.shape[:2]
        if regions is None:
            crops = [Crop(x0=0, y0=0, x1=w, y1=h)]
        else:
            side = self.options.min_crop or max(self.input_size)
            crops = plan_crops(regions, (w, h), side, self.options.region_padding, self.options.max_crops)
        candidates: list[tuple[Box, float, int]] = []
        for crop in crops:
            candidates.extend(self._detect_crop(frame, crop))
        return self._nms(candidates)

    def _detect_crop(self, frame: NDArray[Any], crop: Crop) -> list[tuple[Box, float, int]]:
        image, scale, (px, py) = letterbox(frame[crop.y0 : crop.y1, crop.x0 : crop.x1], self.input_size)
        blob = image[:, :, ::-1].transpose(2, 0, 1)[None]  # BGR HWC -> RGB NCHW
        tensor: NDArray[Any] = np.ascontiguousarray(blob, dtype=self._input_dtype)
        if self._input_dtype != np.uint8:
            tensor *= 1.0 / 255.0
        (raw,) = self.session.run([self._output], {self._input_name: tensor})
        self.inferences += 1
        rows = self._rows(np.asarray(raw, np.float32))
        out = []
        for cx, cy, bw, bh, score, cls in rows:
            x1 = (cx - bw / 2 - px) / scale + crop.x0
            y1 = (cy - bh / 2 - py) / scale + crop.y0
            x2 = (cx + bw / 2 - px) / scale + crop.x0
            y2 = (cy + bh / 2 - py) / scale + crop.y0
            box = Box(max(x1, crop.x0), max(y1, crop.y0), min(x2, crop.x1), min(y2, crop.y1))
            out.append((box, float(score), int(cls)))
        return out

    def _rows(self, raw: NDArray[np.float32]) -> NDArray[np.float32]:
        """Candidates over the score threshold as rows (cx, cy, w, h, score, class)."""
        nc = len(self.classes)
        where = f"detector onnx: model {self.options.model}"
        layout = layout_of(raw.shape, nc, self._masks, self.options.layout, where)
        return candidates(raw, layout, nc, self.options.score_threshold)

    def _nms(self, candidates: list[tuple[Box, float, int]]) -> list[Detection]:
        if not candidates:
            return []
        rects = [[b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1] for b, _, _ in candidates]
        scores = [s for _, s, _ in candidates]
        classes = [c for _, _, c in candidates]
        opts = self.options
        kept = cv2.dnn.NMSBoxesBatched(rects, scores, classes, opts.score_threshold, opts.nms_threshold)
        out = []
        for i in sorted(np.asarray(kept, int).reshape(-1).tolist(), key=lambda k: -scores[k]):
            label = self.classes[classes[i]]
            if self._keep is None or label in self._keep:
                out.append(Detection(box=candidates[i][0], score=scores[i], label=label))
        return out


def _static_size(shape: Sequence[Any]) -> tuple[int, int] | None:
    if len(shape) == 4 and isinstance(shape[2], int) and isinstance(shape[3], int):
        return (shape[3], shape[2])
    return None


@register_detector("onnx")
def create(options: dict[str, Any]) -> OnnxDetector:
    try:
        parsed = OnnxOptions.model_validate(options)
    except ValidationError as exc:
        raise ConfigError(f"detector onnx: invalid options: {exc}") from exc
    return OnnxDetector(parsed)
