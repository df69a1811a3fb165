"""The onnx detector through real ONNX Runtime, on tiny models whose output is a known tensor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cityedge.edge.camera.detectors import create_detector
from cityedge.edge.camera.detectors.onnx import OnnxDetector, OnnxOptions, letterbox, plan_crops
from cityedge.protocol.errors import ConfigError
from cityedge.protocol.vision import Box

CLASSES = ["car", "truck"]


def known_output_model(
    path: Path, output: np.ndarray, size: int = 64, *, int8_scale: float | None = None
) -> Path:
    """A graph whose output is `output` (+ 0 * max(input)); with `int8_scale`, stored QDQ as int8."""
    nodes = [
        helper.make_node("ReduceMax", ["images"], ["peak"], keepdims=0),
        helper.make_node("Mul", ["peak", "zero"], ["nothing"]),
        helper.make_node("Add", ["known", "nothing"], ["output0"]),
    ]
    inits = [numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    if int8_scale is None:
        inits.append(numpy_helper.from_array(output.astype(np.float32), "known"))
    else:
        q = np.round(output / int8_scale).astype(np.int8)
        inits += [
            numpy_helper.from_array(q, "known_q"),
            numpy_helper.from_array(np.array(int8_scale, np.float32), "scale"),
            numpy_helper.from_array(np.array(0, np.int8), "zp"),
        ]
        nodes.insert(0, helper.make_node("DequantizeLinear", ["known_q", "scale", "zp"], ["known"]))
    graph = helper.make_graph(
        nodes,
        "known",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output.shape))],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def v8(*candidates: tuple[float, float, float, float, float, float]) -> np.ndarray:
    """Rows (cx, cy, w, h, score_car, score_truck) as a YOLOv8 output [1, 4+nc, N]."""
    return np.array(candidates, np.float32).T[None]


def detector(model: Path, **opts: object) -> OnnxDetector:
    return OnnxDetector(OnnxOptions.model_validate({"model": model, "classes": CLASSES} | opts))


def as_tuple(box: Box) -> tuple[float, ...]:
    return tuple(round(v, 3) for v in (box.x1, box.y1, box.x2, box.y2))


def test_yolov8_boxes_are_decoded_through_the_letterbox_and_overlaps_suppressed(tmp_path: Path) -> None:
    out = v8(
        (32, 32, 16, 8, 0.9, 0.1),  # car
        (33, 32, 16, 8, 0.8, 0.0),  # the same car again, IoU 15/17 with the first: suppressed
        (32, 32, 16, 8, 0.0, 0.7),  # a truck in the same place: NMS is per class, kept
        (10, 20, 8, 8, 0.2, 0.1),  # below the score threshold
        (10, 20, 8, 8, 0.0, 0.6),  # a truck near the top-left
    )
    det = detector(known_output_model(tmp_path / "m.onnx", out), score_threshold=0.25)
    # Frame 128x64 into 64x64: scale 0.5, content 64x32, padded 16 px above and below.
    found = det.detect(np.zeros((64, 128, 3), np.uint8))
    assert [(d.label, round(d.score, 3), as_tuple(d.box)) for d in found] == [
        ("car", 0.9, (48.0, 24.0, 80.0, 40.0)),
        ("truck", 0.7, (48.0, 24.0, 80.0, 40.0)),
        ("truck", 0.6, (12.0, 0.0, 28.0, 16.0)),
    ]


def test_yolov5_layout_multiplies_objectness_by_class_score(tmp_path: Path) -> None:
    out = np.array([[[32, 32, 20, 10, 0.5, 0.8, 0.1], [32, 32, 20, 10, 0.3, 0.9, 0.0]]], np.float32)
    det = detector(known_output_model(tmp_path / "v5.onnx", out), score_threshold=0.3)
    [found] = det.detect(np.zeros((64, 64, 3), np.uint8))  # 0.3 * 0.9 = 0.27 is under the threshold
    assert (found.label, round(found.score, 3), as_tuple(found.box)) == ("car", 0.4, (22.0, 27.0, 42.0, 37.0))


def test_an_int8_qdq_model_is_accepted(tmp_path: Path) -> None:
    out = v8((24, 24, 16, 8, 0.75, 0.0))  # every value a multiple of the scale within int8 range
    det = detector(known_output_model(tmp_path / "q.onnx", out, int8_scale=0.25), score_threshold=0.5)
    [found] = det.detect(np.zeros((64, 64, 3), np.uint8))
    assert (found.label, found.score, as_tuple(found.box)) == ("car", 0.75, (16.0, 20.0, 32.0, 28.0))


def test_motion_regions_run_the_model_on_crops_and_boxes_map_back_to_the_frame(tmp_path: Path) -> None:
    det = detector(known_output_model(tmp_path / "m.onnx", v8((32, 32, 16, 8, 0.9, 0.0))))
    frame = np.zeros((256, 256, 3), np.uint8)
    # Region 30x20 + 16 px padding is under 64: one 64x64 crop centred on (115, 110), scale 1.
    [found] = det.detect(frame, regions=[Box(100, 100, 130, 120)])
    assert as_tuple(found.box) == (107.0, 106.0, 123.0, 114.0)
    assert det.inferences == 1
    assert det.detect(frame, regions=[]) == []  # no motion, no inference
    assert det.inferences == 1


def test_the_same_object_seen_by_two_crops_is_reported_once(tmp_path: Path) -> None:
    det = detector(known_output_model(tmp_path / "m.onnx", v8((32, 32, 16, 8, 0.9, 0.0))), max_crops=1)
    frame = np.zeros((200, 400, 3), np.uint8)
    found = det.detect(frame, regions=[Box(10, 10, 20, 20), Box(300, 150, 310, 160)])
    assert len(found) == 1  # the distant regions were merged into one crop


def test_crops_merge_when_they_overlap_and_stay_square_inside_the_frame() -> None:
    crops = plan_crops([Box(0, 0, 10, 10), Box(40, 40, 50, 50)], (640, 360), 64, 0, 4)
    assert [(c.x0, c.y0, c.x1, c.y1) for c in crops] == [(0, 0, 64, 64)]
    far = plan_crops([Box(0, 0, 10, 10), Box(600, 330, 630, 358)], (640, 360), 64, 0, 4)
    assert [(c.x0, c.y0, c.x1, c.y1) for c in far] == [(0, 0, 64, 64), (576, 296, 640, 360)]
    big = plan_crops([Box(100, 100, 300, 200)], (640, 360), 64, 10, 4)
    assert [(c.x0, c.y0, c.x1, c.y1) for c in big] == [(90, 40, 310, 260)]


def test_letterbox_pads_with_grey_and_reports_scale_and_offset() -> None:
    img, scale, (px, py) = letterbox(np.zeros((50, 100, 3), np.uint8), (64, 64))
    assert img.shape == (64, 64, 3)
    assert (scale, px, py) == (0.64, 0.0, 16.0)
    assert img[0, 0, 0] == 114 and img[32, 32, 0] == 0


def test_keep_classes_filters_labels(tmp_path: Path) -> None:
    out = v8((32, 32, 16, 8, 0.9, 0.0), (10, 10, 8, 8, 0.0, 0.9))
    det = detector(known_output_model(tmp_path / "m.onnx", out), keep_classes=["truck"])
    assert [d.label for d in det.detect(np.zeros((64, 64, 3), np.uint8))] == ["truck"]


def test_the_registry_builds_the_plugin_and_bad_options_name_the_problem(tmp_path: Path) -> None:
    model = known_output_model(tmp_path / "m.onnx", v8((32, 32, 16, 8, 0.9, 0.0)))
    det = create_detector("onnx", {"model": str(model), "classes": CLASSES, "intra_op_threads": 1})
    assert isinstance(det, OnnxDetector) and det.input_size == (64, 64)
    with pytest.raises(ConfigError, match="score_treshold"):
        create_detector("onnx", {"model": str(model), "classes": CLASSES, "score_treshold": 0.3})
    with pytest.raises(ConfigError, match=r"not found: .*missing\.onnx"):
        create_detector("onnx", {"model": str(tmp_path / "missing.onnx"), "classes": CLASSES})
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match=r"cannot load model .*garbage\.onnx"):
        create_detector("onnx", {"model": str(bad), "classes": CLASSES})


def test_an_output_that_does_not_fit_the_classes_is_a_clear_error(tmp_path: Path) -> None:
    det = OnnxDetector(
        OnnxOptions(
            model=known_output_model(tmp_path / "m.onnx", v8((1, 1, 1, 1, 1, 1))), classes=["a", "b", "c"]
        )
    )
    with pytest.raises(ConfigError, match=r"output shape \[1, 6, 1\] .* 3 classes"):
        det.detect(np.zeros((64, 64, 3), np.uint8))


def conv_macs(model: onnx.ModelProto) -> int:
    """Multiply-accumulates of every Conv, from the graph's own inferred shapes."""
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]
    }
    weights = {init.name: list(init.dims) for init in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            _, c_out, h, w = shapes[node.output[0]]
            _, c_in, kh, kw = weights[node.input[1]]
            total += c_out * h * w * c_in * kh * kw
    return total


def test_the_bench_model_has_the_compute_and_output_layout_of_yolov8n_at_320(tmp_path: Path) -> None:
    from cityedge.bench.camera_model import YOLOV8N_320_MACS, build_bench_model

    path = build_bench_model(tmp_path)
    macs = conv_macs(onnx.load(str(path)))
    assert macs == pytest.approx(YOLOV8N_320_MACS, rel=0.01)  # 8.7 GFLOPs at 640 -> 2.2 GFLOPs at 320
    det = detector(path, classes=[f"c{k}" for k in range(80)])
    assert det.input_size == (320, 320)
    raw = det.session.run(None, {"images": np.zeros((1, 3, 320, 320), np.float32)})[0]
    assert raw.shape == (1, 84, 2100)  # 40x40 + 20x20 + 10x10 anchors at strides 8, 16, 32
    assert isinstance(det.detect(np.zeros((720, 1280, 3), np.uint8), regions=[Box(10, 10, 50, 50)]), list)


def test_a_statically_quantized_qdq_model_runs_through_the_detector(tmp_path: Path) -> None:
    from cityedge.bench.camera_model import build_bench_model

    path = build_bench_model(tmp_path, int8=True)
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    det = detector(path, classes=[f"c{k}" for k in range(80)])
    raw = det.session.run(None, {"images": np.zeros((1, 3, 320, 320), np.float32)})[0]
    assert raw.shape == (1, 84, 2100)
    assert isinstance(det.detect(np.zeros((360, 640, 3), np.uint8)), list)
