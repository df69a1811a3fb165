"""YOLO export layouts through real ONNX Runtime: YOLOv8 and YOLO11 detection and segmentation,
YOLOv5 segmentation, and class names from the model's metadata as Ultralytics writes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cityedge.edge.camera.detectors.onnx import OnnxDetector, OnnxOptions
from cityedge.edge.camera.detectors.yolo import class_names
from cityedge.protocol.errors import ConfigError
from tests.edge.camera.test_onnx_detector import as_tuple

NAMES = "{0: 'person', 1: 'car', 2: 'truck'}"  # how Ultralytics writes `names`
MASKS = 32


def exported(
    path: Path,
    output0: np.ndarray,
    *,
    proto: tuple[int, ...] | None = None,
    metadata: dict[str, str] | None = None,
    dims: list[int | str] | None = None,
) -> Path:
    """A graph shaped like an Ultralytics export: `images` in, `output0` (a known tensor) out and,
    for segmentation, `output1` mask prototypes; `metadata` as the export's custom metadata."""
    nodes = [
        helper.make_node("ReduceMax", ["images"], ["peak"], keepdims=0),
        helper.make_node("Mul", ["peak", "zero"], ["nothing"]),
        helper.make_node("Add", ["known", "nothing"], ["output0"]),
    ]
    inits = [
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(output0.astype(np.float32), "known"),
    ]
    outputs = [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output0.shape))]
    if proto is not None:
        nodes.append(helper.make_node("Add", ["protos", "nothing"], ["output1"]))
        inits.append(numpy_helper.from_array(np.full(proto, 0.5, np.float32), "protos"))
        outputs.append(helper.make_tensor_value_info("output1", TensorProto.FLOAT, list(proto)))
    graph = helper.make_graph(
        nodes,
        "export",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, dims or [1, 3, 64, 64])],
        outputs,
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for key, value in (metadata or {}).items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def ultralytics_metadata(version: str, task: str) -> dict[str, str]:
    model = {"yolov8": "YOLOv8n", "yolo11": "YOLO11n"}[version] + ("-seg" if task == "segment" else "")
    return {
        "description": f"Ultralytics {model} model trained on coco.yaml",
        "author": "Ultralytics",
        "version": "8.3.0",
        "license": "AGPL-3.0 License (https://ultralytics.com/license)",
        "stride": "32",
        "task": task,
        "batch": "1",
        "imgsz": "[64, 64]",
        "names": NAMES,
    }


def head(rows: list[tuple[float, ...]], masks: int) -> np.ndarray:
    """A v8/YOLO11 head [1, 4+nc(+masks), N] from rows (cx, cy, w, h, scores...); mask
    coefficients are 0.99, high enough to be taken for classes if they were misread."""
    body = np.array(rows, np.float32)
    coefficients = np.full((len(rows), masks), 0.99, np.float32)
    return np.concatenate([body, coefficients], axis=1).T[None]


ROWS = [
    (32, 32, 16, 8, 0.0, 0.9, 0.1),  # a car in the middle
    (10, 20, 8, 8, 0.1, 0.0, 0.6),  # a truck near the top-left
    (50, 50, 8, 8, 0.1, 0.1, 0.1),  # nothing
]


@pytest.mark.parametrize("version", ["yolov8", "yolo11"])
@pytest.mark.parametrize("task", ["detect", "segment"])
def test_detection_and_segmentation_exports_give_boxes_named_from_the_metadata(
    tmp_path: Path, version: str, task: str
) -> None:
    masks = MASKS if task == "segment" else 0
    proto = (1, MASKS, 16, 16) if task == "segment" else None
    model = exported(
        tmp_path / "m.onnx", head(ROWS, masks), proto=proto, metadata=ultralytics_metadata(version, task)
    )
    det = OnnxDetector(OnnxOptions(model=model, score_threshold=0.3))
    assert det.classes == ["person", "car", "truck"]
    found = det.detect(np.zeros((64, 64, 3), np.uint8))
    assert [(d.label, round(d.score, 3), as_tuple(d.box)) for d in found] == [
        ("car", 0.9, (24.0, 28.0, 40.0, 36.0)),
        ("truck", 0.6, (6.0, 16.0, 14.0, 24.0)),
    ]


def test_a_yolov5_segmentation_export_multiplies_objectness_and_ignores_masks(tmp_path: Path) -> None:
    # [1, N, 5+nc+32]: box, objectness, 3 class scores, 32 mask coefficients
    rows = np.array([[32, 32, 20, 10, 0.5, 0.1, 0.8, 0.1, *[0.99] * MASKS]], np.float32)[None]
    model = exported(tmp_path / "v5seg.onnx", rows, proto=(1, MASKS, 16, 16), metadata={"names": NAMES})
    [found] = OnnxDetector(OnnxOptions(model=model, score_threshold=0.3)).detect(
        np.zeros((64, 64, 3), np.uint8)
    )
    assert (found.label, round(found.score, 3), as_tuple(found.box)) == ("car", 0.4, (22.0, 27.0, 42.0, 37.0))


def test_classes_in_the_config_win_over_the_metadata(tmp_path: Path) -> None:
    model = exported(tmp_path / "m.onnx", head(ROWS, 0), metadata=ultralytics_metadata("yolo11", "detect"))
    det = OnnxDetector(OnnxOptions(model=model, classes=["a", "b", "c"], score_threshold=0.3))
    assert [d.label for d in det.detect(np.zeros((64, 64, 3), np.uint8))] == ["b", "c"]


def test_a_model_without_names_needs_classes_in_the_config(tmp_path: Path) -> None:
    model = exported(tmp_path / "bare.onnx", head(ROWS, 0))
    with pytest.raises(
        ConfigError, match=r"bare\.onnx has no class names in its metadata \(`names`\): set `classes`"
    ):
        OnnxDetector(OnnxOptions(model=model))


def test_a_segmentation_head_that_does_not_fit_the_classes_names_the_mask_block(tmp_path: Path) -> None:
    model = exported(
        tmp_path / "m.onnx", head(ROWS, MASKS), proto=(1, MASKS, 16, 16), metadata={"names": NAMES}
    )
    det = OnnxDetector(OnnxOptions(model=model, classes=["only", "two"]))
    with pytest.raises(ConfigError, match=r"output shape \[1, 39, 3\] .* 2 classes \+ 32 mask coefficients"):
        det.detect(np.zeros((64, 64, 3), np.uint8))


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("{0: 'a', 2: 'b'}", "keyed 0..1"),
        ("person, car", "not a dict or list literal"),
        ("{}", "holds no class names"),
        ("[1, 2]", "holds no class names"),
    ],
)
def test_bad_metadata_names_are_refused_with_what_is_wrong(raw: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        class_names({"names": raw}, "model m.onnx")


def test_names_may_be_a_list() -> None:
    assert class_names({"names": "['car', 'bus']"}, "m") == ["car", "bus"]
    assert class_names({}, "m") is None


def test_a_dynamic_input_runs_at_the_exports_imgsz(tmp_path: Path) -> None:
    dynamic: list[int | str] = [1, 3, "height", "width"]
    meta = {"names": NAMES, "imgsz": "[64, 96]"}  # Ultralytics: [height, width]
    det = OnnxDetector(
        OnnxOptions(model=exported(tmp_path / "d.onnx", head(ROWS, 0), metadata=meta, dims=dynamic))
    )
    assert det.input_size == (96, 64)
    square = exported(
        tmp_path / "s.onnx", head(ROWS, 0), metadata={"names": NAMES, "imgsz": "64"}, dims=dynamic
    )
    assert OnnxDetector(OnnxOptions(model=square)).input_size == (64, 64)
    bare = exported(tmp_path / "bare.onnx", head(ROWS, 0), metadata={"names": NAMES}, dims=dynamic)
    with pytest.raises(
        ConfigError, match=r"bare\.onnx has a dynamic input .*no `imgsz` metadata: set input_size"
    ):
        OnnxDetector(OnnxOptions(model=bare))
    assert OnnxDetector(OnnxOptions(model=bare, input_size=(64, 64))).input_size == (64, 64)
    odd = exported(
        tmp_path / "odd.onnx", head(ROWS, 0), metadata={"names": NAMES, "imgsz": "[1, 2, 3]"}, dims=dynamic
    )
    with pytest.raises(ConfigError, match=r"metadata `imgsz` is not \[height, width\] or one side"):
        OnnxDetector(OnnxOptions(model=odd))
